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
  The block is rendered key by key (a block-style mapping is its keys' texts
  one after another); later writes of this process re-render only the keys
  that changed, and of a list that grew only its new entries (``_edit_block``),
  so that recording post n costs what recording post 1 costs.
  Libyaml (``CSafeLoader``/``CSafeDumper``) is used when PyYAML was built with it.
* **Atomic.** New bytes go to a temp file in the same folder, flushed and
  fsynced, given the original file's permission bits (and owner, when we are
  allowed to), renamed over the archive with ``os.replace``, then the folder is
  fsynced. The target of a symlinked archive is edited, the link is kept.
  This is not ``atomic.write_atomic`` (which every other whole-file writer uses) on purpose: the
  archive's rename must not lose an editor's save made since we read it, so it is an exchange
  (``renameat2``) or a hard-linked replace that keeps the replaced file reachable, followed by a
  content check, and it keeps the archive's owner; none of which a state or cache file needs.
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
  the lock: see "writing beside an editor" below for how a save made during
  our read-modify-write is found (by content) and kept (``update`` may then run
  more than once), and what no check can see.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import errno
import fcntl
import functools
import logging
import os
import random
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
           "render_block", "rewrite_archive", "set_block", "line_starts", "line_end", "default_eol"]

log = logging.getLogger("crossposter.metadata")

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


def _dump(key: Any, value: Any) -> list[str]:
    """The YAML lines of one top-level key (no line endings), as they appear inside the whole block.

    A block-style top-level mapping is its keys' texts one after the other, so the block is rendered (and
    re-rendered) key by key; raises ValueError if the key cannot be written faithfully.
    """
    if type(key) is str and type(value) is str:  # e.g. `source: mastodon` in each of a backup's thousands of blocks
        return list(_dump_text(key, value))
    return _dump_any(key, value)


@functools.lru_cache(maxsize=64)
def _dump_text(key: str, value: str) -> tuple[str, ...]:
    return tuple(_dump_any(key, value))


def _dump_any(key: Any, value: Any) -> list[str]:
    import yaml

    try:
        dumped = yaml.dump({key: _styled(value, 1)}, Dumper=_dumper(), sort_keys=False, allow_unicode=True,
                           default_flow_style=False, width=1_000_000)
    except yaml.YAMLError as e:
        raise ValueError(f"metadata cannot be written as YAML: {e}") from None
    if BLOCK_CLOSE in dumped:
        raise ValueError(f"metadata contains {BLOCK_CLOSE!r}, which would end the HTML comment early")
    return dumped.rstrip("\n").split("\n")


