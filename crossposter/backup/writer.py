"""Backed-up threads into an archive file: new sections at the end, later self-replies into their section.

The archive is the person's only copy of their writing, so a batch is one read-modify-write under
the archive lock (`metadata.rewrite_archive`, the same lock and editor-aware atomic replacement
every recording uses), computed from the bytes read *under that lock*:

* Nothing the person wrote changes. New sections are appended after the last byte of the file
  (a line ending and one blank line put in front when missing); a later self-reply is inserted
  after the last non-blank line of its section, after a `---` line, and its ID is added to that
  section's metadata block (only the block is re-rendered, as `post` does).
* A post whose ID the file already records (because an earlier run, another process or `post`
  itself wrote it) is not written again; the check is made again under the lock, so two backups
  racing each other cannot both add a thread.
* The result is parsed again before it is written: every old thread must read back with the same
  title, date and metadata (its body only extended where posts were appended), every new section
  as exactly the thread it was written for, with one `---` break between its posts. Otherwise
  nothing is written and the error says why (e.g. a file that ends inside an open code block,
  which would swallow everything appended after it).

One write per batch, never per post: a 10 MB archive is rewritten once per `batch_threads`
threads, not 10,000 times.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crossposter.archive import Archive, ArchiveError, Thread, decode_archive, parse_archive
from crossposter.backup.section import (
    Titles,
    append_posts_markdown,
    heading_for,
    recorded_entry,
    section_markdown,
)
from crossposter.backup.source import SourcePost, SourceThread

if TYPE_CHECKING:
    pass

__all__ = ["Append", "ArchiveWriter", "BatchResult", "WrittenReplies", "WrittenThread", "recorded_ids"]

MediaPath = Callable[[SourcePost, int], "str | None"]


def recorded_ids(archive: Archive, platform: str) -> dict[str, Thread]:
    """Every post ID of `platform` the archive records, and the thread that records it.

    Read through the validated block (`thread_meta`) so an ID recorded as a link counts; a block
    that does not validate is still read for whatever IDs it plainly holds: a broken block must
    not make a backup write its thread a second time.
    """
    from crossposter.thread_meta import MetadataError, of

    out: dict[str, Thread] = {}
    for thread in archive.threads:
        try:
            ids = [e.id for e in of(thread).recorded(platform)]
        except MetadataError:
            raw = thread.metadata.get(platform) if isinstance(thread.metadata, dict) else None
            ids = []
            for item in raw if isinstance(raw, list) else ():
                value = item.get("id") if isinstance(item, dict) else item
                if isinstance(value, str | int) and not isinstance(value, bool):
                    ids.append(str(value))
        for i in ids:
            out.setdefault(i, thread)
    return out


@dataclass
class Append:
    """Posts to add to the section that records `anchor` (the post the first of them replies to)."""

    anchor: str
    posts: list[SourcePost]


@dataclass
class WrittenThread:
    title: str
    archive: Path
    root_id: str
    newest: datetime  # created_at of its newest post
    post_ids: list[str]


@dataclass
class WrittenReplies:
    title: str
    archive: Path
    post_ids: list[str]


@dataclass
class BatchResult:
    threads: list[WrittenThread] = field(default_factory=list)
    replies: list[WrittenReplies] = field(default_factory=list)
    #: posts found already recorded in this file when it was written (another process was faster)
    already: int = 0
    #: appends whose section this file no longer has (moved or deleted meanwhile): not written
    unplaced: list[Append] = field(default_factory=list)
    written: bool = False


class ArchiveWriter:
    """Writes batches of one platform's backed-up threads into one archive file."""

    def __init__(self, path: Path, platform: str, *, timezone: str, title: str,
                 media_path: MediaPath, sha: Callable[[str], str]) -> None:
        self.path = Path(path)
        self.platform = platform
        self.timezone = timezone
        self.title = title  # the `# ` line of a file this creates
        self.media_path = media_path
        self.sha = sha
        #: the bytes this writer last wrote and their parse: the next batch of the run starts from them
        #: without parsing the file again (one parse per batch, the verification's)
        self._last: tuple[bytes, Archive, dict[str, Thread]] | None = None
        self._checked: tuple[bytes, Archive, dict[str, Thread]] | None = None

    @property
    def last(self) -> tuple[bytes, Archive, dict[str, Thread]] | None:
        """What this writer last wrote (or was told the file holds): its bytes, parse and recorded IDs."""
        return self._last

    def known(self, data: bytes, archive: Archive, index: dict[str, Thread] | None = None) -> None:
        """Tell the writer the file holds `data`, parsed as `archive` (the caller parsed it anyway)."""
        self._last = (data, archive, index if index is not None else recorded_ids(archive, self.platform))

    def write(self, threads: Iterable[SourceThread], appends: Iterable[Append], *,
              dry_run: bool = False, media_path: MediaPath | None = None) -> BatchResult:
        """Add `threads` (oldest first) and `appends`; one atomic write. A dry run reads and computes only."""
        if media_path is not None:
            self.media_path = media_path
        threads, appends = list(threads), list(appends)
        result = BatchResult()
        if not threads and not appends:
            return result

        def compute(data: bytes | None) -> bytes | None:
            nonlocal result
            result = BatchResult()  # computed afresh for each attempt: the file may have changed
            return self._compute(data, threads, appends, result)

        if dry_run:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                data = None
            except OSError as e:
                raise ArchiveError(self.path, None, f"cannot read the archive: {e.strerror or e}") from None
            compute(data)
            return result
        from crossposter.metadata import rewrite_archive

        written = rewrite_archive(self.path, compute)
        if written:
            self._last, self._checked = self._checked, None
        result.written = written  # (the result of the last `compute`: the one whose bytes are in the file)
        return result

    # ------------------------------------------------------------------ the bytes

    def _compute(self, data: bytes | None, threads: list[SourceThread], appends: list[Append],
                 result: BatchResult) -> bytes | None:
        from crossposter.metadata import default_eol, line_end, line_starts, render_block, set_block

        created = data is None
        if data is None:
            data = f"# {self.title}\n".encode()
        if self._last is not None and self._last[0] == data:
            _, archive, index = self._last
        else:
            archive = parse_archive(decode_archive(data, self.path), self.path)
            index = recorded_ids(archive, self.platform)
        eol = default_eol(data).decode()

        # Threads (partly) written meanwhile: their unrecorded posts go into the section that has the root.
        groups: dict[int, tuple[Thread, list[SourcePost]]] = {}  # by id() of the archive's Thread

        def add_to(section: Thread, post: SourcePost) -> None:
            groups.setdefault(id(section), (section, []))[1].append(post)

        fresh_threads: list[SourceThread] = []
        for t in threads:
            new_posts = [p for p in t.posts if p.id not in index]
            result.already += len(t.posts) - len(new_posts)
            if not new_posts:
                continue
            home = index.get(t.root.id)
            if home is not None:
                for p in new_posts:
                    add_to(home, p)
            else:
                fresh_threads.append(SourceThread(new_posts))
        for a in appends:
            section = index.get(a.anchor)
            if section is None:
                result.unplaced.append(a)
                continue
            for p in a.posts:
                if p.id in index:
                    result.already += 1
                else:
                    add_to(section, p)
        for _section, posts in groups.values():
            seen: set[str] = set()
            posts[:] = [p for p in sorted(posts, key=lambda q: (q.created_at, q.id))
                        if not (p.id in seen or seen.add(p.id))]

        if not fresh_threads and not groups:
            return None

        # Appends, from the last section to the first, so every earlier offset stays valid.
        expected: dict[int, tuple[dict, int]] = {}  # id(section) -> (metadata, posts appended)
        out = data
        for section, posts in sorted(groups.values(), key=lambda g: g[0].line, reverse=True):
            meta = copy.deepcopy(section.metadata) if isinstance(section.metadata, dict) else {}
            entries = meta.get(self.platform)
            if entries is None:
                entries = meta[self.platform] = []
            if not isinstance(entries, list):
                raise ArchiveError(self.path, section.block_line or section.line,
                                   f"thread {section.title!r}: its `{self.platform}:` entry is not a list, so the "
                                   f"backed-up replies {', '.join(p.id for p in posts)} cannot be recorded there; "
                                   "fix the block")
            entries.extend(recorded_entry(p, self.sha) for p in posts)
            starts = line_starts(out)
            last = section.end_line
            while last > section.line and not out[starts[last - 1]:line_end(out, starts, last)].strip():
                last -= 1
            at = line_end(out, starts, last)
            text = append_posts_markdown(posts, self.media_path, eol)
            if at == len(out) and not out.endswith(b"\n"):
                text = eol + text
            out = out[:at] + text.encode("utf-8") + out[at:]
            out = set_block(out, section, meta)
            expected[id(section)] = (meta, len(posts))
            result.replies.append(WrittenReplies(section.title, self.path, [p.id for p in posts]))
        result.replies.reverse()

        # New sections at the very end.
        if fresh_threads:
            taken = Titles(t.title for t in archive.threads)
            parts: list[str] = []
            if out and not out.endswith(b"\n"):
                parts.append(eol)
            if out.strip() and not (out.endswith(b"\n\n") or out.endswith(b"\r\n\r\n")):
                parts.append(eol)
            for i, t in enumerate(fresh_threads):
                title = heading_for(t.root, taken, self.timezone)
                taken.add(title)
                meta = {"source": self.platform, self.platform: [recorded_entry(p, self.sha) for p in t.posts]}
                try:
                    # (section_markdown gives it the file's line endings; `_verify` loads it back and compares)
                    block = render_block(meta, round_trip=False)
                except ValueError as e:
                    raise ArchiveError(self.path, None, f"cannot record the IDs of {t.root.url}: {e}") from None
                if i:
                    parts.append(eol)
                parts.append(section_markdown(t, title, self.timezone, block, self.media_path, eol))
                result.threads.append(WrittenThread(title, self.path, t.root.id, max(p.created_at for p in t.posts),
                                                    t.ids))
            out = out + "".join(parts).encode("utf-8")
        first = min([g[0].line for g in groups.values()] + ([archive.threads[-1].line] if archive.threads else [1]))
        self._verify(archive, index, data, out, first, expected, fresh_threads, result)
        return out if (out != data or created) else None

    def _verify(self, old_archive: Archive, old_index: dict[str, Thread], data: bytes, new: bytes, first: int,
                expected: dict[int, tuple[dict, int]], fresh: list[SourceThread], result: BatchResult) -> None:
        """Parse what is about to be written; any surprise stops the write (see the module docstring).

        Only the file from line `first` (the first section that changes) is parsed again: the bytes
        before it are checked to be identical, and a top-level heading starts afresh in Markdown, so
        the sections from there on read the same alone as in the whole file (as `metadata` verifies).
        """
        from crossposter.metadata import line_starts

        def fail(message: str) -> None:
            raise ArchiveError(self.path, None, f"the backup would not read back as written ({message}); nothing "
                                                "was written")

        if first > 1 and not any(t.line == first for t in old_archive.threads):
            first = 1  # (never: `first` is a section's heading line)
        offset = line_starts(data)[first - 1] if first > 1 else 0
        if new[:offset] != data[:offset]:
            fail("bytes before the changed sections would change")
        keep = [t for t in old_archive.threads if t.line < first]
        old = Archive(old_archive.path, [t for t in old_archive.threads if t.line >= first])
        tail = parse_archive(decode_archive(new[offset:], self.path), self.path)
        shift = first - 1
        now = Archive(self.path, [dataclasses.replace(
            t, line=t.line + shift, end_line=t.end_line + shift, body_line=t.body_line + shift,
            heading_end_line=t.heading_end_line + shift,
            block_line=None if t.block_line is None else t.block_line + shift,
            block_end_line=None if t.block_end_line is None else t.block_end_line + shift,
            path=old_archive.path) for t in tail.threads])
        if len(now.threads) != len(old.threads) + len(fresh):
            fail(f"the file would have {len(keep) + len(now.threads)} sections instead of "
                 f"{len(old_archive.threads) + len(fresh)}: does it end inside an open code block or HTML block? "
                 "close it")
        for added in now.threads[len(old.threads):]:
            if added.errors:  # e.g. after a code block the file never closes: Markdown viewers would hide it
                fail(f"the new section {added.title!r} would read with an error (an earlier section leaves a code "
                     f"block or HTML block open, which would swallow it); `crossposter preview {self.path}` shows "
                     "the line: close the block and run the backup again")
        parsed = {id(t): (tail, tt) for t, tt in zip(now.threads, tail.threads, strict=True)}
        parsed.update((id(t), (old_archive, t)) for t in old.threads)

        def breaks(thread: Thread) -> int:
            """Top-level `---` breaks of `thread`, from the parse already made (not one parse per section)."""
            archive, parsed_thread = parsed[id(thread)]
            return sum(1 for tok in archive.body_tokens(parsed_thread, inline=False)
                       if tok.type == "hr" and tok.level == 0)

        for before, after in zip(old.threads, now.threads, strict=False):
            if (before.title, before.date) != (after.title, after.date):
                fail(f"section {before.title!r} at line {before.line} would change its heading or date")
            meta, n = expected.get(id(before), (before.metadata, 0))
            if after.metadata != meta:
                fail(f"section {before.title!r} would not record the expected IDs")
            if n == 0:
                # (the last old section may gain the blank line put before the first new one)
                if after.body.rstrip("\n") != before.body.rstrip("\n"):
                    fail(f"section {before.title!r} would change")
            elif not after.body.startswith(before.body.rstrip("\n")) or \
                    breaks(after) < breaks(before) + n:
                fail(f"the replies appended to {before.title!r} would not be separate posts (does the section end "
                     "inside an open code block or HTML block?)")
        for t, written, after in zip(fresh, result.threads, now.threads[len(old.threads):], strict=True):
            meta = {"source": self.platform, self.platform: [recorded_entry(p, self.sha) for p in t.posts]}
            if after.title != written.title or after.metadata != meta:
                fail(f"the new section {written.title!r} would read back as {after.title!r}")
            if breaks(after) != len(t.posts) - 1:
                fail(f"the posts of the new section {written.title!r} would not read back as {len(t.posts)} posts")
        index = {i: t for i, t in old_index.items() if t.line < first}
        index.update(recorded_ids(now, self.platform))
        self._checked = (new, Archive(old_archive.path, keep + now.threads), index)
