"""Try every answer to a notebook's exercises in one kernel: the solution, the student edition's stub,
and the plausible wrong answers listed in `tests/wrong_answers/<notebook>.py`.

Each exercise is a solution cell (nbgrader `solution`: setup lines, then the answer between
`### BEGIN SOLUTION` and `### END SOLUTION`) followed by its graded check cell. For each answer the
kernel's namespace is cleared (`%reset -f`), the solution cell runs with the answer in place of the
solution, then the check cell runs. So each exercise must be self-contained: its cell sets up what it
needs (imports, data, cached models) above `### BEGIN SOLUTION`, and its check uses only the names the
exercise asks for.

    python tests/exercise_harness.py notebooks/stage1_data_and_attention/01_text_data.ipynb

prints one line per answer: whether the answer cell ran, whether the check passed, the check's error,
and the seconds taken; then a PROBLEM line for each thing that breaks the convention (`problems`): a
solution that fails, a stub or wrong answer that passes, a wrong answer that fails in its own cell, a check
that fails without an AssertionError with a message, an exercise with fewer than two wrong answers.
tests/test_exercises.py runs the wrong answers of every notebook the same way, in one kernel.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRONG_ANSWERS = REPO / "tests" / "wrong_answers"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


@dataclass
class Outcome:
    grade_id: str            # the check cell's nbgrader id
    answer: str              # "solution", "stub" or "wrong 1", "wrong 2", ...
    answer_error: tuple | None
    check_error: tuple | None
    seconds: float

    @property
    def passed(self) -> bool:
        return self.answer_error is None and self.check_error is None


def exercises(path: Path) -> list[tuple[dict, dict]]:
    """(solution cell, check cell) pairs of the notebook, in order."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    pairs = []
    for cell, nxt in zip(cells, cells[1:]):
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            assert nxt["metadata"].get("nbgrader", {}).get("grade"), f"no check after {cell['metadata']}"
            pairs.append((cell, nxt))
    return pairs


def with_answer(solution_source: str, answer: str) -> str:
    """The solution cell with `answer` in place of the code between the solution markers."""
    head, rest = solution_source.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + answer.strip("\n") + "\n" + tail.lstrip("\n")


def solution_of(solution_source: str) -> str:
    return solution_source.split(BEGIN, 1)[1].split(END, 1)[0]


def wrong_answers(path: Path) -> dict[str, list[str]]:
    """`WRONG` of tests/wrong_answers/<notebook stem>.py: the solution cell's grade id -> answers."""
    module_path = WRONG_ANSWERS / f"{Path(path).stem}.py"
    if not module_path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"wrong_{Path(path).stem}", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG


class Kernel:
    """One IPython kernel in the notebook's folder (as nbval and JupyterLab run it)."""

    def __init__(self, cwd: Path):
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(cwd))

    def run(self, code: str, timeout: float = 600) -> tuple[tuple | None, str]:
        """Run `code`; return (error as (name, message) or None, printed text)."""
        msg_id = self.client.execute(code)
        error, printed = None, []
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                error = (content["ename"], content["evalue"])
            elif kind == "stream":
                printed.append(content["text"])
            elif kind == "status" and content["execution_state"] == "idle":
                return error, "".join(printed)

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


ANSWERS = ("wrong", "stub", "solution")


def try_answers(path: Path, only: set[str] | None = None, answers: tuple[str, ...] = ANSWERS,
                kernel: Kernel | None = None) -> list[Outcome]:
    """Every answer to every exercise of the notebook at `path`: the wrong ones, the stub, the solution
    (`answers` names which of the three kinds to try; `only`, which exercises by their solution's grade id).
    A `kernel` given is used and left running (in the notebook's folder), so that one kernel can serve
    several notebooks; otherwise one is started and closed."""
    path = Path(path)
    wrong = wrong_answers(path)
    own = kernel is None
    kernel = Kernel(path.parent) if own else kernel
    outcomes = []
    try:
        kernel.run("import matplotlib\nmatplotlib.use('Agg')")      # no figure windows from a kernel
        if not own:
            kernel.run(f"import os as _os\n_os.chdir({str(path.parent)!r})\ndel _os")
        for solution, check in exercises(path):
            grade_id = solution["metadata"]["nbgrader"]["grade_id"]
            if only and grade_id not in only:
                continue
            source, check_source = "".join(solution["source"]), "".join(check["source"])
            tries = [(f"wrong {i}", a) for i, a in enumerate(wrong.get(grade_id, []), 1)] \
                if "wrong" in answers else []
            tries += [("stub", STUB)] if "stub" in answers else []
            tries += [("solution", solution_of(source))] if "solution" in answers else []
            for name, answer in tries:
                start = time.perf_counter()
                kernel.run("%reset -f")
                answer_error, _ = kernel.run(with_answer(source, answer))
                check_error, _ = kernel.run(check_source)
                seconds = time.perf_counter() - start
                outcomes.append(Outcome(grade_id, name, answer_error, check_error, seconds))
    finally:
        if own:
            kernel.close()
    return outcomes


def problems(outcomes: list[Outcome], path: Path | None = None) -> list[str]:
    """What breaks the convention in `outcomes`: a solution that fails, a stub or wrong answer that passes,
    a wrong answer that fails in its own cell rather than in the check, a check that fails without an
    AssertionError that says what is wrong; and, given the notebook's `path`, an exercise of it with fewer
    than two different wrong answers listed."""
    found = []
    for o in outcomes:
        where = f"{o.grade_id}, {o.answer}"
        if o.answer == "solution":
            if not o.passed:
                found.append(f"{where}: fails: {(o.answer_error or o.check_error)}")
        elif o.passed:
            found.append(f"{where}: passes its check")
        elif o.answer == "stub":
            continue
        elif o.answer_error:
            found.append(f"{where}: the answer cell fails ({o.answer_error[0]}: {o.answer_error[1][:100]}); "
                         "a wrong answer must run, and its check must catch it")
        elif o.check_error[0] != "AssertionError" or not o.check_error[1].strip():
            found.append(f"{where}: the check fails with {o.check_error[0]}: {o.check_error[1][:100]!r}, "
                         "not an AssertionError with a message")
    if path is not None:
        wrong = wrong_answers(path)
        ids = [solution["metadata"]["nbgrader"]["grade_id"] for solution, _ in exercises(path)]
        found += [f"{grade_id}: {len(set(wrong.get(grade_id, [])))} wrong answers listed (at least 2 needed)"
                  for grade_id in ids if len(set(wrong.get(grade_id, []))) < 2]
    return found


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        print(notebook)
        outcomes = try_answers(Path(notebook))
        for o in outcomes:
            verdict = "PASSES" if o.passed else "fails"
            why = o.answer_error and f"answer cell: {o.answer_error[0]}: {o.answer_error[1][:100]}" \
                or o.check_error and f"check: {o.check_error[0]}: {o.check_error[1][:100]}" or ""
            print(f"  {o.grade_id:<22} {o.answer:<9} {verdict:<7} {o.seconds:5.1f} s  {why}")
        for problem in problems(outcomes, Path(notebook)):
            print(f"  PROBLEM {problem}")
