"""`python -m scratchgpt.chat`: the terminal chat, or with `--web` the chat page (`tools/chat.py`)."""

from ..tools.chat import main

if __name__ == "__main__":
    main()
