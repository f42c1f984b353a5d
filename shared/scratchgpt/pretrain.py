"""`python -m scratchgpt.pretrain`: the command-line trainer (`tools/pretrain.py`)."""

from .tools.pretrain import main

if __name__ == "__main__":
    main()
