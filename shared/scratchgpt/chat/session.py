"""A chat with an instruction-tuned GPT: the conversation in the Alpaca prompt format, the answer streamed
as it is generated.

The instruction fine-tuning notebook trains on one instruction and its response:

    {PREAMBLE}\\n\\n### Instruction:\\n{instruction}\\n\\n### Response:\\n{output}<|endoftext|>

A conversation continues the same pattern, turn after turn, under one preamble; the first turn's prompt
is exactly the notebook's `format_input(...) + RESPONSE_HEADER`. The model answers until it produces
`<|endoftext|>` or reaches the length limit. Earlier turns that no longer fit the context are dropped,
oldest first (the reply says so), since a prompt cut in the middle would lose its preamble.

Streaming needs each token as soon as it is sampled, while `generation.decode` hands back the whole
sequence at the end. So `stream_tokens` calls `decode` for one token at a time: the sampling
(temperature, top-k, top-p, the checks) is the package's own, and the model's key/value cache carries
over from call to call, so each step still feeds only the newest token. With the same generator it
gives exactly `generate`'s tokens (tested).

Tokens are bytes, not characters: GPT-2's byte-level BPE splits a Korean syllable or an emoji across
tokens. Text is emitted only once its UTF-8 bytes make whole characters (`codecs`' incremental decoder
holds back an unfinished one), so no half character ever shows as '\\ufffd'.

For a front end (the terminal, the web page, a notebook widget):

    chat = ChatSession(model, temperature=0.7, top_k=50)
    reply = chat.ask("Name a color.")     # builds the prompt now: a message too long raises ValueError
    if reply.notice: print(reply.notice)  # "dropped the 2 earliest turns ..."
    for piece in reply: print(piece, end="", flush=True)
    reply.reason                          # "end" (<|endoftext|>), "length" or "stopped" (closed early)
    chat.clear()                          # forget the conversation
"""

from __future__ import annotations

import codecs
import inspect
import math

import torch

from ..generation import check_request, decode
from ..instruction import PREAMBLE, RESPONSE_HEADER
from ..tokenizer import EOT_ID, encode_text, gpt2_tokenizer

INSTRUCTION_HEADER = "\n\n### Instruction:\n"


@torch.no_grad()
def stream_tokens(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                  top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
                  generator: torch.Generator | None = None):
    """`generation.generate` for one sequence (1, T), yielding each new token id as soon as it is sampled.
    Stops after `eos_id` (which it yields) or `max_new_tokens` tokens. The same arguments and checks."""
    check_request(idx, max_new_tokens, temperature, getattr(model.config, "vocab_size", None))
    if idx.size(0) != 1:
        raise ValueError(f"stream_tokens streams one sequence: the prompt must be (1, tokens), "
                         f"got shape {tuple(idx.shape)}")
    cached = hasattr(model, "new_cache")
    head = {"last_only": True} if "last_only" in inspect.signature(model.forward).parameters else {}
    cache = model.new_cache() if cached else None

    def step(visible: torch.Tensor, fresh: bool) -> torch.Tensor:
        # decode(..., 1) calls every step its first, so `fresh` is always True here: the cache itself tells
        # whether it holds all of `visible` but the newest token. It does not once the text outgrows the
        # context (the window shifts, so the positions under the cached keys change): encode it again.
        nonlocal cache
        if not cached:
            return model(visible, **head)[:, -1, :]
        if cache.length == visible.size(1) - 1 and cache.length > 0:
            return model(visible[:, -1:], cache, **head)[:, -1, :]
        cache = model.new_cache()
        return model(visible, cache, **head)[:, -1, :]

    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            idx = decode(step, idx, 1, model.config.context_length, temperature, top_k, top_p,
                         generator=generator)
            token = idx[0, -1].item()
            yield token
            if token == eos_id:
                return
    finally:
        model.train(was_training)


class Utf8Text:
    """Token ids in, text out, one whole character at a time: `add(id)` returns the text that the bytes
    so far complete ('' while a character is unfinished); `flush()` the rest (an unfinished character
    at the very end becomes '\\ufffd', as `tokenizer.decode` would show it)."""

    def __init__(self, tokenizer):
        self.token_bytes = tokenizer.decode_single_token_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token: int) -> str:
        return self.decoder.decode(self.token_bytes(token))

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)


