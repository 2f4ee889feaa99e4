"""Read a Markdown thread archive into threads, without ever losing track of source lines.

The archive is the user's own file and the source of truth, so reading must be
forgiving about encoding details (BOM, CRLF, no final newline) but strict about
anything that would make us post the wrong thing: malformed metadata or bytes
that are not UTF-8 stop with an error naming the file and line.

Structure comes from markdown-it-py tokens, never from regexes over the raw
Markdown, so a ``## `` inside a fenced code block or an HTML block is not a
thread. The whole file is block-parsed exactly once (inline parsing disabled:
it is the expensive half and only headings matter here); sections are line
slices of that parse. ``Archive.body_tokens`` finishes the inline parse for
one thread on demand so a renderer never has to parse the file a second time.

``Thread.body`` is the exact text from the first line after the heading,
metadata block and date line (blank lines skipped) up to the next ``#``/``##``
heading, with ``\\r\\n`` turned into ``\\n`` and nothing else changed, so body
line k is file line ``body_line + k``.

Lines are counted on ``\\n`` only (``\\r\\n`` is one line ending; a lone ``\\r``
is ordinary text), as ``grep -n`` and editors in Unix mode do.
"""

from __future__ import annotations

import gc
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.markdown_dialect import (
    LAYOUT_KEY,
    Extend,
    Layout,
    block_parser,
    markdown_parser,
)
from crossposter.model import Diagnostic

if TYPE_CHECKING:
    from markdown_it.token import Token

__all__ = ["ArchiveError", "Thread", "Archive", "find_thread", "read_archive", "read_archive_parts", "parse_archive",
           "parse_archive_parts", "decode_archive", "read_archive_bytes", "BLOCK_OPEN", "BLOCK_CLOSE",
           "MAX_ARCHIVE_BYTES", "markdown_parser"]

#: The largest archive crossposter reads (64 MiB). Reading is linear, but a thread archive this big is
#: already ~20 years of daily threads; a larger file is far more likely a mistake (a device, a log, a
#: binary), and every reader (`status`, `check`, the daemon) holds one archive's parse in memory.
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024

#: Characters of Markdown parsed at a time: the file is parsed in slices that end at `#`/`##` headings, so
#: the tokens of one slice at a time are enough for a streamed preview (memory stays a small multiple of the
#: file, not of its token list, ~20 times the file).
_CHUNK_CHARS = 1 << 17

BLOCK_OPEN = "<!-- crossposter"
BLOCK_CLOSE = "-->"
_BOM = "\ufeff"

#: A line that is only the thread's original date (optionally with time).
_DATE_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T]([0-9]{2}:[0-9]{2}(?::[0-9]{2})?))?")

_LIST_TOKENS = frozenset({"bullet_list_open", "bullet_list_close", "ordered_list_open", "ordered_list_close",
                          "list_item_open", "list_item_close", "paragraph_open", "paragraph_close", "inline"})


class ArchiveError(Exception):
    """A problem with an archive file the user has to fix; ``str()`` is ``path:line: message``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes (multiprocessing, executors)
        return (ArchiveError, (self.path, self.line, self.message))


class BlockDict(dict):
    """A block's mapping as read from the archive, with its YAML text to find a key's line on error.

    Made here, where the block is read, and judged by `thread_meta` (which imports this module: defined
    there, the two modules would import each other)."""

    source: str = ""
    first_line: int = 0  # 1-based file line of the `<!-- crossposter` line (YAML line 0)


@dataclass
class Thread:
    """One ``##`` section. Fields after ``skipped`` are extensions (all defaulted)."""

    title: str
    line: int
    end_line: int
    date: str | None
    metadata: dict
    body: str
    body_line: int
    skipped: str | None
    #: last line of the heading (differs from ``line`` for multi-line setext headings)
    heading_end_line: int = 0
    #: first and last line of the ``<!-- crossposter`` block, when there is one
    block_line: int | None = None
    block_end_line: int | None = None
    #: the archive file this thread was read from
    path: Path | None = field(default=None, repr=False)
    #: what is wrong with the thread as read (a NUL byte; a heading CommonMark would hide inside an unclosed
    #: block before it), and what is worth knowing (a closed comment hiding heading lines)
    errors: list[Diagnostic] = field(default_factory=list, repr=False, compare=False)
    warnings: list[Diagnostic] = field(default_factory=list, repr=False, compare=False)
    #: (slice, first token, stop token) of the section in the archive's block parse (internal)
    _token_range: tuple[int, int, int] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """Stable identity for idempotency keys and locks: renaming the file or the heading makes a new one."""
        name = self.path.name if self.path is not None else ""
        return f"{name}::{self.title}"


