"""Alerting: rules (``rules``), their state machine (``state``), evaluation (``evaluate``), the e-mail
outbox and mailer (``outbox``, ``mail``). The single-leader scheduler that runs them is the API's
(api/scheduler.py)."""
