"""Talk to a model the curriculum made: the chat engine (`session.py`) that the terminal chat, the web
page (`python -m scratchgpt.chat [--web]`, in `tools/chat.py` and `tools/chat_web.py`) and a notebook's
chat box all stream their answers from.

    from scratchgpt.chat import ChatSession
    chat = ChatSession(model, temperature=0.7, top_k=50)
    for piece in chat.stream("Name a color."):
        print(piece, end="", flush=True)
"""

from .session import ChatSession, Reply, Utf8Text, check_settings, stream_tokens

__all__ = ["ChatSession", "Reply", "Utf8Text", "check_settings", "stream_tokens"]
