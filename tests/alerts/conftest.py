"""Alert fixtures: a real SMTP server on loopback (aiosmtpd) and the settings that point at it."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from lingtan.kernel.settings import Settings
from tests.conftest import free_port

USER, PASSWORD = "alerts", "s3cret-pass"


class Inbox:
    """Messages the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def text(self, msg: EmailMessage) -> str:
        part = msg.get_body(preferencelist=("plain",))
        assert part is not None
        return part.get_content()


class SmtpServer:
    """aiosmtpd on a fixed loopback port that can be stopped and started again (an outage)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def _auth(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER \
            and auth_data.password.decode() == PASSWORD
        if ok:
            self.inbox.logins.append(USER)
        return AuthResult(success=ok)

    def start(self) -> None:
        # Authentication over plain SMTP is allowed here only because the test server is on
        # loopback; production settings use STARTTLS or TLS.
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     authenticator=self._auth, auth_require_tls=False)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(smtp: SmtpServer, db: str) -> Settings:
    return Settings(database_url=db, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_tls="none",
                    smtp_user=USER, smtp_password=PASSWORD, smtp_from="lingtan@example.com",
                    dashboard_url="http://dashboard.example/", smtp_timeout_seconds=5)
