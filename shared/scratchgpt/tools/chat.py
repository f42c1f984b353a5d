"""The chat: talk to a model the curriculum made, in the terminal or (`--web`) in the browser.

    python -m scratchgpt.chat                        # the profile's instruction-tuned model (tiny by default)
    python -m scratchgpt.chat --profile gpt2 --model pretrained
    python -m scratchgpt.chat --checkpoint runs/pretrain-tiny/checkpoint.safetensors
    python -m scratchgpt.chat --web                  # the same chat as a page on http://127.0.0.1:8000

The model answers in the Alpaca prompt format of the instruction fine-tuning notebook, streamed token by
token (`scratchgpt.chat`). A model made by `python -m scratchgpt.pretrain` or saved from a notebook with
`save_checkpoint` (a DPO-tuned one, say) loads with `--checkpoint`; the course caches no DPO-tuned model.
In the terminal, type a message and watch the answer come; Ctrl-C stops an answer, not the chat;
`/help` lists the commands (`/clear`, `/temp 0.7`, ...). On a fresh clone the tiny profile's model is
made first, as the notebooks make it (a few minutes); any other missing or damaged model is an
`error: ...` line that gives the command that makes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..chat import ChatSession, check_settings
from ..checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from ..config import GPTConfig
from ..course.models import cache_path, instruct_cache_path
from ..course.profiles import PROFILES, profile
from ..data import DataError
from ..gpt2_weights import gpt2_model
from ..model import GPT
from .pretrain import _number, device_name, positive_int

nonneg_float = _number(float, 0.0, True, "a finite number, 0 or more")
unit_float = _number(float, 0.0, False, "a number in (0, 1]")


def top_p_float(text: str) -> float:
    value = unit_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text}")
    return value


class ModelError(RuntimeError):
    """The model to chat with cannot be had; the message says how to make it."""


def load_checkpoint_model(path: Path, fallback: GPTConfig, device, make: str) -> GPT:
    """A GPT from a scratchgpt checkpoint file, shaped by the configuration saved in it (else `fallback`)."""
    try:
        _, meta = read_checkpoint(path)
        config = GPTConfig(**json.loads(meta["config"])) if "config" in meta else fallback
        model = GPT(config.with_(dropout=0.0))
        load_checkpoint(path, model)
    except (CheckpointError, TypeError, ValueError) as err:
        if not path.exists():
            raise ModelError(f"no model file {path}; to make it: {make}") from None
        raise ModelError(f"{path} cannot be loaded: {err}; to make it again: {make}") from None
    return model.to(device).eval()


def load_model(args) -> tuple[GPT, str]:
    """The model the command line names, and a one-line description of it."""
    p = profile(args.profile, check_device=False)
    device = args.device or p.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.checkpoint:
        path = Path(args.checkpoint)
        make = (f"python -m scratchgpt.pretrain --profile {p.name} (then --checkpoint "
                f"runs/pretrain-{p.name}/checkpoint.safetensors)")
        return load_checkpoint_model(path, p.model, device, make), f"checkpoint {path}"
    if args.model == "pretrained" and p.weights:
        try:
            return gpt2_model(p.weights, path=p.weights_file).to(device).eval(), f"GPT-2 {p.weights}"
        except DataError as err:
            raise ModelError(str(err)) from None
    maker = "instruction_tuned" if args.model == "instruct" else "pretrained"
    path = instruct_cache_path(p) if args.model == "instruct" else cache_path(p)
    what = "instruction fine-tuning notebook" if args.model == "instruct" else "pretraining notebook"
    description = f"{p.name} profile, {args.model} model"
    if not path.exists() and not p.weights and p.device == "cpu":
        # a fresh clone: a CPU profile's model takes minutes to make, so make it as the notebooks do
        from ..course import models

        print(f"no cached {args.model} model for the {p.name} profile yet: making it as the {what} does "
              "(a few minutes; it is cached for next time)", file=sys.stderr)
        return getattr(models, maker)(p).to(device).eval(), description
    make = (f"run the {what} under this profile, or python -c \"import scratchgpt.course as c; "
            f"c.{maker}(c.profile('{p.name}'))\"")
    return load_checkpoint_model(path, p.model, device, make), description


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scratchgpt.chat", description=__doc__.splitlines()[0])
    g = p.add_argument_group("the model (default: the profile's instruction-tuned model)")
    g.add_argument("--profile", default=None, choices=sorted(PROFILES),
                   help="the course profile (default: SCRATCHGPT_PROFILE, else tiny)")
    g.add_argument("--model", choices=["instruct", "pretrained"], default="instruct",
                   help="which of the profile's models")
    g.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="a scratchgpt checkpoint instead (python -m scratchgpt.pretrain makes one)")
    g.add_argument("--device", type=device_name, default=None, help="cpu, cuda, ... (default: the profile's)")
    g = p.add_argument_group("sampling (the /temp, /topk, /topp, /max and /seed commands change them)")
    g.add_argument("--temperature", type=nonneg_float, default=0.7, help="0: always the most likely token")
    g.add_argument("--top-k", type=positive_int, default=50, help="sample among the k most likely tokens")
    g.add_argument("--top-p", type=top_p_float, default=None, help="... among the smallest set reaching p")
    g.add_argument("--max-new-tokens", type=positive_int, default=None,
                   help="length limit of an answer (default: half the context, at most 256)")
    g.add_argument("--seed", type=int, default=None, help="fixes the answers (default: random)")
    g = p.add_argument_group("the web page")
    g.add_argument("--web", action="store_true", help="serve the chat as a web page instead")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    g.add_argument("--port", type=_number(int, 0, True, "a port number, 0 or more"), default=8000,
                   help="port (0: any free one)")
    return p.parse_args(argv)


HELP = """commands:
  /clear        forget the conversation
  /temp 0.7     temperature (0: always the most likely token)
  /topk 50      sample among the 50 most likely tokens (/topk off: no limit)
  /topp 0.9     sample among the fewest tokens that reach 90% probability (/topp off)
  /max 100      length limit of an answer, in tokens
  /seed 1       restart the random numbers (same seed, same answers)
  /settings     show the settings
  /help         this list
  /quit         leave (or Ctrl-D); Ctrl-C stops an answer"""

SETTINGS = {"/temp": ("temperature", float), "/topk": ("top_k", int), "/topp": ("top_p", float),
            "/max": ("max_new_tokens", int)}


def settings_line(chat: ChatSession) -> str:
    return (f"temperature {chat.temperature}, top-k {chat.top_k or 'off'}, top-p {chat.top_p or 'off'}, "
            f"answers up to {chat.max_new_tokens} tokens")


def command(chat: ChatSession, line: str, say) -> bool:
    """Carry out a /command; False for /quit."""
    name, _, value = line.partition(" ")
    value = value.strip()
    if name in ("/quit", "/exit"):
        return False
    if name == "/help":
        say(HELP)
    elif name == "/clear":
        chat.clear()
        say("(the conversation is cleared)")
    elif name == "/settings":
        say(settings_line(chat))
    elif name == "/seed":
        try:
            chat.reseed(int(value))
            say(f"(seed {int(value)})")
        except ValueError:
            say(f"/seed needs a whole number, got {value!r}")
    elif name in SETTINGS:
        attr, kind = SETTINGS[name]
        try:
            new = None if value == "off" and attr in ("top_k", "top_p") else kind(value)
        except ValueError:
            say(f"{name} needs a {'whole ' if kind is int else ''}number, got {value!r}")
            return True
        settings = {a: getattr(chat, a) for a in ("temperature", "top_k", "top_p", "max_new_tokens")}
        try:
            check_settings(**settings | {attr: new})
        except ValueError as err:
            say(f"{name}: {err}")
            return True
        setattr(chat, attr, new)
        say(settings_line(chat))
    else:
        say(f"unknown command {name}; /help lists them")
    return True


def chat_loop(chat: ChatSession, read=input, write=None) -> None:
    """The terminal chat: read a line, answer it (streamed), until /quit or the end of input."""
    write = write or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    say = lambda text: write(text + "\n")   # noqa: E731
    say("type a message, /help for the commands, Ctrl-D to leave")
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            write("\n")
            return
        except KeyboardInterrupt:                 # at the prompt: a fresh line, as in a shell
            say("\n(Ctrl-D or /quit to leave)")
            continue
        if not line:
            continue
        if line.startswith("/"):
            if not command(chat, line, say):
                return
            continue
        try:
            reply = chat.ask(line)
        except ValueError as err:
            say(f"({err})")
            continue
        if reply.notice:
            say(f"({reply.notice})")
        write("gpt> ")
        try:
            for piece in reply:
                write(piece)
            say("" if reply.reason == "end" else " [length limit]")
        except KeyboardInterrupt:                 # stop this answer, keep the chat
            reply.close()
            say(" [stopped]")
        except ValueError as err:                 # e.g. a model whose logits are not finite
            say(f"\n(error: {err})")


def main(argv=None) -> None:
    """The command line: a clear `error: ...` line, not a traceback, for a model that cannot be loaded."""
    args = parse_args(argv)
    try:
        model, description = load_model(args)
        chat = ChatSession(model, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                           max_new_tokens=args.max_new_tokens, seed=args.seed)
        check_settings(chat.temperature, chat.top_k, chat.top_p, chat.max_new_tokens)
    except (ModelError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    if args.web:
        try:
            from .chat_web import serve
        except ImportError as err:   # a bare `pip install scratchgpt` has no web framework
            raise SystemExit(f"error: the web chat needs starlette and uvicorn ({err}): "
                             "pip install -r requirements.txt, or pip install -e .[web]") from None
        serve(chat, description, args.host, args.port)
        return
    print(f"chatting with the {description} ({settings_line(chat)})")
    chat_loop(chat)
