"""`mirror.edits` / `mirror.deletions` in the config: a value not offered is refused at start, naming the file,
the key and the values it takes, and nothing runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("key", "value", "allowed"), [("deletions", "remove", "'report' or 'delete'"),
                                                       ("deletions", "yes", "'report' or 'delete'"),
                                                       ("edits", "rewrite", "'report' or 'update'")])
def test_an_unknown_value_is_a_clear_error_and_the_daemon_does_not_start(tmp_path: Path, key: str, value: str,
                                                                         allowed: str) -> None:
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("state_dir: state\nplatforms: {bluesky: {handle: me.test}, x: {enabled: true}}\n"
                   f"mirror: {{from: bluesky, to: [x], {key}: {value}}}\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in (["daemon"], ["check"], ["status"]):
        r = subprocess.run([sys.executable, "-m", "crossposter", *command, "--config", str(cfg)], capture_output=True,
                           text=True, cwd=tmp_path, env=env, timeout=120)
        assert r.returncode != 0, (command, r.stdout, r.stderr)
        assert str(cfg.name) in r.stderr and f"mirror.{key}" in r.stderr and allowed in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "state" / "mirror-state.json").exists()