def _norm_title(title: str) -> str:
    return " ".join(title.split()).casefold()


def unknown_title(title: str, titles: list[str]) -> str:
    """"No thread titled …": the nearest title first (a typo is the usual cause), then the titles there are."""
    import difflib

    by_norm = {_norm_title(t): t for t in titles}
    near = difflib.get_close_matches(_norm_title(title), list(by_norm), n=1, cutoff=0.5)
    hint = f" (did you mean {by_norm[near[0]]!r}?)" if near else ""
    shown = [repr(t) for t in titles[:20]]
    if len(titles) > 20:
        shown.append(f"… and {len(titles) - 20} more")
    listed = "; ".join(shown) or "(none: the file has no `##` headings)"
    return f"no thread titled {title!r}{hint}; the threads are: {listed}"


def find_thread(threads: list[Thread], title: str, path: Path | str) -> Thread:
    """`Archive.find` over `threads` (errors name `path`)."""
    exact = [t for t in threads if t.title == title]
    if len(exact) == 1:
        return exact[0]
    if not exact:
        wanted = _norm_title(title)
        exact = [t for t in threads if _norm_title(t.title) == wanted]
        if len(exact) == 1:
            return exact[0]
    if exact:
        lines = ", ".join(str(t.line) for t in exact)
        raise ArchiveError(path, None, f"thread title {title!r} is ambiguous: headings at lines {lines}; "
                                       "rename one of them so each `##` heading is unique")
    raise ArchiveError(path, None, unknown_title(title, [t.title for t in threads]))


