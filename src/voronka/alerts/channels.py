"""The ways a message leaves: Telegram, e-mail and a signed webhook (an explicit registry).

A channel either delivers, or raises ``RetryLater`` (the other side is busy or down: the outbox
tries again with backoff, or after the wait the other side asked for) or ``Refused`` (it will never
take this message: the user blocked the bot, the address does not exist).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import smtplib
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import make_msgid
from typing import Any

import httpx

from voronka.alerts.config import Channels

TIMEOUT = 20.0
TELEGRAM_LIMIT = 4096
"""The Bot API's longest message text (sendMessage, core.telegram.org/bots/api)."""
PER_CHAT_SECONDS = 1.0
OVERALL_SECONDS = 1 / 30
"""The Bot API FAQ ("My bot is hitting limits, how do I avoid this?"): in one chat, avoid more than
one message a second; in all, no more than about 30 a second."""
INLINE_WAIT = 60.0
"""A "slow down" (429) asking for at most this many seconds is waited out in the same pass; a longer
one leaves the message for a later pass, at the time Telegram named."""


_clients: dict[int, httpx.Client] = {}
_clients_lock = threading.Lock()


def _http() -> httpx.Client:
    """One client per process for Telegram and webhooks: ``httpx.post`` built a client, and with it a
    TLS context from the system's certificates, for every message (30 ms a call, where 1.5 ms is the
    request); a forked process makes its own."""
    pid = os.getpid()
    with _clients_lock:
        client = _clients.get(pid)
        if client is None:
            client = _clients[pid] = httpx.Client(timeout=TIMEOUT)
        return client


