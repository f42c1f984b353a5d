"""The terminal chat, `python -m scratchgpt.chat`: its commands, Ctrl-C, and its errors for a model that
cannot be loaded; and once for real, in a pseudo-terminal, as a person types into it."""

import os
import pty
import select
import signal
import sys
import time

import pytest
import torch
from safetensors.torch import save_file
from test_chat import Scripted

from scratchgpt import EOT_ID, GPTConfig, gpt2_tokenizer
from scratchgpt.chat import ChatSession
from scratchgpt.checkpoint import save_checkpoint
from scratchgpt.course.profiles import STANDIN_ENV
from scratchgpt.gpt2_weights import CONV1D
from scratchgpt.model import GPT
from scratchgpt.tools import chat as chat_tool
from scratchgpt.tools.chat import chat_loop, main


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer()


def run(chat, lines):
    """Drive `chat_loop` with typed `lines` (an exception instance is raised there instead); its output."""
    out, lines = [], list(lines)

    def read(prompt):
        out.append(prompt)
        if not lines:
            raise EOFError
        line = lines.pop(0)
        if isinstance(line, BaseException):
            raise line
        out.append(line + "\n")
        return line

    chat_loop(chat, read, out.append)
    return "".join(out)


def test_a_message_is_answered_and_the_commands_change_the_settings(tok):
    chat = ChatSession(Scripted(tok.encode(" Blue.") + [EOT_ID]), tok, temperature=0.0, top_k=50)
    out = run(chat, ["Name a color.", "/temp 0.2", "/topk off", "/topp 0.9", "/max 5", "/seed 4", "/settings",
                     "/help", "", "/quit", "never read"])
    assert "you> Name a color.\ngpt>  Blue.\n" in out
    assert (chat.temperature, chat.top_k, chat.top_p, chat.max_new_tokens) == (0.2, None, 0.9, 5)
    assert "(seed 4)" in out
    assert "temperature 0.2, top-k off, top-p 0.9, answers up to 5 tokens" in out
    assert "/clear" in out and "Ctrl-C stops an answer" in out           # the help
    assert "never read" not in out and chat.turns == [("Name a color.", " Blue.")]


def test_bad_commands_are_explained_and_change_nothing(tok):
    chat = ChatSession(Scripted([EOT_ID]), tok, temperature=0.7)
    out = run(chat, ["/temp -1", "/temp hot", "/topk 0", "/topp 2", "/max 1.5", "/seed x", "/bogus"])
    assert "/temp: temperature must be a finite number >= 0" in out
    assert "/temp needs a number, got 'hot'" in out
    assert "/topk: top_k must be" in out and "/topp: top_p must be" in out
    assert "/max needs a whole number, got '1.5'" in out and "/seed needs a whole number" in out
    assert "unknown command /bogus; /help lists them" in out
    assert (chat.temperature, chat.top_k, chat.top_p) == (0.7, 50, None)


def test_clear_forgets_and_a_too_long_message_is_explained(tok):
    chat = ChatSession(Scripted(tok.encode(" ok") + [EOT_ID]), tok, temperature=0.0, max_new_tokens=32)
    out = run(chat, ["hello", "/clear", "word " * 200])
    assert "(the conversation is cleared)" in out and "(the message is too long" in out and chat.turns == []


def test_ctrl_c_stops_an_answer_not_the_chat(tok):
    model = Scripted(tok.encode(" one two three four five six") + [EOT_ID])
    forward = model.forward

    def interrupted(idx):                       # Ctrl-C while the model computes the third token
        if model.calls == 2:
            model.calls += 1
            raise KeyboardInterrupt
        return forward(idx)

    model.forward = interrupted
    chat = ChatSession(model, tok, temperature=0.0)
    out = []
    lines = [KeyboardInterrupt(), "count", "/quit"]   # and once at the prompt, which only says how to leave
    chat_loop(chat, lambda prompt: _pop(lines), out.append)
    out = "".join(out)
    assert "(Ctrl-D or /quit to leave)" in out
    assert "gpt>  one two [stopped]\n" in out
    assert chat.turns == [("count", " one two")]


