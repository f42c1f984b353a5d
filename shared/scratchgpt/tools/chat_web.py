"""The chat as a web page: `python -m scratchgpt.chat --web` serves it on http://127.0.0.1:8000.

Starlette answers three routes, served by uvicorn:

- `GET /`: the page (`chat_page.html`, beside this file);
- `GET /api/settings`: the model's description, the default settings and the limits below;
- `POST /api/chat`: a JSON object `{"message", "history": [[message, answer], ...], "temperature",
  "top_k", "top_p", "max_new_tokens", "seed"}` (all but `message` optional), answered with server-sent
  events as the answer is generated: `start` (`dropped`: how many of the earliest turns no longer fit
  the context, and a `notice` saying so), a `token` per piece of text, and `done` (the whole `text`,
  the `reason` it ended: "end" or "length"), or `error`.

The server keeps no conversation: the page sends its history with each message and drops the turns
that `start` says were dropped. So a reload or a second tab is a fresh chat, and nothing grows on the
server. Generation runs in a worker thread, one answer per request, at most `Limits.concurrent` at once.

Every request is checked before any generation starts, and a bad one gets a 4xx status with a JSON
`{"error": "..."}` that names the problem: malformed JSON, an unknown field, a wrong type, a message
that is empty or too long, a history too long, settings out of range, a server busy with as many answers
as it allows (429). Closing the page (or its Stop button) ends the answer's generation.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from ..chat import ChatSession

PAGE = Path(__file__).with_name("chat_page.html")


@dataclass(frozen=True)
class Limits:
    """What one request may ask; `max_new_tokens` above the model's context is cut to it."""
    message_chars: int = 2000           # one message
    total_chars: int = 20000            # the message and its history together
    turns: int = 100                    # earlier turns sent with a message
    temperature: float = 2.0            # temperatures in [0, this]
    top_k: int = 1000                   # top-k in [1, this] (or null: no limit)
    max_new_tokens: int = 1024          # answers up to this many tokens
    concurrent: int = 2                 # answers generated at once
    body_bytes: int = 100_000           # the request's body


class RequestError(ValueError):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def number(body: dict, name: str, kind, low, high, default, nullable: bool = False, low_open: bool = False):
    """`body[name]` checked: a `kind` number in [low, high] (`low_open`: above low), or null where allowed;
    `default` when absent."""
    value = body.get(name, default)
    if value is None and (nullable or default is None):
        return None
    ok_kind = (isinstance(value, int) if kind is int else isinstance(value, (int, float)))
    if isinstance(value, bool) or not ok_kind or not math.isfinite(value):
        raise RequestError(f"{name} must be a {'whole number' if kind is int else 'number'}"
                           f"{' or null' if nullable else ''}, got {json.dumps(value)}")
    if not low <= value <= high or low_open and value == low:
        raise RequestError(f"{name} must be {'above' if low_open else 'at least'} {low} and at most {high}, "
                           f"got {value}")
    return kind(value)


FIELDS = {"message", "history", "temperature", "top_k", "top_p", "max_new_tokens", "seed"}


def parse_request(raw: bytes, chat: ChatSession, limits: Limits) -> dict:
    """The checked fields of a chat request, defaults filled in from `chat`; RequestError if it is bad."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(f"the request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(unknown)}; "
                           f"a request has {', '.join(sorted(FIELDS))}")
    message, history = body.get("message"), body.get("history", [])
    if not isinstance(message, str) or not message.strip():
        raise RequestError("message must be a non-empty string")
    if len(message) > limits.message_chars:
        raise RequestError(f"the message is {len(message)} characters long; at most {limits.message_chars} "
                           "are allowed", 413)
    if not isinstance(history, list) or not all(
            isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in history):
        raise RequestError("history must be a list of [message, answer] pairs of strings")
    if len(history) > limits.turns:
        raise RequestError(f"history has {len(history)} turns; at most {limits.turns} are allowed", 413)
    total = len(message) + sum(len(m) + len(a) for m, a in history)
    if total > limits.total_chars:
        raise RequestError(f"the message and its history are {total} characters long; at most "
                           f"{limits.total_chars} are allowed: clear the conversation", 413)
    return {"message": message, "turns": [tuple(t) for t in history],
            "temperature": number(body, "temperature", float, 0, limits.temperature, chat.temperature),
            "top_k": number(body, "top_k", int, 1, limits.top_k, chat.top_k, nullable=True),
            "top_p": number(body, "top_p", float, 0, 1, chat.top_p, nullable=True, low_open=True),
            "max_new_tokens": number(body, "max_new_tokens", int, 1, max_answer(chat, limits),
                                     chat.max_new_tokens),
            "seed": number(body, "seed", int, 0, 2**63 - 1, None, nullable=True)}


def max_answer(chat: ChatSession, limits: Limits) -> int:
    return min(limits.max_new_tokens, chat.context)


def sse(event: str, data: dict) -> str:
    """One server-sent event; the data is JSON, so newlines in the text cannot end it early."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


