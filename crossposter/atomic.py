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
import secrets
from pathlib import Path

__all__ = ["write_atomic", "fsync_folder", "sync_all"]


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


def write_atomic(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Replace `path` with `data` atomically and durably, the new file having `mode`.

    `durable=False` leaves out the two fsyncs (file and folder), for a caller that writes many files and
    then makes them durable at once (`sync_all`): the rename is still atomic, so no reader ever sees half a
    file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask must not widen or narrow what the caller asked
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_folder(path.parent)


def sync_all() -> None:
    """Make every write so far durable with one `sync` (many small files: one flush, not two fsyncs each)."""
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()