def _round_trips(lines: list[str], expected: dict) -> bool:
    import yaml

    return yaml.load("\n".join(lines), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == expected


_NOT_YAML = ("metadata does not survive a YAML round trip (only str, int, float, bool, None, datetime, lists and "
             "mappings can be stored)")


def _sections(meta: dict, *, round_trip: bool) -> dict[Any, list[str]]:
    out = {}
    for key, value in meta.items():
        lines = _dump(key, value)
        if round_trip and not _round_trips(lines, {key: value}):
            raise ValueError(_NOT_YAML)
        out[key] = lines
    return out


def render_block(meta: dict, eol: str = "\n", *, round_trip: bool = True) -> str:
    """The block text for ``meta`` (no final line ending); raises ValueError if it cannot be written faithfully.

    ``round_trip=False`` skips loading the YAML back: only for callers that re-parse the written bytes
    and compare with ``meta`` anyway (``_verify``, a stronger check).
    """
    sections = _sections(meta, round_trip=round_trip)
    return eol.join([BLOCK_OPEN, *(line for lines in sections.values() for line in lines), BLOCK_CLOSE])


# --------------------------------------------------------------------------- editing


@dataclasses.dataclass(frozen=True)
class _Block:
    """A block exactly as this process wrote it: where it sits in the file and its text, key by key.

    Kept so that the next write re-renders (and re-verifies) only the keys that changed, and for a list
    that only grew, only its new entries: recording post n then costs the same as recording post 1.
    """

    begin: int  # byte offset of the `<!-- crossposter` line
    data: bytes  # the block's bytes, `<!--` to `-->` (its final line ending excluded)
    eol: str
    sections: dict[Any, _Section]  # each top-level key's YAML, in block order

    def lines(self) -> int:
        return 2 + sum(section.lines for section in self.sections.values())


@dataclasses.dataclass(frozen=True)
class _Section:
    """One top-level key's YAML text, its lines joined with the block's line ending (none at the end)."""

    text: str
    lines: int
    head: str  # its first line (`key:` when the value is a block below it)
    listed: bool  # the value is a list written as `- ` lines under `key:`

    @classmethod
    def of(cls, lines: list[str], eol: str) -> _Section:
        return cls(eol.join(lines), len(lines), lines[0], len(lines) > 1 and lines[1][:2] == "- ")

    def plus(self, lines: list[str], eol: str) -> _Section:
        """This list section with more entries (``lines``: their `- ` lines) at its end."""
        return _Section(self.text + eol + eol.join(lines), self.lines + len(lines), self.head, True)


def _replace_block(data: bytes, thread: Thread, meta: dict) -> tuple[bytes, _Block | None]:
    """The file bytes with ``thread``'s block set to ``meta`` (removed when ``meta`` is empty), and the block.

    The YAML is not loaded back here: ``_verify`` parses the new bytes and compares with ``meta``.
    """
    starts = _line_starts(data)
    if thread.block_line is not None:
        assert thread.block_end_line is not None
        if not meta:
            begin, end = _block_span(data, starts, thread)
            return data[:begin] + data[end:], None
        eol = (_eol_of(data, starts, thread.block_line) if thread.block_end_line > thread.block_line else None) \
            or _eol_of(data, starts, thread.heading_end_line) or _default_eol(data)
        begin = starts[thread.block_line - 1]
        end = _line_end(data, starts, thread.block_end_line)
        end -= len(_eol_of(data, starts, thread.block_end_line) or b"")
        block = _new_block(begin, eol.decode(), _sections(meta, round_trip=False), None)
        return data[:begin] + block.data + data[end:], block
    if not meta:
        return data, None
    head_eol = _eol_of(data, starts, thread.heading_end_line)
    at = _line_end(data, starts, thread.heading_end_line)
    if head_eol is not None:
        block = _new_block(at, head_eol.decode(), _sections(meta, round_trip=False), None)
        return data[:at] + block.data + head_eol + data[at:], block
    # heading is the last line, without final newline
    eol = _default_eol(data)
    block = _new_block(at + len(eol), eol.decode(), _sections(meta, round_trip=False), None)
    return data[:at] + eol + block.data + data[at:], block


def _new_block(begin: int, eol: str, lines: dict[Any, list[str]] | None,
               sections: dict[Any, _Section] | None) -> _Block:
    """A block from each key's lines, or from ready sections (whose texts are joined as they are)."""
    if sections is None:
        sections = {key: _Section.of(ls, eol) for key, ls in (lines or {}).items()}
    text = eol.join([BLOCK_OPEN, *(section.text for section in sections.values()), BLOCK_CLOSE])
    return _Block(begin=begin, data=text.encode("utf-8"), eol=eol, sections=sections)


def _grown(old: Any, new: Any) -> bool:
    """Whether list `new` is list `old` with entries appended (shared entries compare by identity: cheap)."""
    return type(old) is list and type(new) is list and 0 < len(old) < len(new) and new[:len(old)] == old


def _edit_block(data: bytes, thread: Thread, old: dict, block: _Block, meta: dict,
                path: Path) -> tuple[bytes, Thread, _Block] | None:
    """The file with the block rewritten from ``block`` (how this process last wrote it), re-rendering only
    what differs between ``old`` and ``meta``; None when that cannot be done safely (then the full path runs).

    What makes this as safe as the full re-parse of ``_verify``: ``data`` is byte for byte the file this
    process last wrote and verified (the caller checked), so every byte outside the block and every
    unchanged key's text is text already verified. Each re-rendered key, and each list's new entries, is
    loaded back and compared with its value here; none contains ``-->``, so the comment still ends on its
    own last line and the thread's text after it reads as before. A top-level key's text starts in column
    0 and a list's entries are ``- `` lines under it, so the pieces cannot run into each other.
    """
    if not meta or thread.block_line is None or thread.block_end_line is None:
        return None
    if data[block.begin:block.begin + len(block.data)] != block.data:
        return None
    sections: dict[Any, _Section] = {}
    eol = block.eol
    try:
        for key, value in meta.items():
            before = block.sections.get(key)
            if before is not None and key in old and value == old[key]:
                sections[key] = before
                continue
            if before is not None and before.listed and _grown(old.get(key), value):
                added = value[len(old[key]):]
                lines = _dump(key, added)
                if lines[0] == before.head and _round_trips(lines, {key: added}):
                    sections[key] = before.plus(lines[1:], eol)
                    continue
            lines = _dump(key, value)
            if not _round_trips(lines, {key: value}):
                raise ValueError(_NOT_YAML)
            sections[key] = _Section.of(lines, eol)
    except ValueError as e:
        raise ArchiveError(path, thread.line, f"cannot record metadata for {thread.title!r}: {e}") from None
    new_block = _new_block(block.begin, eol, None, sections)
    new = data[:block.begin] + new_block.data + data[block.begin + len(block.data):]
    shift = new_block.lines() - block.lines()
    written = dataclasses.replace(thread, block_end_line=thread.block_end_line + shift,
                                  body_line=thread.body_line + shift, end_line=thread.end_line + shift)
    return new, written, new_block


def _verify(old_data: bytes, new: bytes, thread: Thread, meta: dict, path: Path) -> Thread:
    """Re-read the thread's section from the bytes about to be written: same thread, exactly ``meta``.

    Only the section is re-parsed (a top-level heading starts afresh in Markdown, so a section reads the
    same alone as in the file); everything outside it is checked to be byte-identical. This runs on the
    first write of a thread in a process (and after anyone else changed the file); later writes go
    through ``_edit_block``. Returns the thread as it reads in ``new`` (line numbers of the whole file).
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


# --------------------------------------------------------------------------- the metadata this process holds


class _Frozen(dict):
    """A recorded entry (or other nested mapping) shared between ``_written`` and the copies handed to
    ``update``. Copying each of a long thread's entries for every write was a third of its cost, so they
    are shared instead, and changing one in place is refused: it would change what this process believes
    the file holds, and the change would never be written. Replace the entry instead."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a recorded metadata entry cannot be changed in place; replace it "
                        "(meta[key][i] = {...}) or the whole value instead")

    __setitem__ = __delitem__ = pop = popitem = setdefault = update = clear = __ior__ = _refuse  # type: ignore[assignment]

    def copy(self) -> dict:  # type: ignore[override]
        return _thaw(self)

    def __copy__(self) -> dict:
        return _thaw(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return _thaw(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (_thaw(self),))


class _FrozenList(list):
    """A list nested inside an entry, shared like ``_Frozen`` (and refused in-place changes likewise)."""

    __slots__ = ()
    _refuse = _Frozen._refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = clear = \
        sort = reverse = _refuse  # type: ignore[assignment]

    def copy(self) -> list:  # type: ignore[override]
        return _thaw(self)

    def __copy__(self) -> list:
        return _thaw(self)

    def __deepcopy__(self, memo: dict) -> list:
        return _thaw(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (_thaw(self),))


_IMMUTABLE = (str, int, float, bool, type(None), datetime.datetime, datetime.date, bytes)


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind in _IMMUTABLE or kind is _Frozen or kind is _FrozenList:
        return value
    if isinstance(value, dict):
        return _Frozen({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return _FrozenList(_freeze(v) for v in value)
    return copy.deepcopy(value)  # scalars: immutable (a datetime, a str…); anything else is copied


def _thaw(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_thaw(v) for v in value]
    return value


def _own(meta: dict, old: dict | None = None) -> dict:
    """This process's own copy of ``meta``: top-level lists hold frozen entries, other nested values are frozen.

    A value equal to the one in ``old`` (the previous copy) is taken from it, and a list that only grew
    freezes only its new entries, so keeping the copy costs what changed, not the block's size.
    """
    out: dict = {}
    for key, value in meta.items():
        prev = old.get(key) if old is not None else None
        if old is not None and key in old and value == prev:
            out[key] = prev
        elif type(value) is list:
            keep = len(prev) if _grown(prev, value) else 0
            out[key] = [*(prev[:keep] if keep else ()), *(_freeze(v) for v in value[keep:])]
        else:
            out[key] = _freeze(value)
    return out


def _working_copy(owned: dict) -> dict:
    """What ``update`` gets: its own top-level dict, lists and mappings (the entries in them are shared)."""
    out: dict = {}
    for key, value in owned.items():
        if type(value) is list:
            out[key] = list(value)
        elif type(value) is _Frozen:
            out[key] = dict(value)
        elif type(value) is _FrozenList:
            out[key] = list(value)
        else:
            out[key] = value
    return out


@dataclasses.dataclass
class _Known:
    data: bytes  # the whole file, as this process last wrote it (or read and verified it)
    thread: Thread  # the thread as it reads in ``data``; its metadata is owned (see ``_own``)
    block: _Block | None  # the block as this process rendered it, when it did


#: (archive's real path, title) -> what this process last wrote there. Recording a post re-reads the file
#: under the lock; when it still holds exactly those bytes, the thread is known without parsing the file
#: again (markdown-it and the YAML of every block: ~15 ms for a real archive, per post) and the block is
#: edited key by key (``_edit_block``). Any other byte content is parsed and verified in full.
_written: dict[tuple[str, str], _Known] = {}
#: threads remembered at most (each holds a copy of its file): a long-running publisher goes through many
_REMEMBERED = 16


def _remember(key: tuple[str, str], known: _Known) -> None:
    _written[key] = known  # (popped before use: the most recent is last)
    while len(_written) > _REMEMBERED:
        del _written[next(iter(_written))]


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


# --------------------------------------------------------------------------- writing beside an editor
#
# An editor does not take our lock. What is done without its cooperation:
#
# * The last look at the file comes after the temp file is written and fsynced, right before the rename,
#   and compares the file's *content* with the bytes the update was computed from. Inode, size and mtime
#   are not enough: an in-place save of the same length within one tick of the file system's clock keeps
#   all three (that lost 3 of 6 edits made every 10 ms during a real `post`).
# * The rename is an exchange where the file system has one (Linux renameat2 RENAME_EXCHANGE: ext4, xfs,
#   btrfs, tmpfs…): the archive's previous file is not unlinked but lands under the temp name, and is
#   compared once more. A save that landed between the last look and the rename (an editor renaming its
#   own temp file into place, or truncating and rewriting the file) is found there; the exchange is
#   undone, which puts the editor's file back, and the update is redone on top of it.
# * Without exchange, the archive is first hard-linked under a temp name, then replaced with os.replace,
#   and the replaced file is compared once more: a save into it (in place) is found and that file is
#   renamed back into place (where hard links are not supported either, it is only reported).
# * What remains, and no check can see without the editor's cooperation (a lock it honours): a write
#   into the old file, through a descriptor the editor opened before our rename, after that final
#   comparison without truncating it first; and, without exchange, a save by rename in the microseconds
#   between the last look and os.replace.


class _Conflict(Exception):
    """Someone else wrote the file during our write; what they saved is in the archive, ours is not."""


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Any:
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28, musl >= 1.2.4
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the files at ``a`` and ``b``; False when the system or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _read_all(fd: int) -> bytes:
    """The whole file behind ``fd`` from its start (pread: the descriptor's offset does not matter)."""
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, max(size - offset, 0) + 65536, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _write_temp(real: Path, data: bytes, mode_of: os.stat_result) -> tuple[Path, int]:
    """A fsynced temp file beside ``real`` holding ``data``, with ``real``'s mode (and owner, if allowed)."""
    tmp = real.parent / f"{_tmp_prefix(real)}{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), stat.S_IMODE(mode_of.st_mode))
            if hasattr(os, "fchown"):
                with contextlib.suppress(OSError):
                    os.fchown(f.fileno(), mode_of.st_uid, mode_of.st_gid)
            os.fsync(f.fileno())
            return tmp, os.fstat(f.fileno()).st_ino
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _replace_keeping_the_old(tmp: Path, real: Path, read_stat: os.stat_result, ours: int, old_fd: int,
                             expected: bytes) -> None:
    """os.replace for a file system without exchange, keeping the replaced file reachable (a hard link)
    until it is compared once more; a save into it (in place) puts it back, the file itself, so that
    what the editor writes next through its open handle lands in the archive too. Raises _Conflict then."""
    keep = real.parent / f"{_tmp_prefix(real)}{os.getpid()}.{secrets.token_hex(4)}.old{_TMP_SUFFIX}"
    try:
        os.link(real, keep)
    except OSError:  # no hard links here (some network and FUSE file systems): compare through old_fd only
        os.replace(tmp, real)
        if _read_all(old_fd) != expected:
            log.warning("%s: a save landed in the archive while crossposter replaced it, on a file system that "
                        "cannot keep the replaced file: check that your last edit is in the file", real)
        return
    try:
        if os.stat(keep).st_ino != read_stat.st_ino:  # replaced by rename since the last look
            raise _Conflict()
        os.replace(tmp, real)
        if _read_all(old_fd) != expected:  # saved in place into the file we replaced: put it back
            if os.stat(real).st_ino == ours:  # (unless yet another save replaced ours: that one is newest)
                os.replace(keep, real)
            raise _Conflict()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(keep)


def _atomic_write(real: Path, data: bytes, folder_fd: int, path: Path, read_stat: os.stat_result,
                  expected: bytes) -> None:
    """Write ``data`` over ``real`` atomically, if ``real`` still holds ``expected``; raises _Conflict if not.

    After a _Conflict the archive holds whatever the other writer saved (ours is gone): read it again.
    """
    tmp: Path | None = None
    old_fd = -1
    try:
        tmp, ours = _write_temp(real, data, read_stat)
        # The last look, as late as possible (see above): the same file, holding the same bytes.
        old_fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
        if os.fstat(old_fd).st_ino != read_stat.st_ino or _read_all(old_fd) != expected:
            raise _Conflict()
        if _exchange(tmp, real):
            # `tmp` now names the file that was the archive an instant ago: still the one we looked at?
            with open(tmp, "rb") as f:
                unchanged = os.fstat(f.fileno()).st_ino == read_stat.st_ino and f.read() == expected
            if not unchanged:  # a save landed in between: put it back (ours leaves with the temp name)
                _exchange(tmp, real)
                if os.stat(tmp).st_ino != ours:  # and yet another save replaced ours: that one is newest
                    _exchange(tmp, real)
                raise _Conflict()
        else:
            _replace_keeping_the_old(tmp, real, read_stat, ours, old_fd, expected)
            tmp = None
    except _Conflict:
        raise
    except BaseException as e:  # noqa: B036 - also on KeyboardInterrupt: never leave a temp file behind
        if isinstance(e, OSError):
            raise ArchiveError(path, None, f"could not write the archive ({e.strerror or e}); "
                                           "it is unchanged") from None
        raise
    finally:
        if old_fd >= 0:
            os.close(old_fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    try:
        os.fsync(folder_fd)  # makes the rename itself durable
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):  # some file systems cannot fsync a folder
            raise ArchiveError(path, None, f"the archive was written but the folder could not be synced "
                                           f"({e.strerror}); check the disk") from None


#: how long a read-modify-write is retried while another program keeps saving the file (seconds): a post
#: that is out but not recorded is the expensive outcome, so this is patient
PATIENCE = 30.0


def _next_save(real: Path, seen: tuple[int, int, int], wait: float = 0.1) -> None:
    """Wait (briefly) until the file changes again: an attempt started right after a save has the most
    time before the next one, which is what lets a write through beside an editor that saves every few ms."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            st = os.stat(real)
        except OSError:
            return
        if (st.st_ino, st.st_size, st.st_mtime_ns) != seen:
            return
        time.sleep(0.001)


def update_thread_metadata(path: Path, title: str, update: Callable[[dict], None]) -> dict:
    """Apply ``update`` to a copy of the thread's metadata and write it back (see module docstring).

    Returns the new metadata. Raises ArchiveError (file unreadable/not writable, thread missing or
    ambiguous, metadata not writable); in every error case the file is left untouched. ``update`` may be
    called more than once (on a fresh copy each time) if another program saves the file meanwhile, so it
    must only mutate the dict it is given: it may set, replace and delete keys, append to and replace
    items of its lists and mappings, but not change an entry inside a list in place (replace it instead;
    an in-place change raises TypeError).
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    key = (str(real), title)
    with _folder_lock(real.parent, path) as folder_fd:
        _remove_stale_temps(real)
        deadline = time.monotonic() + PATIENCE
        attempts = 0
        while True:
            attempts += 1
            if attempts > 1 and time.monotonic() > deadline:
                break
            try:
                with open(real, "rb") as f:
                    read_stat = os.fstat(f.fileno())
                    on_disk = f.read()
            except OSError as e:
                raise ArchiveError(path, None, f"cannot read the archive: {e.strerror or e}") from None
            data = on_disk
            known = _written.pop(key, None)
            if known is None or known.data != data:  # not (only) what this process wrote: read it afresh
                try:
                    thread = parse_archive(decode_archive(data, path), path).find(title)
                except ArchiveError:
                    if time.monotonic() < deadline and _changing(real, on_disk):
                        continue  # read half-way through an editor's save: look again
                    raise
                known = _Known(data, dataclasses.replace(thread, metadata=_own(thread.metadata)), None)
            thread = known.thread
            meta = _working_copy(thread.metadata)
            update(meta)
            if not isinstance(meta, dict):  # pragma: no cover - update mutates in place, but be sure
                raise ArchiveError(path, thread.line, "metadata update did not leave a mapping")
            if meta == thread.metadata:
                _remember(key, known)
                return meta
            # the owner's write bit is honoured even by root (the daemon's container runs as root)
            if not os.access(real, os.W_OK) or not read_stat.st_mode & stat.S_IWUSR:
                raise ArchiveError(path, None, "the archive is not writable; crossposter records post IDs "
                                               "in it (fix its permissions)")
            edited = _edit_block(data, thread, thread.metadata, known.block, meta, path) \
                if known.block is not None else None
            if edited is not None:
                new, written, block = edited
            else:
                try:
                    new, block = _replace_block(data, thread, meta)
                except ValueError as e:
                    raise ArchiveError(path, thread.line,
                                       f"cannot record metadata for {thread.title!r}: {e}") from None
                written = _verify(data, new, thread, meta, path)
            try:
                _atomic_write(real, new, folder_fd, path, read_stat, on_disk)
            except _Conflict:
                _next_save(real, (read_stat.st_ino, read_stat.st_size, read_stat.st_mtime_ns))
                time.sleep(random.uniform(0, 0.002))
                continue
            written = dataclasses.replace(written, metadata=_own(meta, thread.metadata))
            _remember(key, _Known(new, written, block))
            return meta
        raise ArchiveError(path, None, f"the archive kept changing while crossposter recorded into it "
                                       f"({attempts - 1} attempts in {PATIENCE:.0f} s); is an editor auto-saving it? "
                                       "Nothing was written")


def _changing(real: Path, seen: bytes) -> bool:
    """Whether the file no longer holds ``seen`` after a moment (someone is writing it)."""
    time.sleep(0.02)
    try:
        return real.read_bytes() != seen
    except OSError:
        return False


def rewrite_archive(path: Path, compute: Callable[[bytes | None], bytes | None]) -> bool:
    """Replace the archive with ``compute(its bytes)`` (``None`` when the file does not exist yet), under
    the same folder lock and with the same atomic, editor-aware write as ``update_thread_metadata``.

    For writers that change many sections at once (``crossposter backup`` appends whole batches of
    threads): one read-modify-write per batch instead of one per post. ``compute`` returns the new
    bytes, or ``None`` (or the same bytes) to leave the file as it is; it may run more than once
    (another program saved the file meanwhile) and must verify its own result (raise to write
    nothing). A missing file is created (mode 0666 less the umask, like an editor's new file), never
    over a file that appeared meanwhile. Returns whether anything was written.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArchiveError(path, None, f"cannot create the archive's folder {real.parent}: {e.strerror or e}") from None
    with _folder_lock(real.parent, path) as folder_fd:
        _remove_stale_temps(real)
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                with open(real, "rb") as f:
                    read_stat: os.stat_result | None = os.fstat(f.fileno())
                    on_disk: bytes | None = f.read()
            except FileNotFoundError:
                read_stat, on_disk = None, None
            except OSError as e:
                raise ArchiveError(path, None, f"cannot read the archive: {e.strerror or e}") from None
            new = compute(on_disk)
            if new is None or new == on_disk:
                return False
            if read_stat is None:
                if _create(real, new, folder_fd, path):
                    return True
            else:
                if not os.access(real, os.W_OK) or not read_stat.st_mode & stat.S_IWUSR:
                    raise ArchiveError(path, None, "the archive is not writable (fix its permissions)")
                assert on_disk is not None
                try:
                    _atomic_write(real, new, folder_fd, path, read_stat, on_disk)
                    return True
                except _Conflict:
                    _next_save(real, (read_stat.st_ino, read_stat.st_size, read_stat.st_mtime_ns))
            if time.monotonic() > deadline:
                raise ArchiveError(path, None, f"the archive kept changing while crossposter wrote to it for "
                                               f"{PATIENCE:.0f} s; is an editor auto-saving it? Nothing was written")
            time.sleep(random.uniform(0, 0.002))


def _create(real: Path, data: bytes, folder_fd: int, path: Path) -> bool:
    """A new archive holding ``data``, fsynced, linked into place only if no file appeared meanwhile."""
    tmp = real.parent / f"{_tmp_prefix(real)}{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, real)
        except FileExistsError:
            return False  # somebody made it meanwhile: read theirs and start again
        os.fsync(folder_fd)
        return True
    except OSError as e:
        raise ArchiveError(path, None, f"cannot create the archive: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def set_block(data: bytes, thread: Thread, meta: dict) -> bytes:
    """``data`` with ``thread``'s metadata block set to ``meta`` (same byte rules as every recording)."""
    return _replace_block(data, thread, meta)[0]


line_starts = _line_starts
default_eol = _default_eol


def line_end(data: bytes, starts: list[int], line: int) -> int:
    """Offset just after 1-based ``line``, its line ending included."""
    return _line_end(data, starts, line)


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
