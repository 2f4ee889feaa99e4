"""`run_backup` and the archive writer: shape, incremental runs, dedupe, hand edits, media, batches, dry run.

A reader here is an in-memory list of `SourcePost`s (the readers have their own tests against real
peers; `test_backup_peers.py` runs the whole chain against them). Expected archive text is written
out by hand from the posts, never copied from the program.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossposter.archive import ArchiveError, read_archive
from crossposter.backup.run import BackupReporter, run_backup
from crossposter.backup.source import ReadResult, Skipped, SourceMedia, SourcePost
from crossposter.config import Config
from crossposter.platforms.base import RateLimitedError, TransientError
from crossposter.publish import text_sha

T0 = datetime(2024, 2, 13, 20, 25, tzinfo=UTC)


def P(n: int, text: str, reply: int | None = None, *, media: tuple[SourceMedia, ...] = (), to_self: bool = True,
      platform: str = "mastodon", **kw: object) -> SourcePost:
    return SourcePost(platform, str(n), f"https://social.example/@me/{n}", T0 + timedelta(minutes=n), text,
                      reply_to=None if reply is None else str(reply), reply_to_self=reply is not None and to_self,
                      media=media, **kw)


@dataclass
class FakeReader:
    """The account's posts; the cursor is the highest id read (like X's and Mastodon's ids)."""

    posts: list[SourcePost]
    platform: str = "mastodon"
    files: dict[str, bytes] = field(default_factory=dict)
    fail_media: dict[str, int] = field(default_factory=dict)  # filename -> failures left
    errors: list[Exception] = field(default_factory=list)  # raised by the next reads, in order
    reads: int = 0
    media_calls: int = 0

    def read(self, *, cursor=None, since=None, on_page=None) -> ReadResult:
        self.reads += 1
        if self.errors:
            raise self.errors.pop(0)
        new = [p for p in self.posts if cursor is None or int(p.id) > int(cursor)]
        if on_page:
            on_page(len(new))
        top = max([int(p.id) for p in self.posts] + ([int(cursor)] if cursor else []), default=None)
        return ReadResult(posts=new, cursor=None if top is None else str(top), skipped=Skipped(), requests=1)

    def fetch_media(self, media: SourceMedia) -> bytes:
        self.media_calls += 1
        left = self.fail_media.get(media.filename, 0)
        if left:
            self.fail_media[media.filename] = left - 1
            raise TransientError(self.platform, f"{media.filename}: server error 503")
        return self.files[media.fetch]


def cfg(tmp_path: Path, **kw: object) -> Config:
    return Config(base_dir=tmp_path, state_dir=tmp_path / ".state", timezone="Europe/Berlin", **kw)


def backup(reader: FakeReader, config: Config, **kw: object):
    kw.setdefault("sleep", lambda s: None)
    return run_backup(reader, config, account="me@social.example", **kw)


def block(*posts: SourcePost, platform: str = "mastodon") -> str:
    lines = ["<!-- crossposter", f"source: {platform}", f"{platform}:"]
    lines += [f"- {{id: '{p.id}', url: '{p.url}', sha: {text_sha(p.text)}}}" for p in posts]
    return "\n".join([*lines, "-->"])


def test_new_archive_has_the_documented_shape(tmp_path: Path) -> None:
    img = SourceMedia("image", "https://files.example/a.png", "2-0.png", alt="A red [square]")
    posts = [P(1, "Hello *world*, this is #1"), P(2, "Second post", 1, media=(img,)), P(3, "Another thread")]
    reader = FakeReader(posts, files={"https://files.example/a.png": b"PNGDATA"})
    out = backup(reader, cfg(tmp_path))
    archive = tmp_path / "threads" / "mastodon.md"
    expected = (
        "# Mastodon threads\n\n"
        "## Hello world, this is 1\n" + block(posts[0], posts[1]) + "\n2024-02-13 21:26\n\n"
        "Hello \\*world\\*, this is #1\n\n---\n\nSecond post\n\n![A red \\[square\\]](media/mastodon/2-0.png)\n\n"
        "## Another thread\n" + block(posts[2]) + "\n2024-02-13 21:28\n\nAnother thread\n")
    assert archive.read_text(encoding="utf-8") == expected
    assert (tmp_path / "threads" / "media" / "mastodon" / "2-0.png").read_bytes() == b"PNGDATA"
    assert [t.title for t in out.threads] == ["Hello world, this is 1", "Another thread"]
    assert [t.post_ids for t in out.threads] == [["1", "2"], ["3"]]
    assert out.threads[0].root_id == "1" and out.threads[0].newest == posts[1].created_at
    assert out.threads[0].archive == archive
    assert (out.media_added, out.posts_added, out.problems, out.cursor_saved) == (1, 3, [], True)
    meta = read_archive(archive).threads[0].metadata
    assert meta["source"] == "mastodon" and [e["id"] for e in meta["mastodon"]] == ["1", "2"]


