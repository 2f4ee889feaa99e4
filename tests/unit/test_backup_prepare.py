"""Sections rendered and parsed while the pages are read (`ArchiveWriter.prepare`) change no byte of the
archive and none of the writer's checks; the batch takes one only when it writes exactly that section."""

from __future__ import annotations

import time
from dataclasses import field
from pathlib import Path

import pytest

from crossposter.archive import ArchiveError, read_archive
from crossposter.backup.source import ReadResult, SourceMedia, SourceThread, build_threads
from crossposter.backup.writer import ArchiveWriter
from crossposter.publish import text_sha
from tests.unit.test_backup_write import FakeReader, P, backup, cfg


def writer(path: Path) -> ArchiveWriter:
    return ArchiveWriter(path, "mastodon", timezone="Europe/Berlin", title="Mastodon threads",
                         media_path=lambda post, i: f"media/mastodon/{post.media[i].filename}", sha=text_sha)


def threads_of(n: int, per: int = 3) -> list[SourceThread]:
    posts = []
    for t in range(n):
        first = t * 10 + 1
        posts.append(P(first, f"Thread {t} *starts* here\n\n- with a list marker & [brackets]",
                       media=(SourceMedia("image", f"u{first}", f"{first}-0.png", alt="a picture"),)))
        posts += [P(first + k, f"reply {k} of thread {t}\n---\n```", first + k - 1) for k in range(1, per)]
    return build_threads(posts)


def test_prepared_sections_give_the_same_bytes_and_are_taken(tmp_path: Path) -> None:
    threads = threads_of(6)
    plain, ahead = tmp_path / "plain.md", tmp_path / "ahead.md"
    for path in (plain, ahead):
        path.write_bytes(b"# Mine\n\n## Old notes\n\nsome text\n")
    writer(plain).write(threads, [])
    w = writer(ahead)
    assert all(w.prepare(t, w.media_path) for t in threads)
    result = w.write(threads, [])
    assert ahead.read_bytes() == plain.read_bytes()
    assert result.prepared == 5  # every one but the file's last section
    assert [t.title for t in read_archive(ahead).threads][1:] == [t.title for t in result.threads]
    # the next batch starts from what this one checked: appends land in prepared sections too
    more = threads_of(8)[6:]
    writer(plain).write(more, [])
    assert all(w.prepare(t, w.media_path) for t in more)
    w.write(more, [])
    assert ahead.read_bytes() == plain.read_bytes()


def test_a_prepared_section_after_an_open_code_block_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    original = b"# Mine\n\n## Notes\n\n```\nunclosed code\n"
    path.write_bytes(original)
    threads = threads_of(3)
    w = writer(path)
    assert all(w.prepare(t, w.media_path) for t in threads)
    with pytest.raises(ArchiveError, match="open code block or HTML block"):
        w.write(threads, [])
    assert path.read_bytes() == original


def test_a_section_that_is_not_exactly_the_prepared_one_is_rendered_afresh(tmp_path: Path) -> None:
    threads = threads_of(4)
    grown = threads_of(4, per=4)  # the same first posts, one more reply each: prepared too early
    twin = SourceThread([P(99, threads[0].root.text)])  # the same heading, so it becomes "… (2)"
    tail = threads_of(6)[4:]
    plain, ahead = tmp_path / "plain.md", tmp_path / "ahead.md"
    writer(plain).write([*grown, twin, *tail], [])
    w = writer(ahead)
    for t in [*threads, twin, *tail]:
        w.prepare(t, w.media_path)
    result = w.write([*grown, twin, *tail], [])
    assert ahead.read_bytes() == plain.read_bytes()
    assert result.prepared == 1  # only the first of the last two (the last is the file's end)
    crlf = tmp_path / "crlf.md"
    crlf.write_bytes(b"# Mine\r\n")
    w = writer(crlf)
    for t in threads:
        w.prepare(t, w.media_path)
    assert w.write(threads, []).prepared == 0 and b"\n" not in crlf.read_bytes().replace(b"\r\n", b"")


class PagedReader(FakeReader):
    """Hands `on_posts` one page at a time, newest first (Mastodon) or oldest first (Bluesky), each page
    after a wait for the network."""

    newest_first: bool = True
    page: int = 4
    pages: list[list[str]] = field(default_factory=list)

    def read(self, *, cursor=None, since=None, on_page=None, on_posts=None) -> ReadResult:
        order = sorted(self.posts, key=lambda p: int(p.id), reverse=self.newest_first)
        for i in range(0, len(order), self.page):
            if on_posts:
                on_posts(order[i:i + self.page])
            time.sleep(0.05)
        return super().read(cursor=cursor, since=since, on_page=on_page)


@pytest.mark.parametrize("newest_first", [True, False])
def test_a_paged_run_prepares_while_reading_and_writes_the_same_archive(tmp_path: Path, newest_first: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    posts = [p for t in threads_of(12) for p in t.posts]
    files = {p.media[0].fetch: b"IMG" for p in posts if p.media}
    prepared: list[str] = []
    real = ArchiveWriter.prepare

    def spy(self: ArchiveWriter, thread: SourceThread, media_path) -> bool:
        assert threading.current_thread() is not threading.main_thread()
        ok = real(self, thread, media_path)
        prepared.append(thread.root.id)
        return ok

    monkeypatch.setattr(ArchiveWriter, "prepare", spy)
    reader = PagedReader(posts, files=files)
    reader.newest_first = newest_first
    out = backup(reader, cfg(tmp_path / "a"))
    plain = backup(FakeReader(posts, files=files), cfg(tmp_path / "b"))
    assert (tmp_path / "a" / "threads" / "mastodon.md").read_bytes() == \
        (tmp_path / "b" / "threads" / "mastodon.md").read_bytes()
    assert out.posts_added == plain.posts_added == len(posts) and plain.prepared == 0
    assert prepared and out.prepared > 0
