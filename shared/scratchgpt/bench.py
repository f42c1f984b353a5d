"""`python -m scratchgpt.bench`: the benchmark (`tools/bench.py`)."""

from .tools.bench import main

if __name__ == "__main__":
    main()
