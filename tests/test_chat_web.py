"""The chat's web server (`python -m scratchgpt.chat --web`), through a real HTTP client on a real socket:
the page, the streamed answer (equal to the engine's), every limit on a request, and a server that
keeps answering after each bad one."""

import json
import time

import httpx
import pytest
import torch
from test_chat import Slow

from scratchgpt import GPTConfig, gpt2_tokenizer
from scratchgpt.chat import ChatSession
from scratchgpt.model import GPT
from scratchgpt.tools.chat_web import Limits, create_app, running

CFG = GPTConfig(context_length=128, n_embd=32, n_layer=2, n_head=2, dropout=0.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return GPT(CFG).eval()


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def server(model, tok):
    chat = ChatSession(model, tok, temperature=0.8, top_k=40, max_new_tokens=24)
    limits = Limits(message_chars=200, total_chars=1000, turns=5)
    with running(create_app(chat, "a test model", limits)) as url:
        yield url


def events(response) -> list[tuple[str, dict, float]]:
    """The server-sent events of a streamed response: (event, data, arrival time)."""
    out, event = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            out.append((event, json.loads(line[6:]), time.monotonic()))
    return out


def ask(url, **body):
    with httpx.Client(timeout=30) as client, client.stream("POST", f"{url}/api/chat", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return events(r)


def test_the_page_and_its_settings_are_served(server):
    page = httpx.get(server)
    assert page.status_code == 200 and 'id="message"' in page.text and "/api/chat" in page.text
    s = httpx.get(f"{server}/api/settings").json()
    assert s["model"] == "a test model" and s["context"] == 128
    assert s["defaults"] == {"temperature": 0.8, "top_k": 40, "top_p": None, "max_new_tokens": 24}
    assert s["limits"]["message_chars"] == 200 and s["limits"]["max_new_tokens"] == 128


def test_the_answer_streams_as_events_and_equals_the_engines(server, model, tok):
    got = ask(server, message="Name a color.", temperature=1.0, top_k=30, top_p=0.95, max_new_tokens=20,
              seed=11)
    kinds = [e for e, _, _ in got]
    assert kinds[0] == "start" and kinds[-1] == "done" and set(kinds[1:-1]) == {"token"} and len(kinds) > 3
    assert got[0][1] == {"dropped": 0, "notice": None}
    done = got[-1][1]
    engine = ChatSession(model, tok, temperature=1.0, top_k=30, top_p=0.95, max_new_tokens=20, seed=11)
    reply = engine.ask("Name a color.")
    expected = "".join(reply)
    assert "".join(d["text"] for e, d, _ in got if e == "token") == done["text"] == expected
    assert done["reason"] == reply.reason and done["tokens"] == len(reply.tokens)


def test_the_history_is_the_conversation_and_turns_that_no_longer_fit_are_reported(server, model, tok):
    history = [["Tell me " + "more and " * 12, "Well " + "and so on " * 12]] * 3
    got = ask(server, message="And now?", history=history, temperature=0, max_new_tokens=24)
    start = got[0][1]
    engine = ChatSession(model, tok, temperature=0, max_new_tokens=24, turns=history)
    reply = engine.ask("And now?")
    assert start["dropped"] == reply.dropped >= 1 and "dropped" in start["notice"]
    assert got[-1][1]["text"] == "".join(reply)


BAD = [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b'{"message": "hi", "colour": "red"}', 400, "unknown field(s) colour"),
    (b'{"history": []}', 400, "message must be a non-empty string"),
    (b'{"message": "   "}', 400, "message must be a non-empty string"),
    (b'{"message": 42}', 400, "message must be a non-empty string"),
    (json.dumps({"message": "x" * 201}).encode(), 413, "201 characters long; at most 200"),
    (b'{"message": "hi", "history": [["a"]]}', 400, "history must be a list of [message, answer] pairs"),
    (b'{"message": "hi", "history": "a"}', 400, "history must be a list"),
    (json.dumps({"message": "hi", "history": [["a", "b"]] * 6}).encode(), 413, "6 turns; at most 5"),
    (json.dumps({"message": "hi", "history": [["a" * 150, "b" * 150]] * 4}).encode(), 413,
     "1202 characters long; at most 1000"),
    (b'{"message": "hi", "temperature": -0.1}', 400, "temperature must be at least 0 and at most 2.0"),
    (b'{"message": "hi", "temperature": 5}', 400, "temperature must be at least 0 and at most 2.0"),
    (b'{"message": "hi", "temperature": "hot"}', 400, 'temperature must be a number, got "hot"'),
    (b'{"message": "hi", "temperature": null}', 400, "temperature must be a number, got null"),
    (b'{"message": "hi", "top_k": 0}', 400, "top_k must be at least 1 and at most 1000"),
    (b'{"message": "hi", "top_k": 5000}', 400, "top_k must be at least 1 and at most 1000"),
    (b'{"message": "hi", "top_k": 2.5}', 400, "top_k must be a whole number or null"),
    (b'{"message": "hi", "top_k": true}', 400, "top_k must be a whole number or null"),
    (b'{"message": "hi", "top_p": 0}', 400, "top_p must be above 0 and at most 1"),
    (b'{"message": "hi", "top_p": 1.5}', 400, "top_p must be above 0 and at most 1"),
    (b'{"message": "hi", "max_new_tokens": 0}', 400, "max_new_tokens must be at least 1 and at most 128"),
    (b'{"message": "hi", "max_new_tokens": 100000}', 400, "max_new_tokens must be at least 1 and at most"),
    (b'{"message": "hi", "seed": -1}', 400, "seed must be at least 0"),
    (json.dumps({"message": "🙂" * 60}).encode(), 400, "message is too long"),   # for the context: 120 tokens
    (b"x" * 100_001, 413, "over 100000 bytes"),
]


@pytest.mark.parametrize("body, status, message", BAD, ids=[m for _, _, m in BAD])
def test_a_bad_request_gets_a_clear_4xx_and_the_server_keeps_answering(server, body, status, message):
    r = httpx.post(f"{server}/api/chat", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_the_server_still_answers_after_the_bad_requests(server):
    assert ask(server, message="Still there?", seed=1)[-1][0] == "done"


def test_wrong_methods_and_paths_are_refused(server):
    assert httpx.get(f"{server}/api/chat").status_code == 405
    assert httpx.get(f"{server}/nothing").status_code == 404


def test_concurrent_answers_are_limited_and_a_closed_stream_frees_its_slot(model, tok):
    slow = Slow(model, 0.05)
    chat = ChatSession(slow, tok, temperature=0.0, max_new_tokens=100)
    with running(create_app(chat, "slow", Limits(concurrent=1))) as url, httpx.Client(timeout=30) as client:
        with client.stream("POST", f"{url}/api/chat", json={"message": "Go on."}) as first:
            lines = first.iter_lines()
            while not next(lines).startswith("event: token"):
                pass
            busy = client.post(f"{url}/api/chat", json={"message": "Me too."})
            assert busy.status_code == 429 and "busy" in busy.json()["error"]
        # the client left: the generation stops and the slot is free again
        deadline = time.monotonic() + 10
        while True:
            calls = slow.calls
            time.sleep(0.3)
            if slow.calls == calls:
                break
            assert time.monotonic() < deadline, "the generation went on after the client left"
        assert calls < 60
        with client.stream("POST", f"{url}/api/chat", json={"message": "Now?", "max_new_tokens": 2}) as r:
            assert r.status_code == 200 and events(r)[-1][0] == "done"


def test_a_broken_model_gets_an_error_event_not_a_dead_server(tok):
    broken = GPT(CFG).eval()
    with torch.no_grad():
        broken.lm_head.weight.fill_(float("nan"))      # as after a diverged training run
    with running(create_app(ChatSession(broken, tok))) as url:
        for _ in range(2):
            got = ask(url, message="Hello?")
            assert [e for e, _, _ in got] == ["start", "error"] and "not finite" in got[-1][1]["error"]
