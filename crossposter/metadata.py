"""Write a thread's metadata block back into the user's archive without touching any other byte.

The archive is the user's file and the only record of what was posted, so this
module is paranoid:

* **Exact bytes.** The file is edited as bytes. The block is inserted right
  under the ``##`` heading line (after its line ending), with the heading
  line's own line ending (CRLF file → CRLF block). When the heading is the
  last line and has no final newline, a line ending is put *before* the block
  and none after it. ``strip_metadata_blocks`` removes exactly those bytes
  (a block plus its following line ending; or, for a block at the very end of
  the file, its preceding line ending plus the block), so removing the block
  always gives back the original bytes. An existing block is replaced in
  place (its own line endings kept), so stripping before and after an update
  gives the same bytes.
* **YAML style.** ``yaml.safe_dump`` with insertion order kept, Unicode kept
  and no line folding. Top level and lists are block style; a mapping nested
  below the top level whose values are all scalars is written in flow style,
  so each published post is one readable line
  (``- {id: '113520001', url: 'https://…', sha: 0f3a…}``). Anchors/aliases are
  never emitted. The dumped YAML must load back to the same value and must not
  contain ``-->`` (which would close the HTML comment early), else nothing is
  written. Note that ``safe_load`` turns unquoted ISO timestamps into
  ``datetime`` objects; they round-trip as such. A block is regenerated from
  its data when it changes, so YAML comments a person wrote inside it are not
  kept (the block is crossposter's; nothing outside it is ever rewritten).
  Libyaml (``CSafeLoader``/``CSafeDumper``) is used when PyYAML was built with it.
* **Atomic.** New bytes go to a temp file in the same folder, flushed and
  fsynced, given the original file's permission bits (and owner, when we are
  allowed to), renamed over the archive with ``os.replace``, then the folder is
  fsynced. The target of a symlinked archive is edited, the link is kept.
  Before writing, the new bytes are parsed again and must give the same
  threads with the new metadata; otherwise nothing is written.
* **Locked.** Every read-modify-write runs under ``fcntl.flock(LOCK_EX)`` on an
  ``O_RDONLY`` descriptor of the archive's *folder*. Locking the folder (not a
  ``.lock`` file) leaves no stray files in the user's (often git-tracked)
  folder, survives the rename of the archive (a lock on the file itself would be
  on the old inode), and serialises threads of one process as well as separate
  processes (each call opens its own descriptor). The file is re-read under the
  lock, so an update never works on stale bytes. Leftover temp files of a
  writer that was killed are removed under the same lock. Editors do not take
  the lock: if the file's inode, size or mtime changed between our read and the
  rename, the temp file is discarded and the read-modify-write redone (so an
  editor's save is never overwritten; ``update`` may run more than once).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import errno
import fcntl
import functools
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from crossposter.archive import (
    BLOCK_CLOSE,
    BLOCK_OPEN,
    ArchiveError,
    Thread,
    decode_archive,
    parse_archive,
)

__all__ = ["BLOCK_OPEN", "BLOCK_CLOSE", "update_thread_metadata", "strip_metadata_blocks", "thread_metadata",
           "render_block"]

#: how long to wait for another writer before giving up (a writer holds the lock for milliseconds)
LOCK_TIMEOUT = 60.0
_TMP_SUFFIX = ".crossposter-tmp"


# --------------------------------------------------------------------------- bytes and lines


def _line_starts(data: bytes) -> list[int]:
    """Byte offset where each line starts (index 0 = line 1); lines end at ``\\n`` only."""
    starts = [0]
    find = data.find
    pos = find(b"\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = find(b"\n", pos + 1)
    if starts[-1] == len(data) and len(starts) > 1:
        starts.pop()  # the final newline does not start another line
    return starts


def _line_end(data: bytes, starts: list[int], line: int) -> int:
    """Offset just after line ``line`` (1-based), line ending included."""
    return starts[line] if line < len(starts) else len(data)


def _eol_of(data: bytes, starts: list[int], line: int) -> bytes | None:
    end = _line_end(data, starts, line)
    if end == 0 or data[end - 1:end] != b"\n":
        return None
    return b"\r\n" if data[max(0, end - 2):end] == b"\r\n" else b"\n"


def _default_eol(data: bytes) -> bytes:
    pos = data.find(b"\n")
    return b"\r\n" if pos > 0 and data[pos - 1:pos] == b"\r" else b"\n"


def _block_span(data: bytes, starts: list[int], thread: Thread) -> tuple[int, int]:
    """Byte range to delete so that the block and its own line ending vanish (see module docstring)."""
    assert thread.block_line is not None and thread.block_end_line is not None
    begin = starts[thread.block_line - 1]
    end = _line_end(data, starts, thread.block_end_line)
    if _eol_of(data, starts, thread.block_end_line) is None:
        # block at the very end of a file without final newline: its line ending is the one before it
        prev = _eol_of(data, starts, thread.block_line - 1) or b""
        begin -= len(prev)
    return begin, end


# --------------------------------------------------------------------------- YAML


class _FlowMap(dict):
    """Marks a mapping to be written on one line."""


def _scalar(v: Any) -> bool:
    return not isinstance(v, dict | list | tuple | set)


def _styled(obj: Any, depth: int) -> Any:
    if isinstance(obj, dict):
        items = {k: _styled(v, depth + 1) for k, v in obj.items()}
        if depth >= 1 and obj and all(_scalar(v) for v in obj.values()):
            return _FlowMap(items)
        return items
    if isinstance(obj, list):
        return [_styled(v, depth + 1) for v in obj]
    return obj


@functools.cache
def _dumper() -> type:
    import yaml

    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    Dumper.add_representer(_FlowMap, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data,
                                                                         flow_style=True))
    # A schedule read from an unquoted `2026-12-01T09:00:00+01:00` is a datetime: write it back in the same
    # ISO 8601 form (PyYAML's default would write "2026-12-01 09:00:00+01:00").
    Dumper.add_representer(datetime.datetime, lambda d, data: d.represent_scalar("tag:yaml.org,2002:timestamp",
                                                                                 data.isoformat()))
    return Dumper


def render_block(meta: dict, eol: str = "\n", *, round_trip: bool = True) -> str:
    """The block text for ``meta`` (no final line ending); raises ValueError if it cannot be written faithfully.

    ``round_trip=False`` skips loading the YAML back: only for callers that re-parse the written bytes
    and compare with ``meta`` anyway (``update_thread_metadata`` via ``_verify``, a stronger check),
    because a YAML load per write is a third of what recording a post costs.
    """
    import yaml

    try:
        dumped = yaml.dump(_styled(meta, 0), Dumper=_dumper(), sort_keys=False, allow_unicode=True,
                           default_flow_style=False, width=1_000_000)
    except yaml.YAMLError as e:
        raise ValueError(f"metadata cannot be written as YAML: {e}") from None
    if BLOCK_CLOSE in dumped:
        raise ValueError(f"metadata contains {BLOCK_CLOSE!r}, which would end the HTML comment early")
    if round_trip and yaml.load(dumped, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) != meta:
        raise ValueError("metadata does not survive a YAML round trip (only str, int, float, bool, None, "
                         "datetime, lists and mappings can be stored)")
    lines = [BLOCK_OPEN, *dumped.rstrip("\n").split("\n"), BLOCK_CLOSE]
    return eol.join(lines)


# --------------------------------------------------------------------------- editing


def _replace_block(data: bytes, thread: Thread, meta: dict) -> bytes:
    """The file bytes with ``thread``'s block set to ``meta`` (removed when ``meta`` is empty).

    The YAML is not loaded back here: ``_verify`` parses the new bytes and compares with ``meta``.
    """
    starts = _line_starts(data)
    if thread.block_line is not None:
        assert thread.block_end_line is not None
        if not meta:
            begin, end = _block_span(data, starts, thread)
            return data[:begin] + data[end:]
        eol = (_eol_of(data, starts, thread.block_line) if thread.block_end_line > thread.block_line else None) \
            or _eol_of(data, starts, thread.heading_end_line) or _default_eol(data)
        begin = starts[thread.block_line - 1]
        end = _line_end(data, starts, thread.block_end_line)
        end -= len(_eol_of(data, starts, thread.block_end_line) or b"")
        block = render_block(meta, eol.decode(), round_trip=False).encode("utf-8")
        return data[:begin] + block + data[end:]
    if not meta:
        return data
    head_eol = _eol_of(data, starts, thread.heading_end_line)
    at = _line_end(data, starts, thread.heading_end_line)
    if head_eol is not None:
        block = render_block(meta, head_eol.decode(), round_trip=False).encode("utf-8") + head_eol
    else:  # heading is the last line, without final newline
        eol = _default_eol(data)
        block = eol + render_block(meta, eol.decode(), round_trip=False).encode("utf-8")
    return data[:at] + block + data[at:]


def _verify(old_data: bytes, new: bytes, thread: Thread, meta: dict, path: Path) -> Thread:
    """Re-read the thread's section from the bytes about to be written: same thread, exactly ``meta``.

    Only the section is re-parsed (a top-level heading starts afresh in Markdown, so a section reads the
    same alone as in the file); everything outside it is checked to be byte-identical. This keeps a
    write to a few milliseconds, which matters because the publisher records after every post.
    Returns the thread as it reads in ``new`` (line numbers of the whole file), for ``_written``.
    """
    starts = _line_starts(old_data)
    begin = starts[thread.line - 1]
    old_end = _line_end(old_data, starts, thread.end_line)
    new_end = old_end + len(new) - len(old_data)
    problem = None
    if new[:begin] != old_data[:begin] or new[new_end:] != old_data[old_end:]:
        problem = "bytes outside the thread's section would change"
    else:
        section = parse_archive(new[begin:new_end].decode("utf-8"), path).threads
        if len(section) != 1:
            problem = f"the section would read as {len(section)} threads"
        else:
            t = section[0]
            if (t.title, t.date, t.body, t.metadata) != (thread.title, thread.date, thread.body, meta):
                if t.metadata != meta:
                    # the usual cause: a value YAML cannot hold (a tuple, a set…) — say so, as render_block would
                    try:
                        render_block(meta)
                    except ValueError as e:
                        raise ArchiveError(path, thread.line,
                                           f"cannot record metadata for {thread.title!r}: {e}") from None
                problem = "the thread would not read back with the new metadata and the same text"
    if problem:
        raise ArchiveError(path, thread.line, f"internal error: {problem}; nothing was written "
                                              "(please report this with the file)")
    # The section starts on the same line in both files (the bytes before it are identical).
    off = thread.line - 1
    return dataclasses.replace(
        t, line=t.line + off, end_line=t.end_line + off, body_line=t.body_line + off,
        heading_end_line=t.heading_end_line + off,
        block_line=None if t.block_line is None else t.block_line + off,
        block_end_line=None if t.block_end_line is None else t.block_end_line + off, path=thread.path)


#: (archive's real path, title) -> (the bytes this process last wrote there, the thread as it reads in them).
#: Recording a post re-reads the file under the lock; when it still holds exactly the bytes we wrote and
#: verified, the thread is known without parsing the whole file again (markdown-it and the YAML of every
#: block: ~15 ms for a real archive, per post). Any other byte content parses as before.
_written: dict[tuple[str, str], tuple[bytes, Thread]] = {}


@contextlib.contextmanager
def _folder_lock(folder: Path, path: Path) -> Iterator[int]:
    """Exclusive flock on the folder; yields the folder descriptor (reused to fsync the rename)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ArchiveError(path, None, f"cannot open the archive's folder {folder}: {e.strerror}") from None
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ArchiveError(path, None, f"cannot lock the archive's folder {folder} "
                                                   f"({e.strerror}); is it on a file system without flock?") from None
                if time.monotonic() > deadline:
                    raise ArchiveError(path, None, f"another process has held the lock on {folder} for "
                                                   f"{LOCK_TIMEOUT:.0f} s; is a crossposter process stuck?") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _tmp_prefix(real: Path) -> str:
    return f".{real.name}."