@dataclass
class Archive:
    path: Path
    threads: list[Thread]
    _chunks: dict[int, list[Token]] = field(default_factory=dict, repr=False, compare=False)  # block tokens
    _env: dict | None = field(default=None, repr=False, compare=False)
    _body_cache: dict[int, list[Token]] = field(default_factory=dict, repr=False, compare=False)
    _positions: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    _inlined: set[int] = field(default_factory=set, repr=False, compare=False)  # threads, by id
    _parsed: set[int] = field(default_factory=set, repr=False, compare=False)  # inline tokens, by id

    def find(self, title: str) -> Thread:
        """The thread with this heading; exact match first, then ignoring case and spacing if unique.

        Ambiguity is an error rather than "first wins" because the answer decides
        which thread gets posted and where IDs are written.
        """
        return find_thread(self.threads, title, self.path)

    def body_tokens(self, thread: Thread, *, inline: bool = True) -> list[Token]:
        """markdown-it tokens (block and inline) of ``thread.body``, from the one parse of the file.

        Token ``map`` values are relative to the body, exactly as ``MarkdownIt("commonmark").parse(thread.body)``
        would give them (file line = ``thread.body_line + map[0]``). Reference definitions anywhere in the
        file resolve, as in any Markdown viewer. The list is cached and shared: do not mutate it.

        ``inline=False`` skips the inline parse (the costlier half): ``inline_children`` parses one inline
        token's children when they are needed. The renderer reads most paragraphs straight from their
        content instead (plain text has nothing for the inline rules to find).
        """
        key = id(thread)
        tokens = self._body_cache.get(key)
        if tokens is None:
            tokens = self._slice_body(thread)
            if tokens is None:  # the body's first block starts on a metadata line: parse the body on its own
                env = {k: v for k, v in (self._env or {}).items() if k != LAYOUT_KEY}
                tokens = markdown_parser().parse(thread.body, env)
                self._inlined.add(key)
            else:
                shift = thread.body_line - 1
                # a list's map in the file parse may run over trailing blank lines: clamp to the body's lines
                n = thread.body.count("\n") + (0 if thread.body.endswith("\n") else 1)
                for tok in tokens:
                    if tok.map is not None:
                        tok.map = [tok.map[0] - shift, min(tok.map[1] - shift, n)]
            self._body_cache[key] = tokens
        if inline and key not in self._inlined:
            self._parse_inline([tok for tok in tokens if tok.type == "inline"])
            self._inlined.add(key)
        return tokens

    def release(self, thread: Thread) -> None:
        """Forget `thread`'s tokens (block and inline): a reader that visits each thread once (the streamed
        preview) keeps memory for the threads still to come only. `body_tokens` of it parses its body again."""
        key = id(thread)
        tokens = self._body_cache.pop(key, None)
        self._inlined.discard(key)
        for tok in tokens or ():
            if tok.children:
                self._parsed.discard(id(tok))
                tok.children = None
        if thread._token_range is not None and self._positions.get(key) is not None:
            chunk, start, stop = thread._token_range
            listed = self._chunks.get(chunk)
            if listed is not None:
                listed[start:stop] = [None] * (stop - start)  # type: ignore[list-item]
            thread._token_range = None

    def inline_children(self, token: Token) -> list[Token]:
        """The children of an ``inline`` token from ``body_tokens(thread, inline=False)``, parsed on first use."""
        if id(token) not in self._parsed:
            self._parse_inline([token])
        return token.children or []

    def _parse_inline(self, tokens: list[Token]) -> None:
        """Parse the inline tokens not parsed yet (the block-only parse leaves their children empty)."""
        todo = [tok for tok in tokens if id(tok) not in self._parsed]
        if todo:
            _finish_inline(todo, self._env if self._env is not None else {})
            self._parsed.update(map(id, todo))

    def _slice_body(self, thread: Thread) -> list[Token] | None:
        """The block tokens of the body, or None when the body does not start on a block boundary."""
        pos = self._positions.get(id(thread))
        if thread._token_range is None or pos is None or self.threads[pos] is not thread:
            return None  # not a thread of this parse: its token range would point elsewhere
        chunk, start, stop = thread._token_range
        tokens = self._chunks.get(chunk)
        if tokens is None:
            return None
        first = thread.body_line - 1  # 0-based
        for i in range(start, stop):
            tok = tokens[i]
            if tok.level != 0 or tok.map is None:
                continue
            if tok.map[0] >= first:
                return tokens[i:stop]
            if tok.map[1] > first:
                return None  # a block straddles the metadata and the body
        return []


