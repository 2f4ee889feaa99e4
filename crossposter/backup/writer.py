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

The verification need not wait for the batch: `ArchiveWriter.prepare` renders a new thread's section
and parses it (followed by a `##` line) while the account is still being read, and the batch that
writes the very same section takes that parse instead of parsing it again (see `prepare`).
`prepare_many` does it for many sections in one parse, and changes nothing in the writer, so that
forked processes can run it (`prepare_pool`) and hand the sections over with `keep`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crossposter.archive import Archive, ArchiveError, BlockDict, Thread, decode_archive, parse_archive
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

__all__ = ["Append", "ArchiveWriter", "BatchResult", "Prepared", "WrittenReplies", "WrittenThread", "recorded_ids"]

MediaPath = Callable[[SourcePost, int], "str | None"]

#: the heading put after a piece of the file parsed on its own: it must read back as a thread of its own,
#: which shows that the piece leaves no block open (a code block or HTML block would swallow it)
_SENTINEL = "crossposter verification: the next section starts here"


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


@dataclass(frozen=True)
class Prepared:
    """A new section rendered and parsed ahead of its batch (`ArchiveWriter.prepare`).

    `thread` is the section as read from its bytes followed by a `##` line, exactly what follows a
    section that is not the file's last (lines counted from 1), `breaks` its top-level `---` lines.
    The parse's tokens are not kept: thousands of prepared sections would hold them all until the end.
    """

    posts: tuple[SourcePost, ...]
    media: tuple[str | None, ...]  # the media paths it links, post by post
    title: str
    data: bytes  # the section (`\n` line endings) and the blank line after it, encoded
    thread: Thread
    breaks: int


