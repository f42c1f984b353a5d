"""scratchgpt: the package of the scratchgpt curriculum.

Each module at this level (the core) holds one concept that a notebook builds first in plain cells;
later notebooks import it from here instead of defining it again. The core imports nothing else of
the package. Beside it, each in its own folder:

- `course/`: the machinery of the lessons (profiles, cached models, range checks, questions, the
  student edition);
- `engine/`: the speed engine the command-line tools add from outside (fused loss, allocator,
  precision choice, fast decoder);
- `tools/`: the command-line tools, run as `python -m scratchgpt.pretrain`, `.pretokenize`, `.bench`.
"""

from .config import GPT2_SIZES, GPT3_175B, GPTConfig, count_parameters, training_flops
from .course.profiles import PROFILES, Profile, profile
from .data import DataError, fetch, read_text
from .paths import DATA_DIR, REPO_ROOT
from .seeding import seed_everything
from .tokenizer import EOT, EOT_ID, gpt2_tokenizer, ids_to_text, text_to_ids

__all__ = [
    "DATA_DIR", "EOT", "EOT_ID", "GPT2_SIZES", "GPT3_175B", "PROFILES", "REPO_ROOT",
    "DataError", "GPTConfig", "Profile",
    "count_parameters", "fetch", "gpt2_tokenizer", "ids_to_text", "profile", "read_text",
    "seed_everything", "text_to_ids", "training_flops",
]
