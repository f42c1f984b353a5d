"""The package's layout, read from its imports: the core (what the notebooks build) imports nothing of
the engine, the tools, the chat or the course machinery; the engine and the course machinery import
neither the tools nor each other; the chat engine builds on the core alone (the tools load its models);
the teaching model stays plain; and no import cycle exists anywhere."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "shared" / "scratchgpt"
# `python -m` shims
ENTRY_POINTS = {"scratchgpt.pretrain", "scratchgpt.pretokenize", "scratchgpt.bench",
                "scratchgpt.chat.__main__"}
SUBPACKAGES = ("engine", "course", "tools", "chat")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module of the package that `path` imports, at module level or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("scratchgpt")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("scratchgpt"):
                target = node.module
            else:
                continue
            for alias in node.names:      # `from . import x` may name a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def kind(name: str) -> str:
    if name in ENTRY_POINTS:
        return "entry"
    parts = name.split(".")
    if len(parts) >= 2 and parts[1] in SUBPACKAGES:
        return parts[1]
    return "top" if name == "scratchgpt" else "core"


def test_the_graph_was_read():
    assert {"scratchgpt.model", "scratchgpt.engine.loss", "scratchgpt.course.profiles",
            "scratchgpt.tools.pretrain", "scratchgpt.chat.session", "scratchgpt.tools.chat"} <= set(GRAPH)
    assert "scratchgpt.attention" in GRAPH["scratchgpt.model"]
    assert "scratchgpt.engine" in GRAPH["scratchgpt.tools.pretrain"]
    assert "scratchgpt.generation" in GRAPH["scratchgpt.chat.session"]
    assert kind("scratchgpt.chat") == kind("scratchgpt.chat.session") == "chat"


def test_imports_run_one_way():
    allowed = {"core": {"core"}, "engine": {"core", "engine"}, "course": {"core", "course"},
               "chat": {"core", "chat"}, "tools": {"core", "engine", "course", "chat", "tools"},
               "entry": {"tools"}, "top": {"core", "course"}}
    wrong = [f"{a} ({kind(a)}) imports {b} ({kind(b)})" for a, targets in GRAPH.items() for b in targets
             if kind(b) not in allowed[kind(a)]]
    assert not wrong, "\n".join(wrong)


def test_the_teaching_model_imports_only_its_configuration_and_attention_and_stays_short():
    assert GRAPH["scratchgpt.model"] == {"scratchgpt.config", "scratchgpt.attention"}
    lines = MODULES["scratchgpt.model"].read_text().splitlines()
    assert len(lines) <= 120, len(lines)


def test_there_is_no_import_cycle():
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for nxt in sorted(GRAPH.get(name, ())):
            if nxt not in GRAPH:
                continue
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [name, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
