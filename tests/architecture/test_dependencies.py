"""Every third-party package a cvbench module imports when it is loaded is a core dependency.

`pip install cvbench` installs only `[project].dependencies`; the test environments install the
extras and the dev tools as well, and those pull in more (typing_extensions came in through them
while `pip install -e .` on a fresh machine did not have it, so `cvbench run` failed there). This
test reads the module-level imports of every cvbench module (not those inside functions, which
is how the extras are imported, nor those under `if TYPE_CHECKING:`) and requires each third-party
one to come from a distribution listed in the core dependencies.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

import cvbench

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PACKAGE = Path(cvbench.__file__).resolve().parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def core_distributions() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    return {normalised(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]) for req in project["dependencies"]}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def guarded_by_import_error(node: ast.Try) -> bool:
    names = []
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names += [k.id for k in kinds if isinstance(k, ast.Name)]
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


def load_time_imports(body: list[ast.stmt]) -> list[tuple[int, str]]:
    """(line, top-level package) of the imports that run when the module is loaded."""
    found: list[tuple[int, str]] = []
    for node in body:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.If) and not is_type_checking(node):
            found += load_time_imports(node.body) + load_time_imports(node.orelse)
        elif isinstance(node, ast.Try) and not guarded_by_import_error(node):
            found += load_time_imports(node.body)
    return found


def test_load_time_imports_are_core_dependencies() -> None:
    core = core_distributions()
    providers = importlib.metadata.packages_distributions()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, top in load_time_imports(tree.body):
            if top in sys.stdlib_module_names or top == "cvbench" or top == "__future__":
                continue
            # a package not installed here (tomli on Python >= 3.11) is named by its import name
            dists = {normalised(d) for d in providers.get(top, [top])}
            if not dists & core:
                where = path.relative_to(PACKAGE.parent)
                missing.append(f"{where}:{line}: {top} (from {sorted(dists)})")
    assert not missing, "imported at load time but not a core dependency:\n" + "\n".join(missing)


@pytest.mark.parametrize("source", ["import typing_extensions\n", "from numpy import ndarray\n"])
def test_the_reader_sees_module_level_imports(source: str) -> None:
    assert [top for _, top in load_time_imports(ast.parse(source).body)] == [source.split()[1].split(".")[0]]


def test_the_reader_skips_lazy_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import torch\n"
        "try:\n    import ray\nexcept ImportError:\n    ray = None\n"
        "def f():\n    import vllm\n"
    )
    assert [top for _, top in load_time_imports(ast.parse(source).body)] == ["typing"]
