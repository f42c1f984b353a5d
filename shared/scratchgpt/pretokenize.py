"""`python -m scratchgpt.pretokenize`: the pretokenizer: text files into token shards
(`tools/pretokenize.py`)."""

from .tools.pretokenize import main

if __name__ == "__main__":
    main()