def _remove_stale_temps(real: Path) -> None:
    """Temp files of a writer killed mid-write; safe to delete because we hold the folder lock."""
    prefix = _tmp_prefix(real)
    with contextlib.suppress(OSError):
        for entry in os.scandir(real.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(_TMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _same_file(st: os.stat_result, now: os.stat_result) -> bool:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns) == (now.st_ino, now.st_dev, now.st_size,
                                                                  now.st_mtime_ns)


def _atomic_write(real: Path, data: bytes, folder_fd: int, path: Path, read_stat: os.stat_result) -> bool:
    """Write ``data`` over ``real`` atomically; False (nothing written) if the file changed since it was read."""
    tmp = real.parent / f"{_tmp_prefix(real)}{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), stat.S_IMODE(read_stat.st_mode))
            if hasattr(os, "fchown"):
                with contextlib.suppress(OSError):
                    os.fchown(f.fileno(), read_stat.st_uid, read_stat.st_gid)
            os.fsync(f.fileno())
        # An editor does not take our lock: if it saved meanwhile, do not overwrite its save.
        if not _same_file(read_stat, os.stat(real)):
            os.unlink(tmp)
            return False
        os.replace(tmp, real)
    except BaseException as e:  # noqa: B036 - also on KeyboardInterrupt: never leave a temp file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ArchiveError(path, None, f"could not write the archive ({e.strerror or e}); "
                                           "it is unchanged") from None
        raise
    try:
        os.fsync(folder_fd)  # makes the rename itself durable
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):  # some file systems cannot fsync a folder
            raise ArchiveError(path, None, f"the archive was written but the folder could not be synced "
                                           f"({e.strerror}); check the disk") from None
    return True


