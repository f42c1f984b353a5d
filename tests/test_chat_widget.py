"""The notebook's chat box: what it shows after Send is the engine's answer, side by side for several
models, streamed as it grows; Clear forgets; and `transcript` writes the same conversation as text."""

import html

import pytest
import torch
from test_chat import CHATTY, Scripted

from scratchgpt import gpt2_tokenizer
from scratchgpt.chat import ChatSession
from scratchgpt.chat.widget import chat_box, transcript
from scratchgpt.model import GPT

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(5)
    first = GPT(CHATTY).eval()
    torch.manual_seed(6)
    return {"reference": first, "tuned": GPT(CHATTY).eval()}


def shown(box, name):
    value = box.columns[name].value
    return html.unescape(value.split("<pre style='white-space: pre-wrap'>")[1].removesuffix("</pre>"))


def test_send_shows_each_models_answer_as_the_engine_gives_it(models, tok):
    settings = {"temperature": 0.8, "top_k": 20, "max_new_tokens": 12, "seed": 3}
    box = chat_box(models, tok, **settings)
    box.message.value = "Name a color."
    box.send()
    assert box.message.value == ""                                    # the box is ready for the next one
    answers = {name: "".join(ChatSession(model, tok, **settings).ask("Name a color.")).strip()
               for name, model in models.items()}
    assert answers["reference"] != answers["tuned"]                    # two models, two answers
    for name in models:
        assert shown(box, name) == f"You: Name a color.\n{name}: {answers[name]}\n\n"
    assert transcript(models, ["Name a color."], tok, **settings) == (
        f"You: Name a color.\nreference: {answers['reference']}\ntuned: {answers['tuned']}\n")
    box.clear()
    assert all(shown(box, name) == "" for name in models)


def test_the_answer_streams_into_the_column_piece_by_piece(tok):
    script = tok.encode(" red, green and blue") + [50256]
    box = chat_box(Scripted(script), tok, temperature=0.0)
    seen = []
    box.columns["model"].observe(lambda change: seen.append(change["new"]), names="value")
    box.message.value = "Name three colors."
    box.send()
    growing = [html.unescape(v) for v in seen if "model: " in html.unescape(v)]
    assert len(growing) >= len(script) - 1                     # one update per piece, then the final one
    assert growing[-1].endswith("model: red, green and blue\n\n</pre>")


def test_an_empty_or_too_long_message_is_said_in_the_column_not_raised(tok):
    box = chat_box(Scripted([50256]), tok)
    box.message.value = "   "
    box.send()
    assert shown(box, "model") == ""
    box.message.value = "word " * 200
    box.send()
    assert "(not sent: the message is too long" in shown(box, "model")
