"""The worker processes that prepare a backup's new sections (`prepare_pool`) do not outlive a backup
that is interrupted (Ctrl-C) or killed outright (SIGKILL: no `finally` runs in the parent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DRIVER = r"""
import os, sys, time
from pathlib import Path
import crossposter.backup.prepare_pool as pp
from crossposter.backup.writer import ArchiveWriter
from tests.unit.test_backup_prepare import threads_of
from tests.unit.test_backup_write import FakeReader, backup, cfg

pp.MIN_THREADS, pp.CHUNK = 1, 1  # (20 chunks of 0.3 s each per worker: 6 s of work)
real, parent = ArchiveWriter.prepare_many, os.getpid()

def slow(self, threads, media_path):
    if os.getpid() != parent:
        sys.stdout.write(f"worker {os.getpid()}\n")  # (one write: the workers share the pipe)
        sys.stdout.flush()
        time.sleep(0.3)
    return real(self, threads, media_path)

def taking(self, upto, real_take=pp.PreparePool.take):
    print("taking", flush=True)  # (the batches have begun)
    return real_take(self, upto)

ArchiveWriter.prepare_many, pp.PreparePool.take = slow, taking
posts = [p for t in threads_of(40) for p in t.posts]
backup(FakeReader(posts, files={p.media[0].fetch: b"IMG" for p in posts if p.media}), cfg(Path(sys.argv[1])))
print("done", flush=True)
"""


def running(pid: int) -> bool:
    """The process exists and has not exited (an exited orphan may stay a zombie until pid 1 reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to see the workers")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_no_worker_outlives_its_backup(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()
    assert proc.stdout is not None
    batches = False
    while len(workers) < 2 or not batches:
        line = proc.stdout.readline()
        assert line.startswith(("worker", "taking")), (line, proc.stderr.read() if proc.stderr else "")
        if line.startswith("taking"):
            batches = True
        else:
            workers.add(int(line.split()[1]))
    os.kill(proc.pid, sig)
    asked = time.monotonic()
    assert proc.wait(timeout=30) == -sig
    assert time.monotonic() - asked < 3  # (Ctrl-C does not wait for the workers' 6 s of work)
    deadline = time.monotonic() + 3  # (well before their work would end)
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if running(pid)]
    for pid in left:  # (a failing test leaves none behind either)
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)  # (after the workers: they hold the pipes open too)
    assert left == []
    # the workers say nothing (a Ctrl-C is the parent's; a parent gone ends them quietly)
    assert "Process" not in err and err.count("Traceback") <= 1
