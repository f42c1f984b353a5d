"""The chat engine (scratchgpt.chat): its streamed tokens are `generate`'s, its text is whole characters,
it stops at <|endoftext|> or the length limit, and the conversation stays within the context."""

import time

import pytest
import torch

from scratchgpt import EOT_ID, GPTConfig, gpt2_tokenizer
from scratchgpt.chat import ChatSession, Utf8Text, stream_tokens
from scratchgpt.generation import generate
from scratchgpt.instruction import RESPONSE_HEADER, format_input
from scratchgpt.model import GPT
from scratchgpt.tokenizer import encode_text

SMALL = GPTConfig(vocab_size=300, context_length=32, n_embd=32, n_layer=2, n_head=2, dropout=0.0)
# GPT-2's vocabulary, so that the tokenizer's ids fit; context 128 as the tiny profile's
CHATTY = GPTConfig(context_length=128, n_embd=32, n_layer=2, n_head=2, dropout=0.0)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return GPT(SMALL).eval()


@pytest.fixture(scope="module")
def chatty():
    torch.manual_seed(1)
    return GPT(CHATTY).eval()


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer()


class Scripted(torch.nn.Module):
    """A stand-in model that answers a fixed list of tokens, whatever the prompt: its logits put the
    script's next token first. It counts its calls (no cache: one call per token); a call past the end
    of the script fails."""

    def __init__(self, script, context=128, vocab=50257):
        super().__init__()
        self.config = GPTConfig(vocab_size=vocab, context_length=context)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.script, self.calls = list(script), 0

    def forward(self, idx):
        logits = torch.zeros(idx.size(0), idx.size(1), self.config.vocab_size)
        logits[:, -1, self.script[self.calls]] = 1.0
        self.calls += 1
        return logits


class Slow(torch.nn.Module):
    """`model`, `delay` seconds slower per call, so that an answer takes long enough to watch it come
    (the web and browser tests use it). It counts its calls."""

    def __init__(self, model, delay):
        super().__init__()
        self.inner, self.config, self.delay, self.calls = model, model.config, delay, 0

    def new_cache(self):
        return self.inner.new_cache()

    def forward(self, idx, kv_cache=None, last_only=False):
        self.calls += 1
        time.sleep(self.delay)
        return self.inner(idx, kv_cache, last_only)


SETTINGS = [dict(temperature=0.0), dict(temperature=1.0), dict(temperature=0.8, top_k=5),
            dict(temperature=1.2, top_p=0.9), dict(temperature=0.7, top_k=20, top_p=0.8)]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_streamed_tokens_are_generates_also_past_the_context(small, settings):
    prompt = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    # 60 new tokens after 8: the text outgrows the 32-token context, where the cache must start again
    expected = generate(small, prompt, 60, generator=torch.Generator().manual_seed(5), **settings)
    streamed = list(stream_tokens(small, prompt, 60, generator=torch.Generator().manual_seed(5), **settings))
    assert streamed == expected[0, 8:].tolist()


def test_streaming_stops_after_the_end_token_as_generate_does(small):
    prompt = torch.tensor([[7, 7, 7]])
    free = generate(small, prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(2))[0, 3:]
    eos = free[6].item()           # a token the run makes: with it as the end token, the run stops there
    first = free.tolist().index(eos)
    expected = generate(small, prompt, 20, temperature=1.0, eos_id=eos,
                        generator=torch.Generator().manual_seed(2))
    streamed = list(stream_tokens(small, prompt, 20, temperature=1.0, eos_id=eos,
                                  generator=torch.Generator().manual_seed(2)))
    assert streamed == free[: first + 1].tolist() == expected[0, 3:].tolist()


def test_stream_tokens_refuses_a_batch_and_bad_requests(small):
    with pytest.raises(ValueError, match="one sequence"):
        list(stream_tokens(small, torch.zeros(2, 3, dtype=torch.long), 4))
    with pytest.raises(ValueError, match="temperature"):
        list(stream_tokens(small, torch.zeros(1, 3, dtype=torch.long), 4, temperature=-1.0))


def test_the_first_answer_is_generate_on_the_instruction_notebooks_prompt(chatty, tok):
    chat = ChatSession(chatty, tok, temperature=0.9, top_k=40, max_new_tokens=30, seed=7)
    reply = chat.ask("Name a color.")
    pieces = list(reply)
    prompt = format_input({"instruction": "Name a color.", "input": ""}) + RESPONSE_HEADER
    ids = torch.tensor([tok.encode(prompt)])
    assert reply.prompt_ids == ids[0].tolist()
    out = generate(chatty, ids, 30, temperature=0.9, top_k=40, eos_id=EOT_ID,
                   generator=torch.Generator().manual_seed(7))[0, ids.size(1):].tolist()
    assert reply.tokens == out
    answer = out[:-1] if out[-1] == EOT_ID else out
    assert "".join(pieces) == reply.text == tok.decode(answer)
    assert all(pieces) and reply.reason == ("end" if out[-1] == EOT_ID else "length")
    assert chat.turns == [("Name a color.", reply.text)]


def test_a_follow_up_continues_the_conversation_in_the_same_format(chatty, tok):
    chat = ChatSession(chatty, tok, temperature=0.0, max_new_tokens=8)
    first = "".join(chat.ask("Hi"))
    reply = chat.ask("And then?")
    expected = (format_input({"instruction": "Hi"}) + RESPONSE_HEADER + first
                + "\n\n### Instruction:\nAnd then?" + RESPONSE_HEADER)
    assert tok.decode(reply.prompt_ids) == expected and reply.dropped == 0 and reply.notice is None


