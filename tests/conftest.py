"""Shared fixtures. Servers the tests need are started here or by their own fixture modules, on 127.0.0.1 only."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# Server fixtures live in their own modules (tests/fixtures_*.py) so every test module shares one instance.
pytest_plugins = [
    name
    for name in ("tests.fixtures_pds", "tests.fixtures_mastodon", "tests.fixtures_xfake")
    if importlib.util.find_spec(name) is not None
]

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# Subprocesses (`python -m crossposter …`) must run this checkout, whatever `pip install -e` points at.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the checkout: present in CI and for developers, never needed at run time."""
    if not SHARED.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED} is missing under CI")
        pytest.skip("../shared is not beside this checkout")
    return SHARED


# ----------------------------------------------------------------------------- kinds of tests
# Every test gets one or more kind markers from what it uses, so the fast unit tests run apart from the
# ones that start servers, browsers, containers or subprocesses (`pytest -m unit`, `pytest -m "not peer"`).
# Derived, not hand-written: a new test is classified by the same rule the day it is added.

_PEER_FIXTURES = {"pds", "mastodon_server", "x_server", "_x_server_session"}
_BROWSER_FIXTURES = {"chromium", "dom"}
_PROCESS_WORDS = ("subprocess", "sys.executable", "Popen", "os.fork", "multiprocessing", "os.kill")


class _ModuleSource:
    """Each function of one source file (by name) and which of them start processes, from one `ast` parse.

    `inspect.getsource` per test costs ~6 ms (it re-scans the file each time): a second on collection."""

    _cache: dict[str, _ModuleSource] = {}

    def __init__(self, path: str) -> None:
        import ast

        try:
            text = Path(path).read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, SyntaxError, ValueError):
            text, tree = "", None
        lines = text.splitlines()
        self.functions: dict[str, str] = {}
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.setdefault(node.name, "\n".join(lines[node.lineno - 1:node.end_lineno]))
        spawners = {n for n, src in self.functions.items() if any(w in src for w in _PROCESS_WORDS)}
        while True:
            more = {n for n, src in self.functions.items()
                    if n not in spawners and any(f"{m}(" in src for m in spawners)}
            if not more:
                break
            spawners |= more
        self.spawners = spawners

    @classmethod
    def of(cls, func: object) -> tuple[_ModuleSource, str]:
        code = getattr(func, "__code__", None)
        path = code.co_filename if code is not None else ""
        if path not in cls._cache:
            cls._cache[path] = cls(path)
        return cls._cache[path], getattr(func, "__name__", "")

    def spawns(self, name: str) -> bool:
        return name in self.spawners


def _spawns(func: object) -> bool:
    module, name = _ModuleSource.of(func)
    return module.spawns(name)


def _calls_processes(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    if function is not None and _spawns(function):
        return True
    info = getattr(item, "_fixtureinfo", None)  # a fixture that starts the program (a daemon, a server script)
    return info is not None and any(
        getattr(d, "argname", None) not in _PEER_FIXTURES and getattr(d, "func", None) is not None
        and _spawns(d.func)
        for defs in info.name2fixturedefs.values() for d in defs)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        kinds = set()
        if fixtures & _PEER_FIXTURES:
            kinds.add("peer")
        if fixtures & _BROWSER_FIXTURES:
            kinds.add("browser")
        if item.get_closest_marker("container"):
            kinds.add("container")
        if _calls_processes(item):
            kinds.add("process")
        for kind in kinds or {"unit"}:
            item.add_marker(getattr(pytest.mark, kind))
