"""A fake Telegram Bot API, after its documentation (core.telegram.org/bots/api):

- requests go to ``/bot<token>/<method>`` with JSON (or form) parameters; methods are case-insensitive;
- every answer is ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": …, "description": …}``,
  with ``"parameters": {"retry_after": seconds}`` on 429 (flood control, "Making requests");
- a wrong token gets 401 "Unauthorized"; a chat whose user blocked the bot gets 403
  "Forbidden: bot was blocked by the user"; an unknown chat 400 "Bad Request: chat not found";
  a text empty or longer than 4096 characters 400 (sendMessage);
- ``getUpdates`` returns the updates from ``offset`` on (at most ``limit``, 1–100) and forgets those
  below it ("confirmed as soon as getUpdates is called with an offset higher than its update_id"),
  only of the types named in ``allowed_updates`` when given;
- ``sendMessage`` may carry ``reply_markup`` with an ``InlineKeyboardMarkup`` (``inline_keyboard``: rows
  of buttons, each with ``text`` and ``callback_data`` of 1–64 bytes, else 400 "BUTTON_DATA_INVALID");
  pressing one sends the bot an update with a ``CallbackQuery`` (``id``, ``from``, ``message``,
  ``chat_instance``, ``data``), which the bot must answer with ``answerCallbackQuery``
  (``callback_query_id``, optional ``text``) — an unknown or answered id is a 400 "query is too old".
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from voronka.alerts.channels import Pacer

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"


@dataclass
class StillClock:
    """A clock that moves only when voronka waits on it: pacing is checked without sleeping."""

    now: float = 0.0
    waits: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def still_pacer(clock: StillClock | None = None) -> Pacer:
    clock = clock or StillClock()
    return Pacer(clock=clock, sleep=clock.sleep)


@dataclass
class FakeTelegram:
    chats: set[int] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    flood_next: int = 0
    """Answer this many next sendMessage calls with 429."""
    flood_chats: dict[int, int] = field(default_factory=dict)
    """Answer this many next sendMessage calls to a chat with 429 (the FAQ's per-chat limit)."""
    retry_after: int = 7
    next_update: int = 1000
    answers: list[dict[str, Any]] = field(default_factory=list)
    """answerCallbackQuery calls: what the pressing user was shown."""
    _open_queries: set[str] = field(default_factory=set)

    def install(self, server: HTTPServer) -> None:
        server.expect_request(__import__("re").compile(r"^/bot[^/]+/\w+$")).respond_with_handler(self._handle)

    def user_writes(self, chat_id: int, text: str) -> None:
        """A user sends the bot a message: it waits among the updates."""
        self.chats.add(chat_id)
        self.updates.append(
            {
                "update_id": self.next_update,
                "message": {
                    "message_id": self.next_update,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"},
                    "from": {"id": chat_id, "is_bot": False, "first_name": "User"},
                    "text": text,
                },
            }
        )
        self.next_update += 1

    def user_presses(self, chat_id: int, message_id: int) -> None:
        """A user presses the first button under one of the bot's messages: a callback query waits."""
        message = next(m for m in self.sent if m["message_id"] == message_id)
        button = message["reply_markup"]["inline_keyboard"][0][0]
        query_id = f"q{self.next_update}"
        self._open_queries.add(query_id)
        self.updates.append(
            {
                "update_id": self.next_update,
                "callback_query": {
                    "id": query_id,
                    "from": {"id": chat_id, "is_bot": False, "first_name": "User"},
                    "message": message,
                    "chat_instance": f"ci{chat_id}",
                    "data": button["callback_data"],
                },
            }
        )
        self.next_update += 1

    def texts_to(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.sent if m["chat"]["id"] == chat_id]

    def _handle(self, request: Request) -> Response:
        _, bot, method = request.path.split("/", 2)
        if bot != f"bot{TOKEN}":
            return _error(401, "Unauthorized")
        params = request.get_json(silent=True) or dict(request.form)
        method = method.lower()
        if method == "getupdates":
            return self._get_updates(params)
        if method == "sendmessage":
            return self._send(params)
        if method == "answercallbackquery":
            query_id = str(params.get("callback_query_id") or "")
            if query_id not in self._open_queries:
                return _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
            self._open_queries.discard(query_id)
            self.answers.append(params)
            return _ok(True)
        return _error(404, "Not Found")

    def _get_updates(self, params: dict[str, Any]) -> Response:
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
        if not 1 <= limit <= 100:
            return _error(400, "Bad Request: limit must be between 1 and 100")
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        allowed = params.get("allowed_updates")
        kinds = set(allowed) if allowed else {"message", "callback_query"}
        return _ok([u for u in self.updates if kinds & set(u)][:limit])

    def _send(self, params: dict[str, Any]) -> Response:
        if self.flood_next > 0:
            self.flood_next -= 1
            return _error(429, f"Too Many Requests: retry after {self.retry_after}", {"retry_after": self.retry_after})
        text, chat = str(params.get("text") or ""), int(params.get("chat_id") or 0)
        if self.flood_chats.get(chat, 0) > 0:
            self.flood_chats[chat] -= 1
            return _error(429, f"Too Many Requests: retry after {self.retry_after}", {"retry_after": self.retry_after})
        if not text or len(text) > 4096:
            return _error(400, "Bad Request: message text is empty" if not text else "Bad Request: message is too long")
        if chat in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat not in self.chats:
            return _error(400, "Bad Request: chat not found")
        markup = params.get("reply_markup")
        if markup is not None:
            rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
            buttons = [b for row in rows or [] for b in row]
            if not buttons or any(not 1 <= len(str(b.get("callback_data", "")).encode()) <= 64 for b in buttons):
                return _error(400, "Bad Request: BUTTON_DATA_INVALID")
        message = {
            "message_id": len(self.sent) + 1,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "text": text,
        }
        if markup is not None:
            message["reply_markup"] = markup
        self.sent.append(message)
        return _ok(message)


def _ok(result: Any) -> Response:
    return Response(json.dumps({"ok": True, "result": result}), content_type="application/json")


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response(json.dumps(body), status=code, content_type="application/json")
