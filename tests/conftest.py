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