def check_settings(temperature: float, top_k: int | None, top_p: float | None, max_new_tokens: int) -> None:
    """A clear error for a setting that cannot sample, naming it."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0: always the most likely token), "
                         f"got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a whole number >= 1, or None for no limit; got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1], or None for no limit; got {top_p!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")


class ChatSession:
    """A conversation with `model` (a GPT, or any model with `generate`'s interface) in the Alpaca format.

    Settings are plain attributes, checked when an answer starts: `temperature` (0: greedy), `top_k`,
    `top_p` (None: no limit), `max_new_tokens` (the length limit of one answer; default: half the context,
    at most 256). `seed` fixes the sampling: the same seed, settings and conversation give the same
    answers. `turns` is the conversation so far, a list of (message, answer) pairs.
    """

    def __init__(self, model, tokenizer=None, temperature: float = 0.7, top_k: int | None = 50,
                 top_p: float | None = None, max_new_tokens: int | None = None, seed: int | None = None,
                 turns: list[tuple[str, str]] | None = None):
        self.model, self.tokenizer = model, tokenizer or gpt2_tokenizer()
        self.context = model.config.context_length
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.max_new_tokens = min(256, self.context // 2) if max_new_tokens is None else max_new_tokens
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)
        self.reseed(seed)
        self.turns = [(str(m), str(a)) for m, a in turns or []]

    def reseed(self, seed: int | None = None) -> None:
        """Start the sampling's random numbers again from `seed` (None: a fresh random seed)."""
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def clear(self) -> None:
        """Forget the conversation (the settings stay)."""
        self.turns = []

    def prompt(self, message: str, turns: list[tuple[str, str]] | None = None) -> str:
        """The text the model continues: the earlier `turns` (default: this session's) and `message`."""
        turns = self.turns if turns is None else turns
        text = PREAMBLE
        for said, answered in turns:
            text += INSTRUCTION_HEADER + said + RESPONSE_HEADER + answered
        return text + INSTRUCTION_HEADER + message + RESPONSE_HEADER

    def ask(self, message: str) -> Reply:
        """Start the answer to `message`: the prompt is built (earlier turns dropped to fit the context)
        and checked now; iterating the `Reply` generates the answer. A ValueError names what is wrong."""
        check_settings(self.temperature, self.top_k, self.top_p, self.max_new_tokens)
        if not isinstance(message, str) or not message.strip():
            raise ValueError("the message is empty: type something for the model to answer")
        # drop the oldest turns until the prompt and a whole answer fit the context
        for dropped in range(len(self.turns) + 1):
            ids = encode_text(self.prompt(message, self.turns[dropped:]), self.tokenizer)
            if len(ids) + self.max_new_tokens <= self.context:
                break
        # with no earlier turn left, the answer may still get what room there is, but some it must get:
        # a prompt cut at the front would lose its preamble and its instruction
        room = min(self.max_new_tokens, self.context - len(ids))
        least = min(self.max_new_tokens, self.context // 4)
        if room < least:
            raise ValueError(f"the message is too long: with the prompt format it takes {len(ids)} of the "
                             f"model's {self.context} tokens of context, leaving {max(room, 0)} for the "
                             f"answer (at least {least} needed); write a shorter one")
        notice = None
        if dropped:
            notice = (f"dropped the {'earliest turn' if dropped == 1 else f'{dropped} earliest turns'} of "
                      f"the conversation: it no longer fits the model's context of {self.context} tokens")
        return Reply(self, message, ids, room, dropped, notice)

    def stream(self, message: str) -> Reply:
        """`ask(message)`, to iterate at once: `for piece in chat.stream("Hi"): ...`."""
        return self.ask(message)


class Reply:
    """One answer being generated: iterate it for text pieces (each whole characters). Afterwards,
    `text` is the answer, `tokens` its token ids (with the final <|endoftext|> if there was one),
    `reason` why it ended: "end" (<|endoftext|>), "length" (the length limit) or "stopped" (the
    iteration was closed or interrupted, e.g. Ctrl-C). The turn, however far it got, joins the
    conversation when the answer ends, replacing the `dropped` earliest turns' place."""

    def __init__(self, session: ChatSession, message: str, prompt_ids: list[int], max_new_tokens: int,
                 dropped: int, notice: str | None):
        self.session, self.message, self.prompt_ids = session, message, prompt_ids
        self.max_new_tokens, self.dropped, self.notice = max_new_tokens, dropped, notice
        self.text, self.tokens, self.reason = "", [], None
        self._pieces = self._generate()

    def __iter__(self):
        return self._pieces

    def close(self) -> None:
        """Stop generating (the answer so far still joins the conversation)."""
        self._pieces.close()

    def _generate(self):
        s = self.session
        text = Utf8Text(s.tokenizer)
        idx = torch.tensor([self.prompt_ids], device=s.device)
        tokens = stream_tokens(s.model, idx, self.max_new_tokens, s.temperature, s.top_k, s.top_p, EOT_ID,
                               s.generator)
        self.reason = "stopped"
        try:
            for token in tokens:
                self.tokens.append(token)
                if token == EOT_ID:
                    self.reason = "end"
                    break
                piece = text.add(token)
                if piece:
                    self.text += piece
                    yield piece
            else:
                self.reason = "length"
            piece = text.flush()
            if piece:
                self.text += piece
                yield piece
        finally:
            tokens.close()          # restores the model's training mode now, not when garbage collected
            # the turn as far as it got, also when stopped: it is what the person saw
            s.turns = s.turns[self.dropped:] + [(self.message, self.text)]
