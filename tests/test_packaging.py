"""The distribution (pyproject.toml) and the import rules: the console script exists, no module edits the
import path, tests and benchmarks do not import each other, and the name `llm` is this project's."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import re
import sys
import types
from fnmatch import fnmatch
from pathlib import Path

import pytest

from errors import ModelError
from tests.helpers import ROOT

# sys.path changed in place (insert, append, extend, item or slice assignment) or rebound.
PATH_EDIT = re.compile(r"\bsys\.path\s*(\.\s*(insert|append|extend)\b|\[|\+=|=(?!=))")
SKIP_DIRS = {"__pycache__", "build", "tiny", "out"}


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _python_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")]
        yield from (Path(folder) / f for f in files if f.endswith(".py"))


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_console_script_points_at_a_callable():
    scripts = _project()["project"]["scripts"]
    assert "storyteller" in scripts
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr, None)), f"{name} = {target!r}: no such callable"


def test_distribution_lists_every_top_level_module_and_package():
    setup = _project()["tool"]["setuptools"]
    modules = {p.stem for p in ROOT.glob("*.py")}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "harness"}  # run from the checkout
    assert set(setup["py-modules"]) == modules, f"py-modules should be {sorted(modules)}"
    assert set(setup["packages"]) == packages
    data = [p.relative_to(ROOT) for name in packages for p in (ROOT / name).rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts]
    for rel in data:
        globs = setup["package-data"].get(rel.parts[0], [])
        assert any(fnmatch("/".join(rel.parts[1:]), g) for g in globs), f"{rel} is not in package-data"


def test_no_module_edits_the_import_path():
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in _python_files()
                 for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if PATH_EDIT.search(line)]
    assert not offenders, "install the project (pip install -e .) and run scripts as modules instead: " + ", ".join(offenders)


# The examples name sys.path in two parts, or this file would fail its own check.
@pytest.mark.parametrize("edit", [".insert(0, ROOT)", "[:] = paths", ".append(x)", " += [x]", " = [x]", " . insert(0, x)"])
def test_the_import_path_check_sees_every_kind_of_edit(edit):
    assert PATH_EDIT.search("sys" + ".path" + edit)
    assert not PATH_EDIT.search("print(sys.path)") and not PATH_EDIT.search("if sys.path == old:")


def test_tests_and_benchmarks_do_not_import_each_other():
    for folder, other in (("tests", "bench"), ("bench", "tests")):
        for path in (ROOT / folder).glob("*.py"):
            assert other not in _imported_roots(path), f"{path.relative_to(ROOT)} imports {other}: use harness/"


def test_llm_is_this_projects_package():
    from main import check_llm_package

    check_llm_package()  # the project's llm/ is what `import llm` reaches here


def test_another_llm_package_stops_the_app(monkeypatch, tmp_path):
    from main import check_llm_package

    other = types.ModuleType("llm")
    other.__spec__ = importlib.machinery.ModuleSpec("llm", None, origin=str(tmp_path / "llm" / "__init__.py"))
    monkeypatch.setitem(sys.modules, "llm", other)  # what simonw's llm, installed, would be
    with pytest.raises(ModelError, match="another package named llm"):
        check_llm_package()