class GuardedStream(StreamingResponse):
    """A streaming response that frees its generation slot however it ends: finished, failed, or the
    client gone (before or during the stream)."""

    def __init__(self, content, release):
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.release = release

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            pass                                   # the page was closed or its Stop pressed
        finally:
            await self.body_iterator.aclose()      # stops the generation, if it still runs
            self.release()


def create_app(chat: ChatSession, description: str = "", limits: Limits = Limits()) -> Starlette:
    """The web app around `chat`'s model and tokenizer; `chat`'s settings are the page's defaults."""
    active = [0]     # answers being generated: one event loop thread counts them, so no lock is needed

    async def page(request: Request):
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def settings(request: Request):
        return JSONResponse({"model": description, "context": chat.context,
                             "defaults": {"temperature": chat.temperature, "top_k": chat.top_k,
                                          "top_p": chat.top_p, "max_new_tokens": chat.max_new_tokens},
                             "limits": asdict(limits) | {"max_new_tokens": max_answer(chat, limits)}})

    def error(message: str, status: int) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def answer(request: Request):
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limits.body_bytes:
                return error(f"the request body is over {limits.body_bytes} bytes", 413)
        try:
            req = parse_request(raw, chat, limits)
            session = ChatSession(chat.model, chat.tokenizer, req["temperature"], req["top_k"], req["top_p"],
                                  req["max_new_tokens"], req["seed"], req["turns"])
            reply = session.ask(req["message"])       # a message too long for the context: ValueError
        except ValueError as err:
            return error(str(err), getattr(err, "status", 400))
        if active[0] >= limits.concurrent:
            return error(f"the server is busy with {active[0]} answers, as many as it generates at once; "
                         "try again when one is done", 429)
        active[0] += 1
        released = []

        def release():
            if not released:
                released.append(True)
                active[0] -= 1

        async def events():
            try:
                yield sse("start", {"dropped": reply.dropped, "notice": reply.notice})
                async for piece in iterate_in_threadpool(iter(reply)):
                    yield sse("token", {"text": piece})
                yield sse("done", {"text": reply.text, "reason": reply.reason, "tokens": len(reply.tokens)})
            except Exception as err:                   # e.g. non-finite logits: the page says why
                yield sse("error", {"error": f"the answer failed: {err}"})
            finally:
                reply.close()                          # the client left: stop generating
                release()

        return GuardedStream(events(), release)

    return Starlette(routes=[Route("/", page), Route("/api/settings", settings),
                             Route("/api/chat", answer, methods=["POST"])])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port), bound before the server starts, so its URL is known."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise SystemExit(f"error: cannot listen on {host}:{port} ({err.strerror}); "
                         "choose another --port (0: any free one)") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def server_for(app: Starlette) -> uvicorn.Server:
    # quiet: the chat prints its own line; an answer still streaming gets a second to finish on Ctrl-C
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))


def serve(chat: ChatSession, description: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the chat page until Ctrl-C."""
    sock = bind(host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: other machines can reach the chat, "
              "and nothing asks who they are")
    print(f"chatting with the {description} on {url_of(sock)} (Ctrl-C stops the server)", flush=True)
    server_for(create_app(chat, description)).run(sockets=[sock])


@contextlib.contextmanager
def running(app: Starlette, host: str = "127.0.0.1"):
    """The app served from a background thread on a free port, for as long as the block runs: its URL."""
    sock = bind(host, 0)
    server = server_for(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the chat server did not start")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