@contextmanager
def _no_gc() -> Iterator[None]:
    """No cyclic garbage collection while markdown-it builds the token list.

    A big archive makes ~5 container objects per token (token, attrs, meta, map...), none of them in a
    reference cycle, and all of them kept: the collector's passes over them during the parse find nothing
    and cost about a quarter of the parse. Collection resumes (if it was on) as soon as the parse is done.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _finish_inline(tokens: list[Token], env: dict) -> None:
    """Run the core rules the block-only parse skipped (inline, text_join) over a token slice."""
    from markdown_it.rules_core import StateCore

    md = markdown_parser()
    state = StateCore("", md, env, tokens)
    for rule in md.core.ruler.getRules(""):
        if rule.__name__ not in ("normalize", "block"):
            rule(state)


def decode_archive(data: bytes, path: Path | str) -> str:
    """UTF-8 text without BOM; a clear error with the line of the first bad byte otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ArchiveError(path, line, f"not valid UTF-8 (byte 0x{data[e.start]:02x} at column {col}); "
                                       "re-save the file as UTF-8") from None
    return text[1:] if text.startswith(_BOM) else text


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_archive_bytes(path: Path | str) -> bytes:
    """The bytes of a regular file of at most `MAX_ARCHIVE_BYTES`; an `ArchiveError` for anything else.

    Opened without blocking and checked with `fstat` before a byte is read: a FIFO would block the reader
    forever (the daemon, `preview`, `schedule`), a device such as /dev/zero never ends, a folder is not a file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ArchiveError(path, None, f"cannot read the archive: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise ArchiveError(path, None, f"is {kind}, not an archive file; give a Markdown file "
                                           "(or a folder of them where a folder is expected)")
        if st.st_size > MAX_ARCHIVE_BYTES:
            raise _too_big(path, st.st_size)
        chunks = []
        size = 0
        while True:  # the file may grow while it is read: never past the limit
            try:
                chunk = os.read(fd, min(1 << 20, MAX_ARCHIVE_BYTES + 1 - size))
            except OSError as e:
                raise ArchiveError(path, None, f"cannot read the archive: {e.strerror or e}") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ARCHIVE_BYTES:
                raise _too_big(path, size)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_big(path: Path | str, size: int) -> ArchiveError:
    return ArchiveError(path, None, f"the archive is {size / 1e6:.1f} MB, more than crossposter reads "
                                    f"({MAX_ARCHIVE_BYTES // (1024 * 1024)} MiB); split it into several archives")


def read_archive(path: Path) -> Archive:
    """Read and parse one archive file (BOM and CRLF tolerated)."""

    path = Path(path).absolute()
    return parse_archive(decode_archive(read_archive_bytes(path), path), path)


def read_archive_parts(path: Path) -> Iterator[Archive]:
    """`read_archive` as a sequence of archives holding the threads of one slice of the file each.

    For a reader that visits each thread once (the preview): the tokens of one slice at a time are alive,
    so memory stays a small multiple of the file. Each part is a complete `Archive` for its own threads.
    """
    path = Path(path).absolute()
    return parse_archive_parts(decode_archive(read_archive_bytes(path), path), path)


def _blank(line: str) -> bool:
    return not line.strip(" \t")


def _indent_ok(line: str) -> str | None:
    """The line without up to 3 leading spaces, or None when indented like a code block."""
    stripped = line.lstrip(" ")
    return stripped if len(line) - len(stripped) < 4 else None


def _is_block_open(line: str) -> bool:
    s = _indent_ok(line)
    if s is None or not s.startswith(BLOCK_OPEN):
        return False
    rest = s[len(BLOCK_OPEN):]
    return not rest or rest[0] in " \t" or rest.startswith(BLOCK_CLOSE)


def _read_block(lines: list[str], first: int, stop: int, path: Path) -> tuple[dict, int]:
    """Parse the metadata block opening at 0-based ``first``; returns (metadata, 0-based closing line)."""
    s = _indent_ok(lines[first]) or ""
    rest = s[len(BLOCK_OPEN):]
    parts: list[str] = []
    close = -1
    for i in range(first, stop):
        text = rest if i == first else lines[i]
        pos = text.find(BLOCK_CLOSE)
        if pos >= 0:
            tail = text[pos + len(BLOCK_CLOSE):]
            if tail.strip(" \t\r"):
                raise ArchiveError(path, i + 1, f"text after `{BLOCK_CLOSE}` closing the crossposter metadata "
                                                f"block: {tail.strip()!r}; put `{BLOCK_CLOSE}` on a line of its own")
            parts.append(text[:pos])
            close = i
            break
        parts.append(text)
    if close < 0:
        raise ArchiveError(path, first + 1, f"the crossposter metadata block opened here is never closed; "
                                            f"add a line `{BLOCK_CLOSE}` after its YAML")
    import yaml

    from crossposter import safeyaml

    source = "\n".join(parts)
    try:
        data = safeyaml.load(source)  # safe (libyaml when built); no aliases, bounded nesting
    except safeyaml.ShapeError as e:
        raise ArchiveError(path, first + 1 + e.line, f"in the crossposter metadata block: {e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = first + 1 + (mark.line if mark is not None else 0)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ArchiveError(path, line, f"malformed YAML in the crossposter metadata block: {problem}; "
                                       "fix the YAML (or delete the block to start afresh)") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ArchiveError(path, first + 1, f"the crossposter metadata block must hold a YAML mapping "
                                            f"(key: value lines), not a {type(data).__name__}")
    block = BlockDict(data)
    block.source, block.first_line = source, first + 1  # for thread_meta's error lines
    return block, close


def _is_toc(tokens: list[Token], env: dict) -> bool:
    """Only lists, each of whose items is made of in-document ``#anchor`` links and nothing else.

    Strict on purpose: a real thread that merely starts with a list must never be skipped, and a list of
    empty items (``-`` lines) is no table of contents: only anchor links make one.
    """
    if not tokens or tokens[0].type not in ("bullet_list_open", "ordered_list_open"):
        return False
    md = markdown_parser()
    linked: list[bool] = []  # per open list item: has it an anchor link yet
    for tok in tokens:
        if tok.type == "definition":  # a reference definition (of an anchor the items use)
            continue
        if tok.type not in _LIST_TOKENS:
            return False
        if tok.type == "list_item_open":
            linked.append(False)
        elif tok.type == "list_item_close" and not linked.pop():
            return False
        if tok.type != "inline":
            continue
        children: list[Token] = []
        md.inline.parse(tok.content, md, dict(env), children)
        links = 0
        depth = 0
        for child in children:
            if child.type == "link_open":
                href = str(child.attrs.get("href", ""))
                if not href.startswith("#"):
                    return False
                depth += 1
                links += 1
            elif child.type == "link_close":
                depth -= 1
            elif depth == 0 and child.type not in ("softbreak", "hardbreak") and (
                    child.type != "text" or child.content.strip()):
                return False
        if links == 0:
            return False
        if linked:
            linked[-1] = True
    return True


def parse_archive(text: str, path: Path) -> Archive:
    """Split decoded archive text into threads (see the module docstring for the rules)."""
    path = Path(path)
    parts = list(_parse_parts(text, path, streamed=False))
    if len(parts) == 1:
        return parts[0]
    threads = [t for part in parts for t in part.threads]
    chunks = {k: v for part in parts for k, v in part._chunks.items()}
    return Archive(path=path, threads=threads, _chunks=chunks, _env=parts[0]._env,
                   _positions={id(t): i for i, t in enumerate(threads)})


def parse_archive_parts(text: str, path: Path) -> Iterator[Archive]:
    """`parse_archive`, one slice of the file at a time (see `read_archive_parts`)."""
    return _parse_parts(text, Path(path), streamed=True)


class _Lines:
    """The lines of one slice of the file, indexed by 0-based file line."""

    __slots__ = ("lines", "start")

    def __init__(self, lines: list[str], start: int) -> None:
        self.lines = lines
        self.start = start

    def __getitem__(self, i: int) -> str:
        return self.lines[i - self.start]


def _parse_parts(text: str, path: Path, streamed: bool) -> Iterator[Archive]:
    if text.startswith(_BOM):
        text = text[1:]
    norm = text.replace("\r\n", "\n")
    n_lines = 0 if not norm else norm.count("\n") + (0 if norm.endswith("\n") else 1)
    # markdown-it would count a lone CR as a line break; we do not, so hide it from the parser.
    src = norm.replace("\r", " ") if "\r" in norm else norm
    layout = Layout(src)
    env: dict = {LAYOUT_KEY: layout}
    nul_lines = _nul_lines(norm) if "\0" in norm else []
    ends = None
    if streamed and len(src) > _CHUNK_CHARS and "]:" in src:
        # a reference definition may come after the threads that use it: collect them all first
        ends = [(stop, b) for (_, stop, _, b), _tokens in _block_chunks(src, n_lines, env, layout)]
        layout.forget_findings()
    archive_env: dict = {}
    for index, ((start, stop, a, b), tokens) in enumerate(_block_chunks(src, n_lines, env, layout, ends)):
        archive_env.update((k, v) for k, v in env.items() if k != LAYOUT_KEY)
        lines = _Lines(norm[a:b].split("\n"), start)
        threads = _threads(tokens, index, lines, stop, n_lines, norm.endswith("\n"), path)
        archive = Archive(path=path, threads=threads, _chunks={index: tokens}, _env=archive_env,
                          _positions={id(t): i for i, t in enumerate(threads)})
        _mark(archive, threads, layout, nul_lines, archive_env, stop)
        yield archive


def _block_chunks(src: str, n_lines: int, env: dict, layout: Layout,
                  ends: list[tuple[int, int]] | None = None):
    """((first line, stop line, first char, stop char), block tokens with file line maps) per slice.

    A slice ends just before a `#`/`##` heading at column 0 (no list, quote or paragraph continues over
    one); when a fence or HTML block open at its end closes later in the file, the slice is parsed again,
    reaching past that close (`Extend`). `ends` are the (stop line, stop char) an earlier pass found.
    """
    parser = block_parser()
    layout.chunked = len(src) > _CHUNK_CHARS
    start = a = 0
    while True:
        if ends:
            stop, b = ends.pop(0)
        elif layout.chunked:
            cut = layout.boundary(a + _CHUNK_CHARS, start)
            stop, b = cut if cut is not None else (n_lines, len(src))
        else:
            stop, b = n_lines, len(src)
        while True:
            layout.offset, layout.base = start, a
            try:
                with _no_gc():
                    tokens = parser.parse(src if (a, b) == (0, len(src)) else src[a:b], env)
            except Extend as e:  # at least double the slice: a chain of such blocks costs a few parses, not one each
                cut = layout.boundary(max(b, 2 * b - a), e.line)
                stop, b = cut if cut is not None else (n_lines, len(src))
                continue
            break
        yield (start, stop, a, b), _shift(tokens, start)
        if b >= len(src):
            return
        start, a = stop, b


def _shift(tokens: list[Token], lines: int) -> list[Token]:
    """Token maps of a slice's parse as file lines."""
    if lines:
        for tok in tokens:
            if tok.map is not None:
                tok.map = [tok.map[0] + lines, tok.map[1] + lines]
    return tokens


