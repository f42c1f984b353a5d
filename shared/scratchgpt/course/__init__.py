"""The course machinery around the notebooks: what the lessons use but do not teach.

- `profiles.py`: the named sizes (`profile()`, chosen by `SCRATCHGPT_PROFILE`);
- `models.py`: the models the notebooks start from (`pretrained`, `instruction_tuned`), cached;
- `checks.py`: figures checked against a stated range (`check`, beside `approx`);
- `exercises.py`: the question bank (`quiz`) and the student edition with nbgrader
  (`python -m scratchgpt.course student-edition OUT`, in `__main__.py`);
- `glossary.py`: the terms in English and Korean (`glossary`), and `translation.py`: the Korean edition
  kept equal to the English one (`python -m scratchgpt.course sync-korean`).
"""

from .checks import approx, check
from .exercises import quiz
from .glossary import glossary
from .models import (
    cache_instruction_tuned,
    cache_pretrained,
    instruction_tuned,
    pretrain,
    pretrained,
    pretraining_loaders,
)
from .profiles import PROFILES, Profile, ProfileError, profile

__all__ = ["PROFILES", "Profile", "ProfileError", "approx", "cache_instruction_tuned", "cache_pretrained",
           "check", "glossary", "instruction_tuned", "pretrain", "pretrained", "pretraining_loaders",
           "profile", "quiz"]