def _pop(lines):
    line = lines.pop(0)
    if isinstance(line, BaseException):
        raise line
    return line


# ---- the command line's errors: the model cannot be had ------------------------------------------------

TINY = GPTConfig(context_length=64, n_embd=32, n_layer=2, n_head=2, dropout=0.0)


def error_of(argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return str(stop.value.code)


def test_a_missing_checkpoint_names_the_command_that_makes_one(tmp_path):
    err = error_of(["--checkpoint", str(tmp_path / "nothing.safetensors")])
    assert err.startswith("error: no model file") and "python -m scratchgpt.pretrain --profile tiny" in err


def test_a_corrupt_checkpoint_is_refused_with_the_command_to_make_it_again(tmp_path):
    path = save_checkpoint(tmp_path / "model.safetensors", GPT(TINY))
    path.write_bytes(path.read_bytes()[:-100])
    err = error_of(["--checkpoint", str(path)])
    assert err.startswith(f"error: {path} cannot be loaded")
    assert "to make it again: python -m scratchgpt.pretrain" in err


def test_a_missing_tiny_model_is_made_as_the_notebooks_make_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("scratchgpt.course.models.DATA_DIR", tmp_path)
    made = []

    def instruction_tuned(p):          # stands in for minutes of fine-tuning; records what was asked
        made.append(p.name)
        return GPT(TINY)

    monkeypatch.setattr("scratchgpt.course.models.instruction_tuned", instruction_tuned)
    model, description = chat_tool.load_model(chat_tool.parse_args(["--profile", "tiny"]))
    assert made == ["tiny"] and isinstance(model, GPT) and description == "tiny profile, instruct model"
    assert "no cached instruct model for the tiny profile yet: making it" in capsys.readouterr().err


def test_a_damaged_profile_model_names_the_notebook_and_a_command(tmp_path, monkeypatch):
    monkeypatch.setattr("scratchgpt.course.models.DATA_DIR", tmp_path)
    (tmp_path / "tiny-instruct.safetensors").write_bytes(b"not a checkpoint")
    (tmp_path / "tiny-pretrained.safetensors").write_bytes(b"not a checkpoint")
    err = error_of(["--profile", "tiny"])
    assert "tiny-instruct.safetensors" in err and "instruction fine-tuning notebook" in err
    assert "c.instruction_tuned(c.profile('tiny'))" in err
    err = error_of(["--profile", "tiny", "--model", "pretrained"])
    assert "tiny-pretrained.safetensors" in err and "c.pretrained(c.profile('tiny'))" in err


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_pretrain_checkpoint_loads_with_its_own_shape(tmp_path):
    torch.manual_seed(2)
    model = GPT(TINY.with_(n_layer=3))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.tensor([[1, 2, 3]])).sum().backward()
    optimizer.step()
    # as `python -m scratchgpt.pretrain` writes it: optimizer state, step and run settings beside the model
    path = save_checkpoint(tmp_path / "checkpoint.safetensors", model, optimizer, step=1,
                           extra={"run": {"profile": "tiny"}, "position": 4})
    loaded, description = chat_tool.load_model(chat_tool.parse_args(["--checkpoint", str(path)]))
    assert loaded.config.n_layer == 3 and same_weights(loaded, model) and not loaded.training
    assert description == f"checkpoint {path}"


def test_the_profiles_cached_model_loads(tmp_path, monkeypatch):
    monkeypatch.setattr("scratchgpt.course.models.DATA_DIR", tmp_path)
    torch.manual_seed(3)
    model = GPT(TINY)                # the file's own configuration shapes the model, as for the real cache
    save_checkpoint(tmp_path / "tiny-instruct.safetensors", model, extra={"recipe": "any"})
    loaded, description = chat_tool.load_model(chat_tool.parse_args(["--profile", "tiny"]))
    assert same_weights(loaded, model) and description == "tiny profile, instruct model"


