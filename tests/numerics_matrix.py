"""Run the notebooks under several floating-point paths: the proof that their outputs hold on any CPU.

    python tests/numerics_matrix.py                      # all paths below, 10 to 17 minutes each on 2 cores
    python tests/numerics_matrix.py avx2 serial          # some of them
    python tests/numerics_matrix.py default -- -x        # pytest options after --
    # some notebooks:
    python tests/numerics_matrix.py -- notebooks/stage3_finetuning/07_classification_finetuning.ipynb

Another CPU runs other matrix-multiply kernels and rounds differently in the last bits. These
environment variables change the arithmetic the same way on this machine, without another CPU
(each changes the weights after a few training steps): the stored outputs must pass under all of them.
Run it before committing a change to a notebook or to training code.

CI runs the default path: two pytest-xdist workers of one thread each (conftest.py), the arithmetic
the notebooks are recorded with (CONTRIBUTING.md). `serial` is what a learner's JupyterLab does: one
process with the machine's default threads (2 here), so other reduction orders.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (environment, pytest options)
PATHS = {
    "default": ({}, []),                                             # as CI: 2 workers, one thread each
    "serial": ({}, ["-n", "0"]),                                     # one process, the default threads
    "avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, []),      # PyTorch's own kernels: AVX2 instead of AVX-512
    "mkl-compatible": ({"MKL_CBWR": "COMPATIBLE"}, []),  # MKL's matrix products: the most portable path
}


def run(name: str, pytest_args: list[str]) -> tuple[str, float]:
    extra_env, options = PATHS[name]
    env = os.environ | extra_env | {"PYTHONHASHSEED": "0"}
    env.pop("MPLBACKEND", None)
    start = time.time()
    targets = [] if any(a.startswith("notebooks") for a in pytest_args) else ["notebooks"]
    proc = subprocess.run([sys.executable, "-m", "pytest", *targets, "-q", "--no-header", "-p", "no:randomly",
                           *options, *pytest_args], cwd=ROOT, env=env, capture_output=True, text=True)
    log = ROOT / "runs" / f"numerics-{name}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    return (("\n".join([summary, *failed]), time.time() - start) if proc.returncode
            else (summary, time.time() - start))


def main(argv: list[str]) -> int:
    pytest_args = argv[argv.index("--") + 1:] if "--" in argv else []
    names = [a for a in (argv[: argv.index("--")] if "--" in argv else argv)] or list(PATHS)
    unknown = [n for n in names if n not in PATHS]
    if unknown:
        print(f"unknown path(s) {', '.join(unknown)}; choose from {', '.join(PATHS)}")
        return 2
    results = {}
    for name in names:
        print(f"--- {name}: {' '.join([*map('='.join, PATHS[name][0].items()), *PATHS[name][1]]) or 'as CI'}",
              flush=True)
        results[name] = run(name, pytest_args)
        print(f"    {results[name][0]} ({results[name][1] / 60:.1f} min; "
              f"log: runs/numerics-{name}.log)", flush=True)
    print("\n| path | environment | notebooks |\n|---|---|---|")
    for name, (summary, _) in results.items():
        env = " ".join([*map("=".join, PATHS[name][0].items()), *PATHS[name][1]]) or "(as CI)"
        print(f"| {name} | {env} | {summary.splitlines()[0]} |")
    return 0 if all(" failed" not in s and "error" not in s for s, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