def byte_tokens(text, tok):
    """`text` as one token per UTF-8 byte (GPT-2's vocabulary has a token for every byte)."""
    return [tok.encode_single_token(bytes([b])) for b in text.encode("utf-8")]


def test_text_is_emitted_only_when_a_character_is_whole(tok):
    # "가" is 3 bytes and "🙂" 4: one token each, the character shows at its last byte and not before
    script = byte_tokens("가🙂!", tok) + [EOT_ID, 0, 0]
    model = Scripted(script)
    pieces = []
    reply = ChatSession(model, tok, temperature=0.0, max_new_tokens=20).ask("hi")
    for piece in reply:
        pieces.append((model.calls, piece))
    assert pieces == [(3, "가"), (7, "🙂"), (8, "!")]
    assert reply.reason == "end" and reply.text == "가🙂!"
    assert model.calls == 9                    # nothing is generated after <|endoftext|>


def test_korean_and_emoji_split_by_the_tokenizer_stream_without_broken_characters(tok):
    text = "안녕하세요! 한국어와 이모지 👋🏽🇰🇷 를 섞어요 ✨"
    ids = tok.encode(text)
    alone = [tok.decode_single_token_bytes(i) for i in ids]
    assert any(not _is_utf8(b) for b in alone)     # the tokenizer does split characters here
    reply = ChatSession(Scripted(ids + [EOT_ID]), tok, temperature=0.0, max_new_tokens=100).ask("hi")
    pieces = list(reply)
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    assert len(pieces) < len(ids)                 # some tokens had to wait for the rest of a character


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_an_unfinished_character_at_the_end_shows_as_tokenizer_decode_shows_it(tok):
    ids = byte_tokens("ok🙂", tok)[:-1]           # the emoji's last byte never comes
    text = Utf8Text(tok)
    out = "".join(text.add(i) for i in ids) + text.flush()
    assert out == tok.decode(ids) == "ok\ufffd"


def test_the_answer_stops_at_the_length_limit(tok):
    model = Scripted(tok.encode(" one two three four five six seven"))
    reply = ChatSession(model, tok, temperature=0.0, max_new_tokens=4).ask("count")
    assert "".join(reply) == " one two three four" and reply.reason == "length" and len(reply.tokens) == 4


def test_earlier_turns_are_dropped_oldest_first_to_fit_the_context(chatty, tok):
    turns = [(f"Question {i}: " + "tell me more " * 6, "Answer " + "and so on " * 6) for i in range(3)]
    chat = ChatSession(chatty, tok, temperature=0.0, max_new_tokens=24, turns=turns)
    reply = chat.ask("One more?")
    assert reply.dropped >= 1 and "dropped" in reply.notice and "128" in reply.notice
    kept = turns[reply.dropped:]
    assert tok.decode(reply.prompt_ids) == chat.prompt("One more?", kept)
    assert len(reply.prompt_ids) + 24 <= 128
    # and no more were dropped than needed: with one more turn kept, prompt and answer would not fit
    longer = encode_text(chat.prompt("One more?", turns[reply.dropped - 1:]), tok)
    assert len(longer) + 24 > 128
    list(reply)
    assert chat.turns == kept + [("One more?", reply.text)]


def test_a_message_too_long_for_the_context_is_refused_and_changes_nothing(chatty, tok):
    chat = ChatSession(chatty, tok, max_new_tokens=32, turns=[("a", "b")])
    with pytest.raises(ValueError, match="message is too long.*128"):
        chat.ask("word " * 120)
    assert chat.turns == [("a", "b")]


@pytest.mark.parametrize("setting, value", [("temperature", -0.5), ("temperature", float("nan")),
                                            ("top_k", 0), ("top_k", 2.5), ("top_p", 0.0), ("top_p", 1.5),
                                            ("max_new_tokens", 0)])
def test_bad_settings_are_named(chatty, tok, setting, value):
    chat = ChatSession(chatty, tok)
    setattr(chat, setting, value)
    with pytest.raises(ValueError, match=setting):
        chat.ask("hi")


def test_an_empty_message_is_refused(chatty, tok):
    with pytest.raises(ValueError, match="empty"):
        ChatSession(chatty, tok).ask("   ")


def test_a_stopped_answer_keeps_what_was_shown_and_the_model_mode(tok):
    model = Scripted(tok.encode(" a b c d e f g h"))
    model.train()
    chat = ChatSession(model, tok, temperature=0.0, max_new_tokens=8)
    reply = chat.ask("go")
    seen = [next(iter(reply)), next(iter(reply))]
    reply.close()
    assert reply.reason == "stopped" and chat.turns == [("go", "".join(seen))] and seen == [" a", " b"]
    assert model.training


def test_the_same_seed_gives_the_same_answers_and_clear_forgets(chatty, tok):
    answers = []
    for _ in range(2):
        chat = ChatSession(chatty, tok, temperature=1.0, max_new_tokens=10, seed=3)
        answers.append(["".join(chat.stream(m)) for m in ("Hi", "More")])
    assert answers[0] == answers[1]
    chat.clear()
    assert chat.turns == []