@dataclass
class BatchResult:
    threads: list[WrittenThread] = field(default_factory=list)
    replies: list[WrittenReplies] = field(default_factory=list)
    #: posts found already recorded in this file when it was written (another process was faster)
    already: int = 0
    #: appends whose section this file no longer has (moved or deleted meanwhile): not written
    unplaced: list[Append] = field(default_factory=list)
    written: bool = False
    #: new sections taken as `prepare` rendered and parsed them
    prepared: int = 0


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
        #: the headings of `_last`'s archive (and of `_checked`'s), kept so a batch does not fold them all again
        self._titles: tuple[Archive, Titles] | None = None
        self._checked_titles: tuple[Archive, Titles] | None = None
        #: sections `prepare` made, by the ID of their first post
        self._prepared: dict[str, Prepared] = {}

    @property
    def last(self) -> tuple[bytes, Archive, dict[str, Thread]] | None:
        """What this writer last wrote (or was told the file holds): its bytes, parse and recorded IDs."""
        return self._last

    def known(self, data: bytes, archive: Archive, index: dict[str, Thread] | None = None) -> None:
        """Tell the writer the file holds `data`, parsed as `archive` (the caller parsed it anyway)."""
        self._last = (data, archive, index if index is not None else recorded_ids(archive, self.platform))

    def prepare(self, thread: SourceThread, media_path: MediaPath) -> bool:
        """Render `thread` as a new section and parse it, ahead of the batch that writes it; safe from any thread.

        Called while the account is still being read (the reading mostly waits for the network), so the
        batch does less after the last page. The batch takes the prepared section only when it would write
        the very same bytes (the same post objects, media paths and heading, `\n` line endings) at a place
        that is not the end of the file; it still checks the prepared parse as it checks its own, and the
        bytes around it are parsed as before. Why the parse of the section alone holds in the file: a `##`
        line at the start of a line starts a new section whatever came before, unless a code block or HTML
        block is still open; the sentinel heading after the section reads back as a heading only when the
        section leaves none open, and the text before the section is checked the same way. Returns whether
        the section was kept (it is not when it would not read back, which the batch then reports).
        """
        prep = self.prepare_many([thread], media_path)[0]
        if prep is not None:
            self.keep(prep)
        return prep is not None

    def keep(self, prep: Prepared) -> None:
        """Hold a section `prepare_many` made (e.g. in another process) for the batch that writes it."""
        self._prepared[prep.posts[0].id] = prep

    def prepare_many(self, threads: Sequence[SourceThread], media_path: MediaPath) -> list[Prepared | None]:
        """`prepare` for many threads, in one parse; changes nothing in the writer (a forked worker runs it).

        The sections are parsed one after the other, followed by the sentinel: each one's next `##` line
        (the next section's, or the sentinel) must read back as a heading at the line it was written on,
        which is the same check as one parse per section with the sentinel after each (a `##` line starts
        a new section unless a block is still open), at a fraction of the cost. Each section comes back
        with its lines counted from its own first line, as a parse of it alone gives them. When the whole
        does not read back, each section is parsed on its own, so one bad section spoils only itself.
        """
        from crossposter.metadata import render_block

        rendered: list[tuple[tuple[SourcePost, ...], tuple[str | None, ...], str, dict, str] | None] = []
        for thread in threads:
            posts = tuple(thread.posts)
            media = tuple(media_path(p, i) for p in posts for i in range(len(p.media)))
            title = heading_for(thread.root, Titles(), self.timezone)
            meta = {"source": self.platform, self.platform: [recorded_entry(p, self.sha) for p in posts]}
            try:
                block = render_block(meta, round_trip=False)
                text = section_markdown(thread, title, self.timezone, block, media_path, "\n")
            except ValueError:
                rendered.append(None)
                continue
            rendered.append((posts, media, title, meta, text))
        todo = [r for r in rendered if r is not None]
        checked = self._parsed_together(todo) if len(todo) > 1 else None
        if checked is None:
            checked = [p for r in todo for p in (self._parsed_together([r]) or [None])]
        done = iter(checked)
        return [None if r is None else next(done) for r in rendered]

    def _parsed_together(self, rendered: list[tuple[tuple[SourcePost, ...], tuple[str | None, ...], str, dict, str]]
                         ) -> list[Prepared | None] | None:
        """The sections parsed as one text with the sentinel after it; None when its headings do not all
        read back where they were written (an open block swallowed one)."""
        starts: list[int] = []  # 1-based line where each section starts in the joined text
        line = 1
        for *_, text in rendered:
            starts.append(line)
            line += text.count("\n") + 1  # (and the blank line after it)
        joined = "".join(text + "\n" for *_, text in rendered) + f"## {_SENTINEL}\n"
        try:
            archive = parse_archive(joined, self.path)
        except ArchiveError:
            return None
        *sections, sentinel = archive.threads or [None]
        if sentinel is None or len(sections) != len(rendered) or sentinel.title != _SENTINEL \
                or sentinel.line != line or sentinel.errors \
                or any(s.line != at for s, at in zip(sections, starts, strict=True)):
            return None
        out: list[Prepared | None] = []
        for (posts, media, title, meta, text), section, at in zip(rendered, sections, starts, strict=True):
            breaks = _breaks(archive, section)
            if section.errors or section.title != title or section.metadata != meta or breaks != len(posts) - 1:
                out.append(None)
                continue
            out.append(Prepared(posts, media, title, (text + "\n").encode(), _moved(section, 1 - at), breaks))
        return out

    def _reusable(self, thread: SourceThread, title: str, eol: str) -> Prepared | None:
        prep = self._prepared.pop(thread.root.id, None)  # (taken once: its memory goes with the batch)
        if prep is None or eol != "\n" or prep.title != title or len(prep.posts) != len(thread.posts) \
                or not all(a is b for a, b in zip(prep.posts, thread.posts, strict=True)):
            return None
        media = tuple(self.media_path(p, i) for p in thread.posts for i in range(len(p.media)))
        return prep if media == prep.media else None

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
            self._titles, self._checked_titles = self._checked_titles, None
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
        fresh_at: list[tuple[int, Prepared | None]] = []  # where each new section starts in `out`; its parse
        if fresh_threads:
            if self._titles is not None and self._titles[0] is archive:
                taken = Titles()
                set.update(taken, self._titles[1])  # (folded already)
            else:
                taken = Titles(t.title for t in archive.threads)
            parts: list[bytes] = []
            if out and not out.endswith(b"\n"):
                parts.append(eol.encode())
            if out.strip() and not (out.endswith(b"\n\n") or out.endswith(b"\r\n\r\n")):
                parts.append(eol.encode())
            at = len(out) + sum(map(len, parts))
            for i, t in enumerate(fresh_threads):
                held = self._prepared.get(t.root.id)
                if held is not None and held.posts[0] is t.root and held.title not in taken:
                    title = held.title  # (what `heading_for` gives: it was made from this very post, none taken)
                else:
                    title = heading_for(t.root, taken, self.timezone)
                taken.add(title)
                last = i == len(fresh_threads) - 1  # (at the end of the file it reads without the sentinel)
                prep = None if last else self._reusable(t, title, eol)
                if prep is not None:
                    piece = prep.data
                    result.prepared += 1
                else:
                    meta = {"source": self.platform, self.platform: [recorded_entry(p, self.sha) for p in t.posts]}
                    try:
                        # (section_markdown gives it the file's line endings; `_verify` loads it back and compares)
                        block = render_block(meta, round_trip=False)
                    except ValueError as e:
                        raise ArchiveError(self.path, None, f"cannot record the IDs of {t.root.url}: {e}") from None
                    piece = section_markdown(t, title, self.timezone, block, self.media_path, eol).encode("utf-8")
                    if not last:
                        piece += eol.encode()
                fresh_at.append((at, prep))
                parts.append(piece)
                at += len(piece)
                result.threads.append(WrittenThread(title, self.path, t.root.id, max(p.created_at for p in t.posts),
                                                    t.ids))
            out = out + b"".join(parts)
        first = min([g[0].line for g in groups.values()] + ([archive.threads[-1].line] if archive.threads else [1]))
        self._checked_titles = None
        self._verify(archive, index, data, out, first, expected, fresh_threads, result, fresh_at)
        if fresh_threads:  # (the new file's headings: the old ones, checked unchanged, and the new ones, checked)
            assert self._checked is not None
            self._checked_titles = (self._checked[1], taken)
        return out if (out != data or created) else None

    def _verify(self, old_archive: Archive, old_index: dict[str, Thread], data: bytes, new: bytes, first: int,
                expected: dict[int, tuple[dict, int]], fresh: list[SourceThread], result: BatchResult,
                fresh_at: list[tuple[int, Prepared | None]]) -> None:
        """Parse what is about to be written; any surprise stops the write (see the module docstring).

        Only the file from line `first` (the first section that changes) is parsed again: the bytes
        before it are checked to be identical, and a top-level heading starts afresh in Markdown, so
        the sections from there on read the same alone as in the whole file (as `metadata` verifies).
        New sections `prepare` parsed already are not parsed again: the text between them is parsed
        on its own, followed by a `##` line that must read back as a heading (see `prepare`).
        """
        def fail(message: str) -> None:
            raise ArchiveError(self.path, None, f"the backup would not read back as written ({message}); nothing "
                                                "was written")

        if first > 1 and not any(t.line == first for t in old_archive.threads):
            first = 1  # (never: `first` is a section's heading line)
        offset = _line_offset(data, first)
        if new[:offset] != data[:offset]:
            fail("bytes before the changed sections would change")
        keep = [t for t in old_archive.threads if t.line < first]
        old = Archive(old_archive.path, [t for t in old_archive.threads if t.line >= first])
        # The pieces from `offset` on: runs parsed here, and sections prepared (never the last one).
        pieces: list[tuple[int, int, Prepared | None]] = []
        pos = offset
        for k, (at, prep) in enumerate(fresh_at):
            if prep is None:
                continue
            end = fresh_at[k + 1][0]
            if new[at:end] != prep.data:
                fail(f"the new section {prep.title!r} is not the one prepared")  # (never: `_compute` put it there)
            if at > pos:
                pieces.append((pos, at, None))
            pieces.append((at, end, prep))
            pos = end
        pieces.append((pos, len(new), None))
        parsed: dict[int, tuple[Archive, Thread]] = {}
        prepared_breaks: dict[int, int] = {}
        shifted: list[Thread] = []
        line = first  # the file line where the piece starts
        for start, end, prep in pieces:
            piece_archive: Archive | None = None
            if prep is not None:
                piece_threads = [prep.thread]
            else:
                text = decode_archive(new[start:end], self.path)
                if end < len(new):  # (a piece ends with the blank line before the next section)
                    text += f"## {_SENTINEL}\n"
                piece_archive = parse_archive(text, self.path)
                piece_threads = piece_archive.threads
                if end < len(new):
                    sentinel = piece_threads[-1] if piece_threads else None
                    if sentinel is None or sentinel.title != _SENTINEL or sentinel.errors or \
                            sentinel.line != new.count(b"\n", start, end) + 1:
                        fail("a new section would not start a section of its own: does the file end inside an "
                             "open code block or HTML block? close it")
                    piece_threads = piece_threads[:-1]
            shift = line - 1
            for t in piece_threads:
                moved = _shifted(t, shift, old_archive.path)
                if prep is not None:
                    prepared_breaks[id(moved)] = prep.breaks
                elif piece_archive is not None:
                    parsed[id(moved)] = (piece_archive, t)
                shifted.append(moved)
            line += new.count(b"\n", start, end)
        now = Archive(self.path, shifted)
        if len(now.threads) != len(old.threads) + len(fresh):
            fail(f"the file would have {len(keep) + len(now.threads)} sections instead of "
                 f"{len(old_archive.threads) + len(fresh)}: does it end inside an open code block or HTML block? "
                 "close it")
        for added in now.threads[len(old.threads):]:
            if added.errors:  # e.g. after a code block the file never closes: Markdown viewers would hide it
                fail(f"the new section {added.title!r} would read with an error (an earlier section leaves a code "
                     f"block or HTML block open, which would swallow it); `crossposter preview {self.path}` shows "
                     "the line: close the block and run the backup again")
        parsed.update((id(t), (old_archive, t)) for t in old.threads)

        def breaks(thread: Thread) -> int:
            known = prepared_breaks.get(id(thread))
            return known if known is not None else _breaks(*parsed[id(thread)])

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
        index.update(recorded_ids(Archive(self.path, now.threads[:len(old.threads)]), self.platform))
        for t, after in zip(fresh, now.threads[len(old.threads):], strict=True):
            # (its block was just compared with these very entries: `recorded_ids` would read the same IDs)
            for p in t.posts:
                index.setdefault(p.id, after)
        self._checked = (new, Archive(old_archive.path, keep + now.threads), index)