class RetryLater(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Refused(Exception):
    pass


@dataclass(frozen=True)
class Outgoing:
    address: str
    subject: str
    body: str
    data: Mapping[str, Any] = field(default_factory=dict)


# --- Telegram Bot API: POST <api>/bot<token>/<method>; every answer is {"ok": …, "result" | "error_code",
# "description", "parameters": {"retry_after": …}} (core.telegram.org/bots/api, "Making requests").


def telegram_call(channels: Channels, method: str, payload: Mapping[str, Any]) -> Any:
    """One Bot API method; its ``result``, or RetryLater / Refused as the answer says."""
    url = f"{channels.telegram_url}/bot{channels.telegram_token}/{method}"
    try:
        answer = _http().post(url, json=dict(payload))
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RetryLater(f"Telegram: {type(exc).__name__}") from None
    if isinstance(body, dict) and body.get("ok") is True:
        return body.get("result")
    code = body.get("error_code", answer.status_code) if isinstance(body, dict) else answer.status_code
    text = str(body.get("description", "")) if isinstance(body, dict) else ""
    parameters = body.get("parameters") or {} if isinstance(body, dict) else {}
    if code == 429:
        raise RetryLater(f"Telegram {code}: {text}", after=float(parameters.get("retry_after", 30)))
    if code in (400, 403):  # the chat is gone or the user blocked the bot: this message will never go
        raise Refused(f"Telegram {code}: {text}")
    raise RetryLater(f"Telegram {code}: {text}")  # a wrong token (401/404) or trouble on their side


@dataclass
class Pacer:
    """Keeps messages to Telegram at its pace: a second between two to one chat, 1/30 s between any
    two, and nothing while Telegram said to wait (429 ``retry_after``). Time and waiting are
    parameters, so a test drives them."""

    per_chat: float = PER_CHAT_SECONDS
    overall: float = OVERALL_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: dict[str, float] = field(default_factory=dict)
    _last_any: float = -math.inf
    _held_until: float = -math.inf

    def wait(self, chat: str) -> None:
        """Wait until a message to ``chat`` may go, and count it as gone."""
        now = self.clock()
        ready = max(self._last.get(chat, -math.inf) + self.per_chat, self._last_any + self.overall, self._held_until)
        if ready > now:
            self.sleep(ready - now)
            now = max(self.clock(), ready)
        self._last[chat] = self._last_any = now

    def hold(self, seconds: float) -> None:
        """Telegram said to slow down: nothing goes for ``seconds``."""
        self._held_until = max(self._held_until, self.clock() + seconds)


def send_telegram(message: Outgoing, channels: Channels) -> None:
    text = message.body if len(message.body) <= TELEGRAM_LIMIT else message.body[: TELEGRAM_LIMIT - 1] + "…"
    payload: dict[str, Any] = {"chat_id": message.address, "text": text, "link_preview_options": {"is_disabled": True}}
    buttons = message.data.get("buttons")
    if isinstance(buttons, list) and buttons:  # one row of inline buttons (InlineKeyboardMarkup)
        payload["reply_markup"] = {"inline_keyboard": [list(buttons)]}
    telegram_call(channels, "sendMessage", payload)


# --- E-mail over SMTP (STARTTLS on 587, SSL on 465, or plain on a trusted relay).


class _WordSafePolicy(EmailPolicy):
    """The standard policy, except that a non-ASCII subject is written as encoded words that carry
    its spaces inside them. The standard folder leaves a space between two encoded words as bare
    folding white space, which RFC 2047 readers drop: «никто не звонит» arrived as «никто незвонит»."""

    def fold(self, name: str, value: str) -> str:
        if _own_encoding(name, value):
            return f"{name}: {Header(str(value), 'utf-8', header_name=name).encode(linesep=self.linesep)}{self.linesep}"
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if _own_encoding(name, value):
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


def _own_encoding(name: str, value: str) -> bool:
    return name.lower() == "subject" and not str(value).isascii()


MAIL_POLICY = _WordSafePolicy()


def one_line(text: str) -> str:
    """A header's value: line and paragraph separators (U+2028 too) and control characters, which a
    lead's name may hold and a header may not, become spaces."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text).strip()


def build_email(message: Outgoing, sender: str) -> EmailMessage:
    """Plain text, and an HTML part with the funnel chart inline when the message has them."""
    email = EmailMessage(policy=MAIL_POLICY)
    email["Subject"] = one_line(message.subject)
    email["From"] = sender
    email["To"] = message.address
    email.set_content(message.body)
    html = message.data.get("html")
    if isinstance(html, str):
        charts = message.data.get("charts")
        if not isinstance(charts, list):  # a row queued by a version that sent one picture as cid:chart
            old = message.data.get("chart_png")
            charts, html = ([old] if isinstance(old, str) else []), html.replace("cid:chart'", "cid:chart0'")
        cids = [make_msgid(domain="voronka") for _ in charts]
        for number, cid in enumerate(cids):
            html = html.replace(f"cid:chart{number}'", f"cid:{cid[1:-1]}'")
        email.add_alternative(html, subtype="html")
        html_part = email.get_body(preferencelist=("html",))
        for chart, cid in zip(charts, cids, strict=True):
            if isinstance(chart, str) and html_part is not None:
                html_part.add_related(base64.b64decode(chart), maintype="image", subtype="png", cid=cid)
    return email


def send_email(message: Outgoing, channels: Channels) -> None:
    if not channels.email or channels.smtp_host is None or channels.smtp_from is None:
        raise Refused("e-mail is not set up")
    try:
        email = build_email(message, channels.smtp_from)
        email.as_bytes()  # a header that cannot be written fails here, not halfway into the SMTP dialogue
    except (ValueError, TypeError, UnicodeError, IndexError) as exc:
        raise Refused(f"the e-mail cannot be built: {type(exc).__name__}: {exc}") from None
    try:
        with _smtp(channels) as server:
            if channels.smtp_user:
                server.login(channels.smtp_user, channels.smtp_password or "")
            server.send_message(email)
    except smtplib.SMTPRecipientsRefused as exc:
        raise Refused(f"SMTP refused {message.address}: {_smtp_reason(exc)}") from None
    except smtplib.SMTPResponseException as exc:
        reason = f"SMTP {exc.smtp_code}: {_smtp_reason(exc)}"
        if 500 <= exc.smtp_code < 600 and exc.smtp_code not in (530, 535):  # login trouble is the setup's
            raise Refused(reason) from None
        raise RetryLater(reason) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise RetryLater(f"SMTP {channels.smtp_host}: {type(exc).__name__}: {exc}") from None


def _smtp(channels: Channels) -> smtplib.SMTP:
    host, port = channels.smtp_host or "", channels.smtp_port
    context = ssl.create_default_context()
    if channels.smtp_security == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
    server = smtplib.SMTP(host, port, timeout=TIMEOUT)
    if channels.smtp_security == "starttls":
        server.starttls(context=context)
    return server


def _smtp_reason(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {text.decode(errors='replace')}" for code, text in exc.recipients.values())
    error = getattr(exc, "smtp_error", b"")
    return error.decode(errors="replace") if isinstance(error, bytes) else str(error)


# --- A generic webhook: the alert as JSON, signed with HMAC-SHA256 over "<timestamp>.<body>".

SIGNATURE_HEADER = "X-Voronka-Signature"
TIMESTAMP_HEADER = "X-Voronka-Timestamp"


def signature(key: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send_webhook(message: Outgoing, channels: Channels) -> None:
    body = json.dumps(dict(message.data), ensure_ascii=False, sort_keys=True).encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp}
    if channels.webhook_key:
        headers[SIGNATURE_HEADER] = signature(channels.webhook_key, stamp, body)
    try:
        answer = _http().post(message.address, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise RetryLater(f"webhook: {type(exc).__name__}") from None
    if answer.is_success:
        return
    wait = answer.headers.get("Retry-After")
    if answer.status_code == 429 or answer.status_code >= 500:
        raise RetryLater(f"webhook {answer.status_code}", after=float(wait) if wait and wait.isdigit() else None)
    raise Refused(f"webhook {answer.status_code}")


Sender = Callable[[Outgoing, Channels], None]
CHANNELS: Mapping[str, Sender] = {"telegram": send_telegram, "email": send_email, "webhook": send_webhook}
