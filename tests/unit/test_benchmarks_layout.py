"""The benchmarks import nothing from `tests/`: what both need (local servers, the proxy) lives in `testing/`.

A benchmark that imports a test module pulls pytest fixtures and test-only state into a timed process,
and breaks whenever a test file is moved or renamed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_benchmark_imports_from_tests() -> None:
    offenders = {p.name: sorted(n for n in _imports(p) if n == "tests" or n.startswith("tests."))
                 for p in sorted((ROOT / "benchmarks").glob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_shared_harness_imports_nothing_from_tests_or_pytest() -> None:
    for path in sorted((ROOT / "testing").glob("*.py")):
        bad = sorted(n for n in _imports(path) if n.split(".")[0] in ("tests", "pytest"))
        assert bad == [], f"{path.name}: {bad}"
