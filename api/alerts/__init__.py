"""Alerting: rules (``rules``), their state machine (``state``), evaluation (``evaluate``), the e-mail
outbox and mailer (``outbox``, ``mail``) and the single-leader scheduler (``scheduler``)."""
