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
# A test's kind is the folder its file is in, and becomes its marker, so the fast unit tests run apart from
# the ones that start servers, browsers, containers or subprocesses (`pytest tests/unit`, `pytest -m unit`,
# `pytest -m "not peer"`). A file goes to the heaviest kind any of its tests needs, in this order:
#   container  builds and runs the Docker image (podman)
#   browser    drives headless Chromium (fixtures `chromium`, `dom`)
#   peer       talks to a real local peer: the PDS, mastodon-mock, the X fake (`pds`, `mastodon_server`, `x_server`)
#   process    runs crossposter or a helper as a subprocess (subprocess, sys.executable, os.fork, os.kill, ...)
#   unit       in-process only

KINDS = ("unit", "peer", "process", "browser", "container")
_TESTS = Path(__file__).resolve().parent


def kind_of(path: Path) -> str | None:
    """The kind of a test file: the folder under tests/ it is in (None for a file outside those folders)."""
    try:
        folder = Path(path).resolve().relative_to(_TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return folder if folder in KINDS else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        kind = kind_of(item.path)
        if kind is None:
            raise pytest.UsageError(f"{item.path}: a test file belongs in one of tests/{{{','.join(KINDS)}}}/ "
                                    "(see the kinds in tests/conftest.py)")
        item.add_marker(getattr(pytest.mark, kind))