def _breaks(archive: Archive, thread: Thread) -> int:
    """Top-level `---` breaks of `thread`, from the parse already made (not one parse per section)."""
    return sum(1 for tok in archive.body_tokens(thread, inline=False) if tok.type == "hr" and tok.level == 0)


def _line_offset(data: bytes, line: int) -> int:
    """Where 1-based `line` starts in `data`: counted from the nearer end (the changed part is near the end)."""
    if line <= 1:
        return 0
    total = data.count(b"\n") + 1  # (lines, counting a last one without line ending, or an empty one)
    if line - 1 <= total - line:
        pos = -1
        for _ in range(line - 1):
            pos = data.find(b"\n", pos + 1)
        return pos + 1
    pos = len(data)
    for _ in range(total - line + 1):
        pos = data.rfind(b"\n", 0, pos)
    return pos + 1


def _shifted(thread: Thread, shift: int, path: Path | None) -> Thread:
    """`thread` as read at `shift` lines further down, in `path` (a copy: `dataclasses.replace` costs more)."""
    moved = copy.copy(thread)
    moved.line += shift
    moved.end_line += shift
    moved.body_line += shift
    moved.heading_end_line += shift
    if moved.block_line is not None:
        moved.block_line += shift
    if moved.block_end_line is not None:
        moved.block_end_line += shift
    moved.path = path
    return moved


def _moved(thread: Thread, shift: int) -> Thread:
    """`thread` with its lines moved by `shift` (its block's first line too), without its token range."""
    metadata = thread.metadata
    if shift and isinstance(metadata, BlockDict) and metadata.first_line:
        metadata = copy.copy(metadata)  # (its attributes too: the YAML text, for error lines)
        metadata.first_line += shift
    return dataclasses.replace(
        thread, line=thread.line + shift, end_line=thread.end_line + shift, body_line=thread.body_line + shift,
        heading_end_line=thread.heading_end_line + shift,
        block_line=None if thread.block_line is None else thread.block_line + shift,
        block_end_line=None if thread.block_end_line is None else thread.block_end_line + shift,
        metadata=metadata, _token_range=None)
