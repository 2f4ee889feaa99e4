"""Every writer that replaces a whole file goes through `atomic` and is durable (file and folder fsynced).

The daemon's state file and heartbeat, and `preview --output`, once had their own temp-and-rename routines
without fsync: after a power cut the renamed file could be empty.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crossposter import atomic
from crossposter.daemon.state import DaemonState, write_heartbeat
from crossposter.output_file import replace_atomically


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each `os.fsync` was called on: the file's name, or "folder"."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        seen.append("folder" if stat.S_ISDIR(st.st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_the_daemon_state_file_is_written_durably(tmp_path: Path, fsyncs: list[str]) -> None:
    state = DaemonState(tmp_path / "daemon-state.json")
    state.set("a.md#One", outcome="failed", sig="s")
    assert fsyncs == ["file", "folder"]
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    assert DaemonState.load(state.path).get("a.md#One", "s")["outcome"] == "failed"
    assert sorted(os.listdir(tmp_path)) == ["daemon-state.json"]


def test_the_heartbeat_is_written_durably(tmp_path: Path, fsyncs: list[str]) -> None:
    write_heartbeat(tmp_path)
    assert fsyncs == ["file", "folder"] and os.listdir(tmp_path) == ["heartbeat"]


def test_the_preview_output_is_written_durably_with_the_old_mode(tmp_path: Path, fsyncs: list[str]) -> None:
    target = tmp_path / "out.html"
    target.write_text("old")
    target.chmod(0o640)
    with replace_atomically(target) as tmp, tmp.open("w") as f:
        f.write("new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert fsyncs == ["file", "folder"] and os.listdir(tmp_path) == ["out.html"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.replacing(target, 0o600) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["state.json"]


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_the_mode_is_what_was_asked_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    old = os.umask(0o077 if mode == 0o644 else 0)
    try:
        atomic.write_atomic(tmp_path / "f", b"x", mode)
        with atomic.replacing(tmp_path / "g", mode) as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    assert [stat.S_IMODE((tmp_path / n).stat().st_mode) for n in "fg"] == [mode, mode]
