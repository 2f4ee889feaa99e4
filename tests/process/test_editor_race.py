"""An editor saving the archive while crossposter records into it: no save may be lost.

Editors do not take crossposter's lock. The "editor" here is a separate process that, every 10 to
40 ms, reads the archive, appends a numbered line to the end of the last thread and saves: in place
(truncate and rewrite, as many editors and `>` do) or through a temp file renamed over the archive
(as vim and emacs do by default). Meanwhile this process records a post into the first thread's
metadata block, many times. Afterwards every line the editor saved must still be in the file.

Two things are counted but not asserted, because they are the editor's doing or the machine's: a
recording the editor overwrote (it read the file just before our rename and saved its stale copy
after it), and a recording that gave up because the file never stayed unchanged for as long as one
write takes (`metadata.PATIENCE`; on a loaded machine an fsync alone can take longer than the
editor's interval).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crossposter.archive import ArchiveError, read_archive
from crossposter.metadata import strip_metadata_blocks, update_thread_metadata

EDITOR = r"""
import os, random, sys, time
path, mode, stop = sys.argv[1], sys.argv[2], sys.argv[3]
rng = random.Random(int(sys.argv[4]))
n = 0
while not os.path.exists(stop):
    with open(path, "rb") as f:
        data = f.read()
    data += b"edit %d\n" % n
    if mode == "in-place" or (mode == "both" and n % 2):
        with open(path, "wb") as f:  # truncates, then writes: the file is empty for a moment
            f.write(data)
    else:
        tmp = path + ".editor-tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    n += 1
    print(n - 1, flush=True)
    time.sleep(rng.uniform(0.01, 0.04))
"""


def race(tmp_path: Path, mode: str, recordings: int, seed: int) -> tuple[int, int, int, int]:
    """(edits saved, edits lost, recordings overwritten by the editor, recordings given up)."""
    path = tmp_path / "threads.md"
    path.write_bytes(b"# Archive\n\n## Recorded\n\nThe thread crossposter records into.\n\n## Edited\n\nText.\n")
    stop = tmp_path / "stop"
    editor = subprocess.Popen([sys.executable, "-c", EDITOR, str(path), mode, str(stop), str(seed)],
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # the editor is saving by now
        gave_up = 0
        for i in range(recordings):
            try:
                update_thread_metadata(path, "Recorded", lambda m, i=i: m.setdefault("x", []).append(str(i)))
            except ArchiveError as e:
                # the only way a recording may fail here is patience running out (not, say, reading the
                # file while an editor had it truncated, which once stopped a recording at once)
                assert "kept changing" in str(e), str(e)
                gave_up += 1
            time.sleep(0.002)
    finally:
        stop.write_text("")
        out, _ = editor.communicate(timeout=30)
    saved = [int(n) for n in out.split()]
    text = path.read_bytes()
    lost_edits = [n for n in saved if b"edit %d\n" % n not in text]
    recorded = read_archive(path).find("Recorded").metadata.get("x", [])
    # the editor may itself overwrite a recording (it read the file just before our rename): that loses our
    # line, never its own; count it apart
    overwritten = recordings - gave_up - len(recorded)
    assert strip_metadata_blocks(text).startswith(b"# Archive\n\n## Recorded\n\nThe thread crossposter records")
    return len(saved), len(lost_edits), overwritten, gave_up


@pytest.mark.parametrize("mode", ["in-place", "rename", "both"])
def test_no_save_of_an_editor_is_lost(tmp_path: Path, mode: str) -> None:
    saved, lost, overwritten, gave_up = race(tmp_path, mode, recordings=100, seed=7)
    print(f"{mode}: {saved} editor saves, {lost} lost; of 100 recordings {overwritten} overwritten by the editor, "
          f"{gave_up} given up")
    assert saved > 20  # the editor really ran alongside
    assert lost == 0


def test_no_save_is_lost_without_the_exchange_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the file system cannot exchange (NFS, older kernels) an in-place save is still caught."""
    import crossposter.metadata as md

    monkeypatch.setattr(md, "_exchange", lambda a, b: False)
    saved, lost, _, _ = race(tmp_path, "in-place", recordings=100, seed=11)
    assert saved > 20
    assert lost == 0


def test_the_editor_race_harness_sees_lost_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness can fail: with the last check and the exchange taken out, saves are lost."""
    import crossposter.metadata as md

    def careless(real: Path, data: bytes, folder_fd: int, path: Path, read_stat: os.stat_result,
                 expected: bytes) -> None:
        time.sleep(0.01)  # the fsync of a larger file, on a slower disk
        tmp, _ = md._write_temp(real, data, read_stat)
        os.replace(tmp, real)

    monkeypatch.setattr(md, "_atomic_write", careless)
    _, lost, _, _ = race(tmp_path, "both", recordings=100, seed=3)
    assert lost > 0
