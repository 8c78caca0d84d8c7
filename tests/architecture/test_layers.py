"""The import graph of cvbench points one way, along the flow of a run.

Every `import` of a cvbench module, at module level or inside a function, must go to the same
layer or to a lower one; no set of modules may import each other in a cycle. Both tests read
module-level and function-level imports alike, and a function-level import of a cvbench module is
allowed only in the command line (start-up time). Optional heavy dependencies (torch, vllm, ray)
are imported inside functions; they are not cvbench modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cvbench

PACKAGE = Path(cvbench.__file__).resolve().parent

# Lowest first. A module may import modules of its own layer and of the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("imaging",),
    ("tasks",),
    ("prompting",),
    ("model_adapters",),
    ("rundir",),
    ("scoring",),
    ("runner",),
    ("analysis",),
    ("sweep",),
    ("reports",),
    ("leaderboard", "integrations"),
    ("viewer",),
    ("devtools",),
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The cvbench modules `path` imports anywhere in its body (resolved to modules, not names)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in known:
                found.add(target)
    found.discard(name)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # `cvbench` itself is the public facade


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, known) for p in paths}


def test_every_module_belongs_to_a_layer() -> None:
    unknown = sorted({layer for m in import_graph() if (layer := layer_of(m)) and layer not in RANK})
    assert not unknown, f"packages with no place in LAYERS: {unknown}"


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, targets in import_graph().items():
        source = layer_of(module)
        for target in sorted(targets):
            goal = layer_of(target)
            if source is None or goal is None:
                # The facade `cvbench` may import core values; nothing imports the facade.
                if goal is None:
                    upward.append(f"{module} -> {target} (import the defining module, not the facade)")
                elif RANK[goal] > RANK["core"]:
                    upward.append(f"{module} -> {target}")
                continue
            if RANK[goal] > RANK[source]:
                upward.append(f"{module} ({source}) -> {target} ({goal})")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# Where a function-level import of a cvbench module is right: the command line imports lazily so
# `cvbench --help` stays fast; the facade `cvbench/__init__.py` resolves its names on first use.
LAZY_IMPORTERS = ("cvbench.cli", "cvbench.sweep.cli")
# The one other place, with its reason: the loaders generate the synthetic sets on first use, but
# the generator is data (covered by the dataset fingerprint), not prompt code, and must stay out of
# the modules whose source the prompt cache hashes (tests/runner/test_prompt_cache.py).
LAZY_IMPORTS = {
    ("cvbench/tasks/loading.py", "cvbench.tasks", ("synthetic",)),
    (
        "cvbench/tasks/loading.py",
        "cvbench.tasks.synthetic.manifest",
        ("ManifestMismatch", "builtin_generators", "stale_builtin_version", "verify_synthetic"),
    ),
}


def is_lazy_importer(module: str) -> bool:
    return module == "cvbench" or any(module == m or module.startswith(m + ".") for m in LAZY_IMPORTERS)


def function_level_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if is_lazy_importer(module_name(path)):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("cvbench"):
                        where = str(path.relative_to(PACKAGE.parent))
                        if (where, inner.module, tuple(a.name for a in inner.names)) in LAZY_IMPORTS:
                            continue
                        found.append(f"{path.relative_to(PACKAGE.parent)}:{inner.lineno} {node.name}: {inner.module}")
    return found


def test_cvbench_modules_are_imported_at_the_top_outside_the_command_line() -> None:
    found = function_level_imports()
    assert not found, "function-level imports of cvbench modules (move them to the top):\n" + "\n".join(found)
