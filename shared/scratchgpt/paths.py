"""Where the repository's folders are, found from this package's own location.

Notebooks run with their own folder as the working directory (under nbval, nbconvert and
JupyterLab alike), so nothing here depends on the working directory.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # shared/scratchgpt/paths.py -> repo root
DATA_DIR = REPO_ROOT / "data"