def test_second_run_with_nothing_new_is_byte_identical_and_later_replies_are_appended(tmp_path: Path) -> None:
    posts = [P(1, "First thread"), P(2, "its second post", 1), P(3, "Other thread")]
    reader = FakeReader(posts)
    config = cfg(tmp_path)
    backup(reader, config)
    archive = tmp_path / "threads" / "mastodon.md"
    before = archive.read_bytes()
    state = next((tmp_path / ".state" / "backup").iterdir())
    state_before = state.read_bytes()
    again = backup(reader, config)
    assert archive.read_bytes() == before and again.posts_added == 0
    assert state.read_bytes() == state_before  # nothing new: not even the cursor file is rewritten
    # a full re-read (cursor lost) writes nothing either: the archive's IDs are what prevents duplicates
    state.unlink()
    again = backup(reader, config)
    assert archive.read_bytes() == before and again.skipped["already in an archive"] == 3

    reader.posts += [P(4, "a later reply", 2), P(5, "and one more", 4), P(6, "A new thread")]
    out = backup(reader, config)
    assert [r.post_ids for r in out.replies] == [["4", "5"]]
    assert [t.title for t in out.threads] == ["A new thread"]
    text = archive.read_text(encoding="utf-8")
    first, second = text.split("## Other thread")
    assert first.endswith("its second post\n\n---\n\na later reply\n\n---\n\nand one more\n\n")
    assert block(posts[0], posts[1], reader.posts[3], reader.posts[4]) in first
    assert second.endswith("Other thread\n\n## A new thread\n" + block(reader.posts[5]) +
                           "\n2024-02-13 21:31\n\nA new thread\n")


def test_hand_edits_are_kept_byte_for_byte(tmp_path: Path) -> None:
    posts = [P(1, "First thread"), P(2, "Other thread")]
    reader = FakeReader(posts)
    config = cfg(tmp_path)
    backup(reader, config)
    archive = tmp_path / "threads" / "mastodon.md"
    # The person edits: a new title line, a note under a heading, CRLF-free trailing spaces, no final newline.
    text = archive.read_text(encoding="utf-8")
    text = text.replace("# Mastodon threads", "# My toots  \n\nSome words of mine. ")
    text = text.replace("\n\nFirst thread\n", "\n\nFirst thread, edited by me.\n\n> a quote I added\n\n\n")
    edited = text.rstrip("\n").encode("utf-8")
    archive.write_bytes(edited)
    reader.posts += [P(3, "reply to the first", 1), P(4, "Third thread")]
    backup(reader, config)
    new = archive.read_bytes()
    # every byte the person wrote is still there, in order: removing what the backup added gives it back
    added_reply = b"\n---\n\nreply to the first\n"
    assert new.count(added_reply) == 1
    without = new.replace(added_reply, b"", 1)
    entry = f"\n- {{id: '3', url: '{reader.posts[2].url}', sha: {text_sha('reply to the first')}}}".encode()
    without = without.replace(entry, b"", 1)
    cut = without.index(b"\n\n## Third thread")
    assert without[:cut] == edited
    assert b"> a quote I added\n\n---\n\nreply to the first\n\n\n\n## Other thread" in new


