"""A chat box for a notebook (ipywidgets): type an instruction, press Send, and watch each model's answer
stream into its own column. Several models side by side answer the same messages, each in its own
conversation (notebook 12 puts the reference model beside the DPO-tuned one).

    from scratchgpt.chat.widget import chat_box, transcript
    chat_box({"instruction-tuned": model}, temperature=0.0)       # the live box, in JupyterLab
    print(transcript({"instruction-tuned": model}, ["Name a color."], temperature=0.0))

A widget is live only in a running notebook; `transcript` writes the same conversation as text, for
the notebook's stored output and for readers of the notebook on the web.
"""

from __future__ import annotations

import html

from .session import ChatSession


def _sessions(models, tokenizer, settings) -> dict[str, ChatSession]:
    if not isinstance(models, dict):
        models = {"model": models}
    if not models:
        raise ValueError("chat_box needs at least one model")
    return {name: ChatSession(model, tokenizer, **settings) for name, model in models.items()}


def _answer(session: ChatSession, message: str, show) -> str:
    """Stream `session`'s answer to `message` through `show(text so far)`; the whole answer."""
    try:
        reply = session.ask(message)
    except ValueError as err:                       # a message too long, a bad setting: said, not raised
        return f"(not sent: {err})"
    text = f"({reply.notice})\n" if reply.notice else ""
    for piece in reply:
        text += piece
        show(text)
    return text


def transcript(models, messages: list[str], tokenizer=None, **settings) -> str:
    """The conversation of `messages` with each model, as text: what the chat box would show."""
    sessions = _sessions(models, tokenizer, settings)
    lines = []
    for message in messages:
        lines.append(f"You: {message}")
        for name, session in sessions.items():
            lines.append(f"{name}: {_answer(session, message, lambda _: None).strip()}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def chat_box(models, tokenizer=None, **settings):
    """The live chat box: a text field, Send and Clear, and one column per model (a dict name -> model,
    or one model). `settings` are `ChatSession`'s (temperature, top_k, top_p, max_new_tokens, seed)."""
    import ipywidgets as w

    sessions = _sessions(models, tokenizer, settings)
    message = w.Text(placeholder="Type an instruction, then press Send", layout=w.Layout(width="60%"))
    send, clear = w.Button(description="Send", button_style="primary"), w.Button(description="Clear")
    width = f"{100 // len(sessions) - 1}%"
    columns = {name: w.HTML(layout=w.Layout(width=width, border="1px solid #ccc", padding="4px"))
               for name in sessions}
    history = {name: "" for name in sessions}

    def render(name: str, answer: str = "") -> None:
        body = html.escape(history[name] + answer)
        columns[name].value = f"<b>{html.escape(name)}</b><pre style='white-space: pre-wrap'>{body}</pre>"

    def on_send(_=None) -> None:
        text = message.value.strip()
        if not text:
            return
        message.value = ""
        for name, session in sessions.items():
            history[name] += f"You: {text}\n{name}: "
            answer = _answer(session, text, lambda so_far, name=name: render(name, so_far))
            history[name] += answer.strip() + "\n\n"
            render(name)

    def on_clear(_=None) -> None:
        for name, session in sessions.items():
            session.clear()
            history[name] = ""
            render(name)

    send.on_click(on_send)
    clear.on_click(on_clear)
    for name in sessions:
        render(name)
    box = w.VBox([w.HBox([message, send, clear]), w.HBox(list(columns.values()))])
    box.send, box.clear = on_send, on_clear        # for a test, or a cell that types for the learner
    box.message, box.columns = message, columns
    return box
