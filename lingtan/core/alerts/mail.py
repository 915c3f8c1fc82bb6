"""Alert e-mails: bilingual (zh/en) plain-text and HTML bodies, a small PNG chart, and SMTP sending.

The chart is drawn with the standard library (zlib + struct): plotly's image export needs
kaleido and a browser, neither of which an offline factory server can be assumed to have.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import math
import smtplib
import ssl
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from types import TracebackType
from zoneinfo import ZoneInfo

from lingtan.kernel.i18n import catalog, t
from lingtan.kernel.settings import Settings


@dataclass(frozen=True)
class Notification:
    """Everything an alert e-mail says, independent of language."""

    notice: str  # firing | resolved | renotify
    rule_id: int
    rule_name: str
    severity: str
    subject: str  # "site:<id>" or "meter:<id>"
    metric: str  # a key of LABELS
    unit: str
    value: float | None
    threshold: float
    op: str
    window: tuple[str, str]  # (zh, en), e.g. words("mail.window.average", minutes=15)
    time: datetime
    timezone: str
    dashboard_url: str
    # ((zh label, en label), value): a value is the same text in both languages (a number, a
    # time) or a (zh, en) pair when it is words.
    details: tuple[tuple[tuple[str, str], str | tuple[str, str]], ...] = ()
    series: Sequence[float] = ()
    # (zh, en) for the subject after the rule's name, when "<subject>: <value>" would say too
    # little (a target alert names the site and its targets)
    headline: tuple[str, str] | None = None


# Every word comes from the catalog (lingtan/kernel/locale): the fixed ones (mail.metric.*,
# mail.notice.*, mail.severity.*, mail.word.*) and those each alert picks (mail.window.*,
# mail.detail.*, mail.note.*, mail.state.*, mail.status.*, mail.headline.*). An alert's words
# travel as (zh, en), filled in when it is measured, so the e-mail of each recipient is rendered
# without the rule at hand.
def words(key: str, **values: object) -> tuple[str, str]:
    """The catalog's text of ``key`` with its ``{placeholders}`` filled, as (zh, en)."""
    return t(key, "zh", **values), t(key, "en", **values)


def _word(group: str, key: str) -> tuple[str, str]:
    return words(f"mail.{group}.{key}")


def _metric(key: str) -> tuple[str, str]:
    known = catalog("en").get((None, f"mail.metric.{key}"))
    return _word("metric", key) if known is not None else (key, key)


def _t(pair: tuple[str, str], language: str) -> str:
    return pair[0] if language == "zh" else pair[1]


def _number(v: float | None, unit: str, language: str) -> str:
    # An infinite threshold means there is nothing to compare with (no baseline, no grade limit).
    if v is None or not math.isfinite(v):
        return _t(_word("word", "no_data"), language)
    text = f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.1f}"
    return f"{text} {unit}".strip()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    image: bytes | None


def render(n: Notification, language: str) -> Rendered:
    """The e-mail for one recipient, in their language (zh or en)."""
    local = n.time.astimezone(ZoneInfo(n.timezone)).strftime("%Y-%m-%d %H:%M %Z")
    notice, severity = _t(_word("notice", n.notice), language), _t(_word("severity", n.severity), language)
    metric = _t(_metric(n.metric), language)
    rows = [
        (_word("word", "rule"), n.rule_name), (_word("word", "subject"), n.subject),
        (_word("word", "severity"), severity),
        (_word("word", "metric"), metric), (_word("word", "value"), _number(n.value, n.unit, language)),
        (_word("word", "threshold"), f"{n.op} {_number(n.threshold, n.unit, language)}"),
        (_word("word", "window"), _t(n.window, language)), (_word("word", "time"), local),
    ]
    lines = [(_t(k, language), v if isinstance(v, str) else _t(v, language)) for k, v in [*rows, *n.details]]
    about = _t(n.headline, language) if n.headline else f"{n.subject}: {_number(n.value, n.unit, language)}"
    subject = f"[Lingtan {notice}] {n.rule_name} — {about}"
    link = _t(_word("word", "dashboard"), language)
    text = "\n".join([subject, "", *(f"{k}: {v}" for k, v in lines), "", f"{link}: {n.dashboard_url}", ""])
    image = chart_png(list(n.series), n.threshold) if len(n.series) >= 2 else None
    cells = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in lines)
    img = "<p><img src='cid:chart' alt='chart' width='320' height='120'></p>" if image else ""
    body = (f"<html><body><h2>{html.escape(notice)}: {html.escape(n.rule_name)}</h2>"
            f"<table cellpadding='4'>{cells}</table>{img}"
            f"<p><a href='{html.escape(n.dashboard_url, quote=True)}'>{html.escape(link)}</a></p>"
            "</body></html>")
    return Rendered(subject, text, body, image)


def message_id(idempotency_key: str) -> str:
    # Derived from the outbox key, so a message that is ever sent twice (a crash between the
    # SMTP answer and the commit) carries the same Message-ID and mail clients fold it into one.
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@lingtan>"


def build_message(sender: str, recipient: str, subject: str, text: str, body_html: str,
                  image: bytes | None, idempotency_key: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(idempotency_key)
    msg.set_content(text)
    msg.add_alternative(body_html, subtype="html")
    if image:
        html_part = msg.get_payload()[1]  # type: ignore[index]
        html_part.add_related(image, maintype="image", subtype="png", cid="<chart>", filename="chart.png")
    return msg


class Mailer:
    """One SMTP session from settings: plain, STARTTLS or implicit TLS, with login when a user is set."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise RuntimeError("LINGTAN_SMTP_HOST is not set")
        self.s = settings
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        s = self.s
        assert s.smtp_host
        context = ssl.create_default_context()
        if s.smtp_tls == "tls":
            self.smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds,
                                         context=context)
        else:
            self.smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
            if s.smtp_tls == "starttls":
                self.smtp.starttls(context=context)
        if s.smtp_user:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            self.smtp.login(s.smtp_user, password)
        return self

    def send(self, msg: EmailMessage) -> None:
        assert self.smtp is not None
        self.smtp.send_message(msg)

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()


# --- a tiny PNG line chart --------------------------------------------------------------------

W, H, PAD = 320, 120, 8
WHITE, GREY, BLUE, RED = (255, 255, 255), (200, 200, 200), (31, 119, 180), (214, 39, 40)


def chart_png(values: list[float], threshold: float | None = None) -> bytes:
    """The series as a 320×120 line, with the threshold as a dashed red line."""
    px = [[WHITE] * W for _ in range(H)]
    finite = [v for v in values if v == v]
    lo = min([*finite, threshold] if threshold is not None else finite)
    hi = max([*finite, threshold] if threshold is not None else finite)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0

    def y_of(v: float) -> int:
        return round(H - 1 - PAD - (v - lo) / (hi - lo) * (H - 1 - 2 * PAD))

    for x in range(W):
        px[H - 1 - PAD // 2][x] = GREY
    if threshold is not None:
        ty = y_of(threshold)
        for x in range(0, W, 6):
            for dx in range(3):
                if x + dx < W:
                    px[ty][x + dx] = RED
    n = len(values)
    pts = [(round(PAD + i * (W - 1 - 2 * PAD) / max(1, n - 1)), y_of(v)) for i, v in enumerate(values)]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for k in range(steps + 1):
            x, y = x0 + (x1 - x0) * k // steps, y0 + (y1 - y0) * k // steps
            for yy in (y, y + 1):  # two pixels thick, readable when mail clients scale it
                if 0 <= yy < H:
                    px[yy][x] = BLUE
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in px)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