#: how often a read-modify-write is redone when an editor saved the file in between
_ATTEMPTS = 5


def update_thread_metadata(path: Path, title: str, update: Callable[[dict], None]) -> dict:
    """Apply ``update`` to a copy of the thread's metadata and write it back (see module docstring).

    Returns the new metadata. Raises ArchiveError (file unreadable/not writable, thread missing or
    ambiguous, metadata not writable); in every error case the file is left untouched. ``update`` may be
    called more than once (on a fresh copy each time) if another program saves the file meanwhile, so it
    must only mutate the dict it is given.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    with _folder_lock(real.parent, path) as folder_fd:
        _remove_stale_temps(real)
        for _ in range(_ATTEMPTS):
            try:
                with open(real, "rb") as f:
                    read_stat = os.fstat(f.fileno())
                    data = f.read()
            except OSError as e:
                raise ArchiveError(path, None, f"cannot read the archive: {e.strerror or e}") from None
            key = (str(real), title)
            known = _written.pop(key, None)
            if known is not None and known[0] == data:
                thread = known[1]
            else:
                thread = parse_archive(decode_archive(data, path), path).find(title)
            meta = copy.deepcopy(thread.metadata)
            update(meta)
            if not isinstance(meta, dict):  # pragma: no cover - update mutates in place, but be sure
                raise ArchiveError(path, thread.line, "metadata update did not leave a mapping")
            if meta == thread.metadata:
                _written[key] = (data, thread)
                return meta
            # the owner's write bit is honoured even by root (the daemon's container runs as root)
            if not os.access(real, os.W_OK) or not read_stat.st_mode & stat.S_IWUSR:
                raise ArchiveError(path, None, "the archive is not writable; crossposter records post IDs "
                                               "in it (fix its permissions)")
            try:
                new = _replace_block(data, thread, meta)
            except ValueError as e:
                raise ArchiveError(path, thread.line,
                                   f"cannot record metadata for {thread.title!r}: {e}") from None
            written = _verify(data, new, thread, meta, path)
            if _atomic_write(real, new, folder_fd, path, read_stat):
                _written[key] = (new, written)
                return meta
        raise ArchiveError(path, None, f"the archive kept changing while crossposter recorded into it "
                                       f"({_ATTEMPTS} attempts); is an editor auto-saving it?")


def strip_metadata_blocks(data: bytes) -> bytes:
    """The file bytes with every thread's metadata block removed: the file as it was before crossposter."""
    where = Path("<data>")
    archive = parse_archive(decode_archive(data, where), where)
    starts = _line_starts(data)
    out = data
    for thread in reversed(archive.threads):
        if thread.block_line is not None:
            begin, end = _block_span(data, starts, thread)
            out = out[:begin] + out[end:]
    return out


def thread_metadata(path: Path, title: str) -> dict:
    """Read-only: the thread's current metadata (a fresh copy, safe to mutate)."""
    from crossposter.archive import read_archive

    return copy.deepcopy(read_archive(path).find(title).metadata)