def _nul_lines(text: str) -> list[int]:
    """1-based lines holding a NUL byte (markdown-it turns each into U+FFFD)."""
    out: list[int] = []
    pos = text.find("\0")
    line, last = 1, 0
    while pos >= 0:
        line += text.count("\n", last, pos)
        last = pos
        if not out or out[-1] != line:
            out.append(line)
        pos = text.find("\0", pos + 1)
    return out


def _threads(tokens: list[Token], index: int, lines: _Lines, end: int, n_lines: int, final_newline: bool,
             path: Path) -> list[Thread]:
    """The `##` threads of one slice's tokens; `end` is the file line where the slice stops."""
    heads: list[tuple[int, int]] = []  # (token index, tag level) of top-level h1/h2
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0 and tok.tag in ("h1", "h2"):
            heads.append((i, 1 if tok.tag == "h1" else 2))

    threads: list[Thread] = []
    for h, (ti, level) in enumerate(heads):
        if level != 2:
            continue
        tok = tokens[ti]
        assert tok.map is not None
        nxt_ti = heads[h + 1][0] if h + 1 < len(heads) else len(tokens)
        if h + 1 < len(heads):
            nxt_map = tokens[nxt_ti].map
            assert nxt_map is not None
            stop = nxt_map[0]  # 0-based line where the next section starts
        else:
            stop = end
        title = " ".join(tokens[ti + 1].content.split("\n")).strip()
        line = tok.map[0] + 1
        head_end = tok.map[1]  # 0-based index of the first line after the heading
        i = head_end
        while i < stop and _blank(lines[i]):
            i += 1
        metadata: dict = {}
        block_line = block_end = None
        if i < stop and _is_block_open(lines[i]):
            metadata, close = _read_block(lines, i, stop, path)  # type: ignore[arg-type]
            block_line, block_end = i + 1, close + 1
            i = close + 1
            while i < stop and _blank(lines[i]):
                i += 1
        date = None
        if i < stop:
            s = _indent_ok(lines[i])
            m = _DATE_RE.fullmatch(s.strip(" \t")) if s is not None else None
            if m:
                date = m.group(1) + (" " + m.group(2) if m.group(2) else "")
                i += 1
                while i < stop and _blank(lines[i]):
                    i += 1
                if i < stop and _is_block_open(lines[i]):
                    raise ArchiveError(path, i + 1, "the crossposter metadata block must come directly under "
                                                    "the `##` heading, before the date line; move it up")
        body_start = i
        # the exact slice up to the next heading (trailing blank lines too, so that markdown-it reads it as
        # it reads the file); no line ending is invented at the end of a file without final newline
        body = ""
        if body_start < stop:
            body = "\n".join(lines.lines[body_start - lines.start:stop - lines.start])
            if stop < n_lines or final_newline:
                body += "\n"
        thread = Thread(title=title, line=line, end_line=max(stop, line + (head_end - tok.map[0]) - 1),
                        date=date, metadata=metadata, body=body, body_line=body_start + 1, skipped=None,
                        heading_end_line=head_end, block_line=block_line, block_end_line=block_end, path=path,
                        _token_range=(index, ti + 3, nxt_ti))
        threads.append(thread)
    return threads


