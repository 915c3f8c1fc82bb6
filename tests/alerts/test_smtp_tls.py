"""Alert e-mail over STARTTLS and implicit TLS with authentication, through the outbox and Mailer.

The SMTP server is aiosmtpd on loopback with a self-signed certificate made for the test. The
mailer keeps the default, verifying SSL context: the test trusts its certificate only through
``SSL_CERT_FILE`` (which OpenSSL's default verify paths honour), and a test without it shows the
verification is really on.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from lingtan.core.alerts import outbox
from lingtan.core.alerts.mail import Rendered
from lingtan.kernel.db import get_engine
from lingtan.kernel.settings import Settings
from tests.conftest import free_port

USER, PASSWORD = "tls-user", "tls-s3cret"


@dataclass
class Delivery:
    message: EmailMessage
    tls_version: str | None  # of the connection the message came over
    starttls: bool  # the session was upgraded with STARTTLS (aiosmtpd sets session.ssl then)
    login: str | None  # the user the session authenticated as


@dataclass
class TlsInbox:
    deliveries: list[Delivery] = field(default_factory=list)
    refused_logins: int = 0

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        auth = session.auth_data if session.authenticated else None
        self.deliveries.append(Delivery(
            message=email.message_from_bytes(envelope.content, policy=email.policy.default),  # type: ignore[arg-type]
            tls_version=ssl_object.version() if ssl_object is not None else None,
            starttls=session.ssl is not None,
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
        ))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER \
            and auth_data.password.decode() == PASSWORD
        if not ok:
            self.refused_logins += 1
        return AuthResult(success=ok, auth_data=auth_data)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cert.pem, key.pem): self-signed, valid for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither the cryptography package nor the openssl command is available"
                    " to make a test certificate")
    d = tmp_path_factory.mktemp("smtp-cert")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    return ctx


@dataclass
class TlsServer:
    port: int
    inbox: TlsInbox


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[TlsServer]:
    """Plain SMTP that refuses everything (AUTH included) until the client has sent STARTTLS."""
    inbox, port = TlsInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                            tls_context=server_context(certificate), require_starttls=True,
                            auth_require_tls=True, auth_required=True)
    controller.start()
    yield TlsServer(port, inbox)
    controller.stop()


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[TlsServer]:
    """Implicit TLS (SMTPS): the TLS handshake comes before any SMTP."""
    inbox, port = TlsInbox(), free_port()
    # auth_require_tls refers to STARTTLS only; this whole connection is TLS from the first byte.
    # (Not auth_required here: aiosmtpd warns on it without STARTTLS; the test checks the login.)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                            ssl_context=server_context(certificate), auth_require_tls=False)
    controller.start()
    yield TlsServer(port, inbox)
    controller.stop()


def settings_for(db: str, port: int, tls: str) -> Settings:
    return Settings(database_url=db, smtp_host="127.0.0.1", smtp_port=port, smtp_tls=tls,
                    smtp_user=USER, smtp_password=PASSWORD, smtp_from="lingtan@example.com",
                    smtp_timeout_seconds=5)


def queue_one(db: str, key: str) -> None:
    mail = Rendered(subject=f"[Lingtan FIRING] {key}", text=f"body of {key}\n", html=f"<p>{key}</p>",
                    image=None)
    with get_engine(db).begin() as conn:
        assert outbox.enqueue(conn, key, "ops@example.com", "en", mail, None, datetime.now(UTC))


def outbox_rows(db: str) -> list[tuple[str, int, str | None]]:
    with get_engine(db).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(  # type: ignore[misc]
            "SELECT status, attempts, last_error FROM alert_outbox ORDER BY id")).all()]


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_alert_mail_goes_out_over_tls_with_login(mode: str, db: str, certificate: tuple[Path, Path],
                                                 starttls_server: TlsServer, tls_server: TlsServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = starttls_server if mode == "starttls" else tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    queue_one(db, f"tls-{mode}")
    settings = settings_for(db, server.port, mode)

    result = outbox.deliver(get_engine(db), settings)
    assert (result.sent, result.failed, result.error) == (1, 0, None)
    # Nothing is left to send: a second run sends nothing more.
    assert outbox.deliver(get_engine(db), settings).sent == 0

    assert len(server.inbox.deliveries) == 1
    d = server.inbox.deliveries[0]
    assert d.tls_version is not None and d.tls_version.startswith("TLSv1.")
    assert d.starttls is (mode == "starttls")  # implicit TLS never upgrades; STARTTLS did
    assert d.login == USER and server.inbox.refused_logins == 0
    assert str(d.message["Subject"]) == f"[Lingtan FIRING] tls-{mode}"
    assert d.message["To"] == "ops@example.com"
    assert outbox_rows(db) == [("sent", 1, None)]
    # The other server saw nothing.
    other = tls_server if mode == "starttls" else starttls_server
    assert other.inbox.deliveries == []


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_an_untrusted_certificate_is_refused_and_the_mail_waits(
        mode: str, db: str, tmp_path: Path, starttls_server: TlsServer, tls_server: TlsServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A CA file that does not hold the test certificate: verification must fail, nothing is sent.
    other_ca = tmp_path / "empty-ca.pem"
    other_ca.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    server = starttls_server if mode == "starttls" else tls_server
    queue_one(db, f"untrusted-{mode}")

    result = outbox.deliver(get_engine(db), settings_for(db, server.port, mode))
    assert (result.sent, result.failed) == (0, 1)
    assert result.error is not None and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert server.inbox.deliveries == []
    [(status, attempts, error)] = outbox_rows(db)
    assert (status, attempts) == ("pending", 1) and error is not None
