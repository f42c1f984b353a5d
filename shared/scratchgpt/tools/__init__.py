"""The command-line tools: `python -m scratchgpt.pretrain` (the trainer), `python -m scratchgpt.pretokenize`
(text into token shards) and `python -m scratchgpt.bench` (the benchmark). Each `main` is run through a
thin module of the same name one level up."""
