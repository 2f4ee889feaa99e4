"""One way to replace a file so that a reader (or a crash) never sees half of it.

Temp file in the same folder (same file system, so the rename is atomic), written, fsynced,
renamed over the target, and the folder fsynced so the rename itself survives a power cut.
State files are created with the caller's mode (0600 for anything that may hold account data)
and keep it when rewritten, whatever an older file had.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["write_atomic", "replacing", "fsync_folder", "sync_all"]


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable; file systems that cannot sync a folder are tolerated."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True,
                 sync_folder: bool = True) -> None:
    """Replace `path` with `data` atomically and durably, the new file having `mode`.

    `durable=False` leaves out the two fsyncs (file and folder), for a caller that writes many files and
    then makes them durable at once (`sync_all`): the rename is still atomic, so no reader ever sees half a
    file under the real name. `sync_folder=False` keeps the file's fsync and leaves out the folder's, for a
    caller that writes many files into one folder and fsyncs it once after the last rename."""
    with _temp_beside(Path(path), mode) as (tmp, fd):
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    if durable and sync_folder:
        fsync_folder(Path(path).parent)


@contextmanager
def replacing(path: Path, mode: int = 0o600) -> Iterator[Path]:
    """A temp path beside `path` for a writer that needs a file name (streams its output into it); when the
    block ends without error it is fsynced and renamed over `path`, and the folder fsynced. On error it is
    removed and `path` is untouched."""
    path = Path(path)
    with _temp_beside(path, mode) as (tmp, fd):
        os.close(fd)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    fsync_folder(path.parent)


@contextmanager
def _temp_beside(path: Path, mode: int) -> Iterator[tuple[Path, int]]:
    """A new temp file in `path`'s folder (same file system: the rename is atomic) with exactly `mode`, and
    its descriptor; removed if the block fails (after a successful rename there is nothing left to remove)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask must not widen or narrow what the caller asked
        except BaseException:
            os.close(fd)
            raise
        yield tmp, fd  # the caller owns (and closes) the descriptor from here
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sync_all() -> None:
    """Make every write so far durable with one `sync` (many small files: one flush, not two fsyncs each)."""
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()