def _mark(archive: Archive, threads: list[Thread], layout: Layout, nul_lines: list[int], env: dict,
          stop: int) -> None:
    """Skips, and what reading found wrong with each thread (see `Thread.errors`).

    Linear in the threads and the blocks found since the last slice: a file of many unclosed comments
    must not make this quadratic.
    """
    from bisect import bisect_left, bisect_right

    earlier = layout.swallowed_from  # a block never closed, in an earlier slice: it hides every thread here
    spans, hidden = layout.take_new()
    spans = sorted(([(earlier[0], (None, earlier[1]))] if earlier else []) + layout.carried + spans,
                   key=lambda span: span[0])
    layout.carried = [(at, (until, what)) for at, (until, what) in spans if until is not None and until > stop]
    heads = [t.line - 1 for t in threads]  # 0-based heading lines, increasing
    marked: set[int] = set()  # the first block that hides a thread is the one to fix: one error each
    to_end = False
    for at, (until, what) in spans:
        if to_end:
            break  # the first block that runs to the end of the file already hides every later thread
        to_end = until is None
        first = bisect_right(heads, at)
        last = len(threads) if until is None else bisect_left(heads, until)
        for thread in threads[first:last]:
            if id(thread) not in marked:
                marked.add(id(thread))
                thread.errors.append(Diagnostic(thread.line, _hidden_by(at, until, what)))
    for at, (what, lines) in hidden:
        i = bisect_right(heads, at) - 1
        if i >= 0 and at + 1 <= threads[i].end_line:
            shown = ", ".join(str(n + 1) for n in lines[:5]) + (" …" if len(lines) > 5 else "")
            threads[i].warnings.append(Diagnostic(at + 1, (
                f"this {what} hides the heading line(s) at {shown}: whatever they start is not a thread "
                f"and is not posted (end the {what} before them to post them)")))
    for thread in threads:
        if nul_lines:
            for n in nul_lines[bisect_left(nul_lines, thread.line):bisect_right(nul_lines, thread.end_line)]:
                thread.errors.append(Diagnostic(n, "this line holds a NUL byte (\\0), which Markdown turns into "
                                                   "U+FFFD (\ufffd) and which would be posted as such; delete it "
                                                   "(a NUL in a text file often means the file is damaged)"))
        if thread.metadata.get("skip") is True:
            thread.skipped = "skip: true"
        elif not thread.body:
            thread.skipped = "empty"
        else:
            body_toks = archive._slice_body(thread)
            if body_toks and _is_toc(body_toks, env):
                thread.skipped = "table of contents"


def _hidden_by(at: int, until: int | None, what: str) -> str:
    """The error of a thread whose heading CommonMark would hide in the block opened at 0-based line `at`."""
    if until is None:
        closer = "a closing `-->`" if what == "HTML comment" else (
            "a closing fence line" if what == "code block" else "its closing tag")
        return (f"this thread comes after the {what} opened at line {at + 1}, which is never closed: Markdown shows "
                f"everything from there to the end of the file as part of it, this thread included; add {closer} "
                "where it should end")
    return (f"this thread's heading is inside the {what} opened at line {at + 1}, which only ends at line "
            f"{until}: Markdown does not show it as a thread; end the {what} before this heading")
