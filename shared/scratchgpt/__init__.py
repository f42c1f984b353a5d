"""scratchgpt: the helper package of the scratchgpt curriculum.

Each module holds one concept that a notebook builds first in plain cells; later notebooks import it
from here instead of defining it again.
"""

from .config import GPT2_SIZES, GPT3_175B, GPTConfig, count_parameters, training_flops
from .data import DataError, fetch, read_text
from .paths import DATA_DIR, REPO_ROOT
from .profiles import PROFILES, Profile, profile
from .seeding import seed_everything
from .tokenizer import EOT, EOT_ID, gpt2_tokenizer, ids_to_text, text_to_ids

__all__ = [
    "DATA_DIR", "EOT", "EOT_ID", "GPT2_SIZES", "GPT3_175B", "PROFILES", "REPO_ROOT",
    "DataError", "GPTConfig", "Profile",
    "count_parameters", "fetch", "gpt2_tokenizer", "ids_to_text", "profile", "read_text",
    "seed_everything", "text_to_ids", "training_flops",
]