def test_gpt2_weights_load_under_the_gpt2_profile(tmp_path, monkeypatch):
    # a small file in GPT-2's own format (Conv1D weights transposed, no "transformer." prefix) stands in
    # for OpenAI's weights, as the profile tests do
    torch.manual_seed(4)
    model = GPT(GPTConfig(context_length=64, n_embd=64, n_layer=2, n_head=1))
    tensors = {k.removeprefix("transformer."): (v.t() if k.endswith(CONV1D) else v).contiguous()
               for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    monkeypatch.setenv(STANDIN_ENV, str(tmp_path / "model.safetensors"))
    loaded, description = chat_tool.load_model(chat_tool.parse_args(["--profile", "gpt2", "--model",
                                                                     "pretrained"]))
    assert same_weights(loaded, model) and description == "GPT-2 124M"
    err = error_of(["--profile", "gpt2"])           # its instruction-tuned model was never made here
    assert "gpt2-instruct.safetensors" in err and "c.instruction_tuned(c.profile('gpt2'))" in err


def test_bad_flags_are_named(capsys):
    for argv, flag in [(["--temperature", "-1"], "--temperature"), (["--top-p", "1.5"], "--top-p"),
                       (["--top-k", "0"], "--top-k"), (["--port", "x"], "--port")]:
        with pytest.raises(SystemExit):
            chat_tool.parse_args(argv)
        assert flag in capsys.readouterr().err


# ---- as a person uses it: a real process in a pseudo-terminal -------------------------------------------

class Terminal:
    """`python -m scratchgpt.chat ARGS` in a pseudo-terminal: type into it, read what it shows."""

    def __init__(self, args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:                                         # the child: the chat
            os.execv(sys.executable, [sys.executable, "-m", "scratchgpt.chat", *args])
        self.seen = ""

    def read_until(self, text, timeout=60.0, start=0):
        deadline = time.monotonic() + timeout
        while text not in self.seen[start:]:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"{text!r} did not show within {timeout} s; "
                                     f"the terminal shows:\n{self.seen}")
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:                                       # the chat ended
                chunk = b""
            if not chunk:
                raise AssertionError(f"the chat ended before {text!r} showed:\n{self.seen}")
            self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return self.seen.index(text, start) + len(text)

    def type(self, keys):
        os.write(self.fd, keys.encode())

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.mark.slow
def test_the_terminal_chat_streams_stops_on_ctrl_c_and_answers_as_the_engine(tmp_path, tok):
    torch.manual_seed(0)
    # a long context, so that an answer runs long enough to be stopped half-way
    model = GPT(TINY.with_(context_length=4096)).eval()
    path = save_checkpoint(tmp_path / "model.safetensors", model)
    term = Terminal(["--checkpoint", str(path), "--temperature", "0", "--max-new-tokens", "4000"])
    try:
        at = term.read_until("you> ")
        assert "chatting with the checkpoint" in term.seen
        term.type("Tell me a long story.\n")
        began = term.read_until("gpt> ", start=at)
        time.sleep(0.3)
        term.type("\x03")                                        # Ctrl-C, as the keyboard sends it
        at = term.read_until(" [stopped]", start=began)
        assert term.seen[began:at - len(" [stopped]")].strip()   # part of the answer showed before it
        at = term.read_until("you> ", start=at)
        term.type("/clear\n")
        at = term.read_until("you> ", start=at)
        term.type("/max 12\n")
        at = term.read_until("you> ", start=at)
        term.type("Name a color.\n")
        start = term.read_until("gpt> ", start=at)
        end = term.read_until("you> ", start=start)
        shown = term.seen[start:end - len("you> ")]
        engine = ChatSession(model, tok, temperature=0.0, max_new_tokens=12)
        expected = "".join(engine.stream("Name a color."))
        assert shown.rstrip("\n").removesuffix(" [length limit]") == expected
        term.type("/quit\n")
        _, status = os.waitpid(term.pid, 0)
        term.pid = None
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if term.pid:
            term.close()
        else:
            os.close(term.fd)