def test_crlf_archive_stays_crlf(tmp_path: Path) -> None:
    archive = tmp_path / "threads" / "mastodon.md"
    archive.parent.mkdir()
    archive.write_bytes(b"# Mine\r\n\r\n## Written by hand\r\n\r\nhello\r\n")
    reader = FakeReader([P(1, "From the platform"), P(2, "second", 1)])
    backup(reader, cfg(tmp_path))
    data = archive.read_bytes()
    assert data.startswith(b"# Mine\r\n\r\n## Written by hand\r\n\r\nhello\r\n\r\n## From the platform\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    reader.posts.append(P(3, "a later reply\nin two lines", 2))
    backup(reader, cfg(tmp_path))
    data = archive.read_bytes()
    assert data.endswith(b"second\r\n\r\n---\r\n\r\na later reply\r\nin two lines\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_threads_recorded_by_post_in_any_configured_archive_are_never_written_again(tmp_path: Path) -> None:
    """A thread crossposter published (its Mastodon IDs recorded by `post`) is not backed up a second time,
    and a later self-reply to it goes into that section, in the person's own archive."""
    own = tmp_path / "threads" / "2024.md"
    own.parent.mkdir()
    original = ("# My threads\n\n## Written here first\n<!-- crossposter\nmastodon:\n"
                "- {id: '1', url: 'https://social.example/@me/1', sha: 0123456789ab}\n"
                "- 'https://social.example/@me/2'\n-->\n2024-02-13 21:26\n\nPart one\n\n---\n\nPart two\n")
    own.write_text(original, encoding="utf-8")
    reader = FakeReader([P(1, "Part one"), P(2, "Part two", 1), P(3, "Part three, written on Mastodon", 2),
                         P(4, "Only on Mastodon")])
    out = backup(reader, cfg(tmp_path))
    assert [t.post_ids for t in out.threads] == [["4"]]
    assert [(r.archive, r.post_ids) for r in out.replies] == [(own.absolute(), ["3"])]
    assert out.skipped["already in an archive"] == 2
    text = own.read_text(encoding="utf-8")
    head, body = original.split("-->\n")
    assert text.startswith("# My threads\n\n## Written here first\n<!-- crossposter\nmastodon:\n")
    assert text.endswith("-->\n" + body + "\n---\n\nPart three, written on Mastodon\n")
    assert read_archive(own).threads[0].metadata == {"mastodon": [
        {"id": "1", "url": "https://social.example/@me/1", "sha": "0123456789ab"}, "https://social.example/@me/2",
        {"id": "3", "url": "https://social.example/@me/3", "sha": text_sha("Part three, written on Mastodon")}]}
    backup_file = (tmp_path / "threads" / "mastodon.md").read_text(encoding="utf-8")
    assert "Part one" not in backup_file and "Only on Mastodon" in backup_file


def test_a_section_moved_to_another_archive_is_not_written_again(tmp_path: Path) -> None:
    reader = FakeReader([P(1, "Keep me"), P(2, "Move me"), P(3, "second of moved", 2)])
    config = cfg(tmp_path)
    backup(reader, config)
    archive = tmp_path / "threads" / "mastodon.md"
    text = archive.read_text(encoding="utf-8")
    moved = text[text.index("## Move me"):]
    archive.write_text(text[:text.index("## Move me")], encoding="utf-8")
    (tmp_path / "threads" / "curated.md").write_text("# Curated\n\n" + moved, encoding="utf-8")
    for state in (tmp_path / ".state" / "backup").iterdir():
        state.unlink()  # a full re-read
    reader.posts.append(P(4, "late reply to the moved thread", 3))
    out = backup(reader, config)
    assert out.threads == [] and [r.archive.name for r in out.replies] == ["curated.md"]
    assert "Move me" not in archive.read_text(encoding="utf-8")
    assert (tmp_path / "threads" / "curated.md").read_text(encoding="utf-8").endswith(
        "second of moved\n\n---\n\nlate reply to the moved thread\n")


def test_replies_to_others_and_reposts_are_skipped_and_counted(tmp_path: Path) -> None:
    reader = FakeReader([P(1, "Mine"), P(2, "@bob answer", 99, to_self=False), P(3, "my follow-up to bob", 2),
                         P(4, "boosted", repost=True)])
    out = backup(reader, cfg(tmp_path))
    assert [t.post_ids for t in out.threads] == [["1"]]
    assert out.skipped == {"reposts": 1, "replies to other accounts": 1,
                           "self-replies below a reply to another account": 1}


def test_headings_are_unique_and_date_line_is_in_the_configured_zone(tmp_path: Path) -> None:
    archive = tmp_path / "threads" / "mastodon.md"
    archive.parent.mkdir()
    archive.write_text("# Mine\n\n## Same words\n\nmine\n", encoding="utf-8")
    backup(FakeReader([P(1, "Same words"), P(2, "same words")]), cfg(tmp_path))
    titles = [t.title for t in read_archive(archive).threads]
    assert titles == ["Same words", "Same words (2)", "same words (3)"]
    assert [t.date for t in read_archive(archive).threads][1:] == ["2024-02-13 21:26", "2024-02-13 21:27"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    img = SourceMedia("image", "u", "1-0.png")
    reader = FakeReader([P(1, "Would be added", media=(img,))], files={"u": b"x"})
    out = backup(reader, cfg(tmp_path), dry_run=True)
    assert [t.title for t in out.threads] == ["Would be added"] and out.dry_run
    assert os.listdir(tmp_path) == [] and reader.media_calls == 0
    # and on an existing archive: same bytes, no media, no cursor
    archive = tmp_path / "threads" / "mastodon.md"
    archive.parent.mkdir()
    archive.write_bytes(b"# Mine\n")
    out = backup(reader, cfg(tmp_path), dry_run=True)
    assert archive.read_bytes() == b"# Mine\n" and os.listdir(tmp_path / "threads") == ["mastodon.md"]
    assert not (tmp_path / ".state").exists() and not out.cursor_saved


def test_failed_media_holds_the_thread_back_and_keeps_the_cursor(tmp_path: Path) -> None:
    img = SourceMedia("image", "u", "2-0.png", alt="pic")
    reader = FakeReader([P(1, "ok thread"), P(2, "thread with a picture", media=(img,)), P(3, "later thread")],
                        files={"u": b"IMG"}, fail_media={"2-0.png": 99})
    config = cfg(tmp_path)
    out = backup(reader, config)
    assert [t.post_ids for t in out.threads] == [["1"], ["3"]]
    assert len(out.problems) == 1 and "https://social.example/@me/2" in out.problems[0]
    assert "503" in out.problems[0] and not out.cursor_saved and not out.ok
    assert reader.media_calls == 4  # retried (MediaStore.attempts), then reported
    reader.fail_media.clear()
    out = backup(reader, config)  # the same posts again: only the held-back one is new
    assert [t.post_ids for t in out.threads] == [["2"]] and out.ok and out.cursor_saved
    assert out.skipped["already in an archive"] == 2
    text = (tmp_path / "threads" / "mastodon.md").read_text(encoding="utf-8")
    assert text.index("## ok thread") < text.index("## later thread") < text.index("## thread with a picture")
    assert "![pic](media/mastodon/2-0.png)" in text


@dataclass
class PagedReader(FakeReader):
    """Reads two pages and hands each page's posts to `on_posts`, as the network readers do."""

    fetched_during_read: list[str] = field(default_factory=list)
    reading: bool = False

    def read(self, *, cursor=None, since=None, on_page=None, on_posts=None) -> ReadResult:
        import threading

        self.reading = True
        got = threading.Event()
        first, rest = self.posts[:2], self.posts[2:]
        self.on_fetch = got.set
        if on_posts:
            on_posts(first)
            assert got.wait(10), "the first page's media were not started while reading"
            on_posts(rest)
        result = super().read(cursor=cursor, since=since, on_page=on_page)
        self.reading = False
        return result

    def fetch_media(self, media: SourceMedia) -> bytes:
        if self.reading:
            self.fetched_during_read.append(media.filename)
        try:
            return super().fetch_media(media)
        finally:
            self.on_fetch()


def test_media_download_while_the_pages_are_read(tmp_path: Path) -> None:
    img = [SourceMedia("image", f"u{n}", f"{n}-0.png", alt=f"pic {n}") for n in range(6)]
    posts = [P(1, "thread with a picture", media=(img[1],)), P(2, "a reply with a picture", 1, media=(img[2],)),
             P(3, "a repost", media=(img[3],), repost=True), P(4, "reply to someone", 99, to_self=False,
                                                                   media=(img[4],)),
             P(5, "a picture that fails", media=(img[5],))]
    files = {f"u{n}": f"IMG{n}".encode() for n in range(6)}
    reader = PagedReader(posts, files=files, fail_media={"5-0.png": 99})
    out = backup(reader, cfg(tmp_path))
    assert reader.fetched_during_read[:1] in (["1-0.png"], ["2-0.png"])  # started by the first page
    assert "3-0.png" not in reader.fetched_during_read and "4-0.png" not in reader.fetched_during_read
    assert [t.post_ids for t in out.threads] == [["1", "2"]]  # the failed one held back, reported once
    assert len(out.problems) == 1 and "5-0.png" in out.problems[0] and not out.cursor_saved
    folder = tmp_path / "threads" / "media" / "mastodon"
    assert sorted(p.name for p in folder.iterdir()) == ["1-0.png", "2-0.png"]
    # the same result as a reader that hands nothing over early (no prefetch)
    plain = tmp_path / "plain"
    plain.mkdir()
    backup(FakeReader(posts, files=files, fail_media={"5-0.png": 99}), cfg(plain))
    assert (plain / "threads" / "mastodon.md").read_bytes() == (tmp_path / "threads" / "mastodon.md").read_bytes()


def test_batches_write_once_per_batch_not_per_post(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crossposter.metadata as metadata

    writes = []
    real = metadata._atomic_write

    def counting(*args, **kw):
        writes.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(metadata, "_atomic_write", counting)
    posts = [P(i, f"Thread number {i}") for i in range(1, 251)]
    archive = tmp_path / "threads" / "mastodon.md"
    archive.parent.mkdir()
    archive.write_bytes(b"# Mine\n")
    out = backup(FakeReader(posts), cfg(tmp_path), batch_threads=100)
    assert len(out.threads) == 250 and len(writes) == 3
    assert len(read_archive(archive).threads) == 250


def test_rate_limit_close_enough_is_waited_out(tmp_path: Path) -> None:
    reset = datetime.now(UTC) + timedelta(seconds=30)
    waits: list[float] = []
    reader = FakeReader([P(1, "after the wait")], errors=[RateLimitedError("mastodon", "429", reset)])
    out = backup(reader, cfg(tmp_path), sleep=waits.append)
    assert len(waits) == 1 and 25 < waits[0] <= 32 and out.ok and len(out.threads) == 1


def test_rate_limit_far_away_stops_with_what_was_read_and_its_cursor(tmp_path: Path) -> None:
    err = RateLimitedError("mastodon", "429 too many requests", datetime.now(UTC) + timedelta(hours=5))
    err.partial = ReadResult(posts=[P(1, "read before the limit")], cursor="1", requests=1)  # type: ignore[attr-defined]
    reader = FakeReader([P(1, "read before the limit"), P(2, "not read yet")], errors=[err])
    config = cfg(tmp_path)
    out = backup(reader, config)
    assert [t.post_ids for t in out.threads] == [["1"]] and not out.complete and out.cursor_saved
    assert "429 too many requests" in out.problems[0]
    out = backup(reader, config)
    assert [t.post_ids for t in out.threads] == [["2"]] and out.complete


def test_an_archive_that_ends_inside_a_code_block_is_refused_untouched(tmp_path: Path) -> None:
    archive = tmp_path / "threads" / "mastodon.md"
    archive.parent.mkdir()
    original = b"# Mine\n\n## Notes\n\n```\nunclosed code\n"
    archive.write_bytes(original)
    with pytest.raises(ArchiveError, match="leaves a code block or HTML block open"):
        backup(FakeReader([P(1, "New thread")]), cfg(tmp_path))
    assert archive.read_bytes() == original
    assert not (tmp_path / ".state").exists()


def test_a_broken_configured_archive_stops_before_any_request(tmp_path: Path) -> None:
    (tmp_path / "threads").mkdir()
    (tmp_path / "threads" / "bad.md").write_bytes(b"# x\n\xff\xfe\n")
    reader = FakeReader([P(1, "x")])
    with pytest.raises(ArchiveError, match="UTF-8"):
        backup(reader, cfg(tmp_path))
    assert reader.reads == 0


def test_reporter_hears_pages_media_and_threads(tmp_path: Path) -> None:
    class Rec(BackupReporter):
        def __init__(self) -> None:
            self.events: list[tuple] = []

        def page(self, records: int) -> None:
            self.events.append(("page", records))

        def media(self, done: int, total: int) -> None:
            self.events.append(("media", done, total))

        def threads(self, done: int, total: int) -> None:
            self.events.append(("threads", done, total))

    rec = Rec()
    img = SourceMedia("image", "u", "1-0.png")
    backup(FakeReader([P(1, "a", media=(img,)), P(2, "b")], files={"u": b"x"}), cfg(tmp_path), reporter=rec)
    assert rec.events == [("page", 2), ("media", 1, 1), ("threads", 2, 2)]


def test_into_a_fifo_or_folder_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    for target in (fifo, tmp_path):
        with pytest.raises(ArchiveError, match="not a regular file"):
            backup(FakeReader([P(1, "x")]), cfg(tmp_path), into=target)


def test_far_future_and_ancient_dates_are_written_as_they_are(tmp_path: Path) -> None:
    posts = [SourcePost("mastodon", "1", "https://social.example/@me/1", datetime(2199, 12, 31, 23, 59, tzinfo=UTC),
                        "from the future"),
             SourcePost("mastodon", "2", "https://social.example/@me/2", datetime(1970, 1, 1, tzinfo=UTC), "old")]
    backup(FakeReader(posts), cfg(tmp_path))
    threads = read_archive(tmp_path / "threads" / "mastodon.md").threads
    assert [(t.title, t.date) for t in threads] == [("old", "1970-01-01 01:00"), ("from the future", "2200-01-01 00:59")]


def test_a_refused_first_read_is_an_error_and_a_later_one_a_problem(tmp_path: Path) -> None:
    from crossposter.platforms.base import UnauthorizedError

    reader = FakeReader([P(1, "x")], errors=[UnauthorizedError("mastodon", "401: the access token is invalid")])
    with pytest.raises(UnauthorizedError):
        backup(reader, cfg(tmp_path))
    assert not (tmp_path / "threads").exists()
    err = UnauthorizedError("mastodon", "401: token revoked")
    err.partial = ReadResult(posts=[P(1, "x")], cursor="1", requests=1)  # type: ignore[attr-defined]
    out = backup(FakeReader([P(1, "x")], errors=[err]), cfg(tmp_path))
    assert len(out.threads) == 1 and not out.complete and "token revoked" in out.problems[0]


def test_a_stored_cursor_the_reader_refuses_means_reading_everything(tmp_path: Path) -> None:
    from crossposter.backup.state import BackupState

    class Picky(FakeReader):
        def read(self, *, cursor=None, since=None, on_page=None) -> ReadResult:
            if cursor == "damaged":
                raise ValueError("'damaged' is not a cursor")
            return super().read(cursor=cursor, since=since, on_page=on_page)

    config = cfg(tmp_path)
    BackupState.load(config.state_path, "mastodon", "me@social.example").save("damaged")
    out = backup(Picky([P(1, "x")]), config)
    assert [t.post_ids for t in out.threads] == [["1"]] and out.cursor_saved
    assert BackupState.load(config.state_path, "mastodon", "me@social.example").cursor == "1"


def test_the_commands_progress_bar_and_plain_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from rich.console import Console
    from rich.progress import Progress

    from crossposter.commands.backup import _BarReporter, _PlainReporter, summary_lines

    img = SourceMedia("image", "u", "1-0.png")
    reader = FakeReader([P(1, "a", media=(img,)), P(2, "b")], files={"u": b"x"})
    out = io.StringIO()
    with Progress(console=Console(file=out, force_terminal=True, width=100)) as progress:
        result = backup(reader, cfg(tmp_path), reporter=_BarReporter(progress))
    drawn = out.getvalue()
    assert "reading (2 posts)" in drawn and "media" in drawn and "threads" in drawn
    backup(FakeReader([P(3, "c")]), cfg(tmp_path), reporter=_PlainReporter())
    assert capsys.readouterr().err.splitlines() == ["read page 1 (1 posts, 1 so far)", "written 1/1 threads"]
    lines = summary_lines(result, tmp_path)
    assert lines[0].startswith("mastodon → threads/mastodon.md: added 2 thread(s), 0 section(s) with later "
                               "replies, 2 post(s), 1 media file(s) (0 already there)")
    assert lines[1:] == ["  + a (1 post(s), threads/mastodon.md)", "  + b (1 post(s), threads/mastodon.md)"]


def test_self_replies_read_before_their_first_post_wait_for_it(tmp_path: Path) -> None:
    """Newest first (Mastodon, X's API) and stopped half-way: the replies read must not become a thread of
    their own; once a run reads the first post, the thread is written whole."""
    posts = [P(1, "Old thread start"), P(2, "its reply", 1), P(3, "New thread")]
    err = TransientError("mastodon", "connection reset")
    err.partial = ReadResult(posts=[posts[2], posts[1]], cursor="gap-cursor", requests=1)  # type: ignore[attr-defined]
    reader = FakeReader(posts, errors=[err] * 6)  # the first read and its 5 retries (config retry.attempts)
    config = cfg(tmp_path)
    out = backup(reader, config)
    assert [t.post_ids for t in out.threads] == [["3"]] and not out.cursor_saved
    assert any("first post was not read yet" in p for p in out.problems)
    out = backup(reader, config)
    assert [t.post_ids for t in out.threads] == [["1", "2"]] and out.ok


def test_an_editors_save_during_the_write_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The person saves the archive in their editor while a batch is computed: the batch is computed again on
    top of their save (never over it), through the same editor-aware write as every recording."""
    from crossposter.backup.writer import ArchiveWriter

    archive = tmp_path / "threads" / "mastodon.md"
    archive.parent.mkdir()
    archive.write_bytes(b"# Mine\n\n## Draft\n\nfirst words\n")
    real = ArchiveWriter._compute
    calls = []

    def compute(self, data, *args):
        calls.append(data)
        if len(calls) == 1:  # the editor saves right after our read
            saved = archive.read_bytes().replace(b"first words", b"first words, and more I typed")
            tmp = archive.with_name("editor.tmp")
            tmp.write_bytes(saved)
            os.replace(tmp, archive)
        return real(self, data, *args)

    monkeypatch.setattr(ArchiveWriter, "_compute", compute)
    backup(FakeReader([P(1, "From Mastodon")]), cfg(tmp_path))
    text = archive.read_text(encoding="utf-8")
    assert len(calls) == 2 and text.startswith("# Mine\n\n## Draft\n\nfirst words, and more I typed\n\n## From Mastodon\n")


def test_a_cache_kept_between_calls_parses_only_changed_archives(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The mirror bot calls run_backup every few minutes: an archive it wrote itself, or that nobody
    changed, is not parsed again; any change (even of one byte) is."""
    import crossposter.archive
    import crossposter.backup.writer
    from crossposter.backup.run import ArchiveCache

    parses = []
    real = crossposter.archive.parse_archive

    def counting(text, path):
        parses.append(Path(path).name)
        return real(text, path)

    monkeypatch.setattr(crossposter.archive, "parse_archive", counting)
    monkeypatch.setattr(crossposter.backup.writer, "parse_archive", counting)
    reader = FakeReader([P(1, "First")])
    config, cache = cfg(tmp_path), ArchiveCache()
    backup(reader, config, cache=cache)
    parses.clear()
    reader.posts.append(P(2, "Second"))
    out = backup(reader, config, cache=cache)
    assert len(out.threads) == 1 and parses == ["mastodon.md"]  # only the verification of what it appended
    parses.clear()
    assert backup(reader, config, cache=cache).posts_added == 0 and parses == []
    archive = tmp_path / "threads" / "mastodon.md"
    archive.write_bytes(archive.read_bytes().replace(b"Second\n", b"Second!\n"))
    assert backup(reader, config, cache=cache).posts_added == 0 and parses == ["mastodon.md"]


def test_into_a_file_not_named_markdown_or_linking_to_one_is_refused(tmp_path: Path) -> None:
    """Not even read: a mistyped --into (a dotfile) or an .md link to another file never gets threads appended."""
    other = tmp_path / "settings.conf"
    other.write_bytes(b"key = value\n")
    link = tmp_path / "x.md"
    link.symlink_to(other)
    for target, said in ((other, "'settings.conf' is not one"), (link, f"(it links to {other})"),
                         (tmp_path / "new.txt", "'new.txt' is not one")):
        with pytest.raises(ArchiveError, match="Markdown file named") as info:
            backup(FakeReader([P(1, "x")]), cfg(tmp_path), into=target)
        assert said in str(info.value)
    assert other.read_bytes() == b"key = value\n" and not (tmp_path / "new.txt").exists()
    # an .md link to an .md file (an archive kept in a synced folder) is written through
    real = tmp_path / "synced" / "x.markdown"
    real.parent.mkdir()
    linked = tmp_path / "threads.md"
    linked.symlink_to(real)
    backup(FakeReader([P(1, "through the link")]), cfg(tmp_path), into=linked)
    assert linked.is_symlink() and "through the link" in real.read_text()
