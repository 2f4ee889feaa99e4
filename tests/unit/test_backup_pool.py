"""Sections prepared many at a time (`ArchiveWriter.prepare_many`) and by forked workers (`PreparePool`):
the archive's bytes and the writer's checks are those of the in-process path, whatever the workers do,
and no worker process outlives the run."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crossposter.backup.prepare_pool as prepare_pool
import crossposter.backup.writer as writer_module
from crossposter.archive import ArchiveError
from crossposter.backup.prepare_pool import PreparePool
from crossposter.backup.source import SourceThread, build_threads
from crossposter.backup.writer import ArchiveWriter, Prepared
from tests.unit.test_backup_prepare import threads_of, writer
from tests.unit.test_backup_write import FakeReader, P, backup, cfg


def media_path(post, i: int) -> str:
    return f"media/mastodon/{post.media[i].filename}"


def same(a: Prepared | None, b: Prepared | None) -> bool:
    """Equal, down to the line the block's YAML starts on (used in error messages; not part of `==`)."""
    return a == b and (a is None or a.thread.metadata.first_line == b.thread.metadata.first_line)


def one_by_one(w: ArchiveWriter, threads: list[SourceThread]) -> list[Prepared | None]:
    return [w.prepare_many([t], media_path)[0] for t in threads]


def test_many_at_once_is_each_on_its_own(tmp_path: Path) -> None:
    w = writer(tmp_path / "a.md")
    threads = threads_of(7)
    together = w.prepare_many(threads, media_path)
    assert all(p is not None for p in together)
    assert all(same(a, b) for a, b in zip(together, one_by_one(w, threads), strict=True))
    assert together[3].thread.line == 1 and together[3].thread.metadata.first_line == 2
    assert not w._prepared  # (it keeps nothing: a forked worker runs it)


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(texts, min_size=1, max_size=3), min_size=1, max_size=6))
def test_many_at_once_is_each_on_its_own_for_any_text(tmp_path: Path, shapes: list[list[str]]) -> None:
    posts = []
    for t, shape in enumerate(shapes):
        first = t * 10 + 1
        posts += [P(first + k, text, None if k == 0 else first + k - 1) for k, text in enumerate(shape)]
    threads = build_threads(posts)
    w = writer(tmp_path / "a.md")
    assert all(same(a, b) for a, b in zip(w.prepare_many(threads, media_path), one_by_one(w, threads), strict=True))


def test_a_section_that_does_not_read_back_spoils_only_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = writer_module.section_markdown

    def leaves_a_fence_open(thread, *args, **kw):  # (the renderer escapes every fence: a bug is what it takes)
        text = real(thread, *args, **kw)
        return text + "```\n" if thread.root.id == "21" else text

    monkeypatch.setattr(writer_module, "section_markdown", leaves_a_fence_open)
    w = writer(tmp_path / "a.md")
    threads = threads_of(5)
    together = w.prepare_many(threads, media_path)
    assert [p is None for p in together] == [False, False, True, False, False]
    assert all(same(a, b) for a, b in zip(together, one_by_one(w, threads), strict=True))


# --------------------------------------------------------------------------- the worker processes


def gone(pids: list[int]) -> bool:
    """Every one of `pids` exited and was reaped (no zombie left)."""
    return all(not Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.fixture()
def pools(monkeypatch: pytest.MonkeyPatch) -> list[PreparePool]:
    """Every pool a run starts (small runs too), with the processes it forked."""
    made: list[PreparePool] = []
    real = PreparePool.__init__

    def spy(self: PreparePool, *args, **kw) -> None:
        real(self, *args, **kw)
        self.pids = [proc.pid for proc, _ in self._procs]
        made.append(self)

    monkeypatch.setattr(PreparePool, "__init__", spy)
    monkeypatch.setattr(prepare_pool, "MIN_THREADS", 1)
    monkeypatch.setattr(prepare_pool, "CHUNK", 3)
    return made


def account(n: int = 30) -> tuple[list, dict[str, bytes]]:
    posts = [p for t in threads_of(n) for p in t.posts]
    return posts, {p.media[0].fetch: b"IMG" for p in posts if p.media}


def in_process(tmp_path: Path, posts, files, monkeypatch: pytest.MonkeyPatch, **kw) -> bytes:
    with monkeypatch.context() as m:
        m.setattr(prepare_pool, "MIN_THREADS", 10**9)
        backup(FakeReader(posts, files=files), cfg(tmp_path / "plain"), **kw)
    return (tmp_path / "plain" / "threads" / "mastodon.md").read_bytes()


def test_the_workers_prepare_and_the_archive_is_the_same(tmp_path: Path, pools: list[PreparePool],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    posts, files = account()
    out = backup(FakeReader(posts, files=files), cfg(tmp_path / "pool"), batch_threads=7)
    assert len(pools) == 1 and len(pools[0].pids) == 2
    assert (tmp_path / "pool" / "threads" / "mastodon.md").read_bytes() == \
        in_process(tmp_path, posts, files, monkeypatch, batch_threads=7)
    assert out.prepared == 30 - 5  # every section but each batch's last (the file's end when written)
    assert pools[0].failed == 0 and gone(pools[0].pids)


def test_a_worker_that_dies_leaves_its_sections_to_the_batches(tmp_path: Path, pools: list[PreparePool],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    real = ArchiveWriter.prepare_many

    def dies_on_thread_4(self, threads, media_path):
        if os.getpid() != parent and any(t.root.id == "41" for t in threads):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, threads, media_path)

    parent = os.getpid()
    monkeypatch.setattr(ArchiveWriter, "prepare_many", dies_on_thread_4)
    posts, files = account()
    out = backup(FakeReader(posts, files=files), cfg(tmp_path / "pool"), batch_threads=7)
    assert (tmp_path / "pool" / "threads" / "mastodon.md").read_bytes() == \
        in_process(tmp_path, posts, files, monkeypatch, batch_threads=7)
    # worker 1 had chunks 1, 3, 5, 7, 9 (threads 3-5, 9-11, ...): all of them are the batches' own work
    assert pools[0].failed == 5 and out.prepared == 30 - 5 - 15 + 2  # (two batch ends fall in those chunks)
    assert gone(pools[0].pids)


def test_a_refused_write_is_refused_as_without_workers(tmp_path: Path, pools: list[PreparePool]) -> None:
    config = cfg(tmp_path)
    archive = tmp_path / "threads" / "mastodon.md"
    archive.parent.mkdir()
    original = b"# Mine\n\n## Notes\n\n```\nunclosed code\n"
    archive.write_bytes(original)
    posts, files = account()
    with pytest.raises(ArchiveError, match="open code block or HTML block"):
        backup(FakeReader(posts, files=files), config)
    assert archive.read_bytes() == original
    assert len(pools) == 1 and gone(pools[0].pids)


def test_ctrl_c_during_the_batches_leaves_no_worker(tmp_path: Path, pools: list[PreparePool],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self, *args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(ArchiveWriter, "write", interrupted)
    posts, files = account()
    with pytest.raises(KeyboardInterrupt):
        backup(FakeReader(posts, files=files), cfg(tmp_path))
    assert len(pools) == 1 and gone(pools[0].pids)


def test_no_workers_for_a_small_run_a_dry_run_or_a_crlf_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    monkeypatch.setattr(PreparePool, "__init__", lambda self, *a, **kw: started.append(1))
    posts, files = account(12)
    monkeypatch.setattr(prepare_pool, "MIN_THREADS", 13)
    backup(FakeReader(posts, files=files), cfg(tmp_path / "small"))
    monkeypatch.setattr(prepare_pool, "MIN_THREADS", 1)
    backup(FakeReader(posts, files=files), cfg(tmp_path / "dry"), dry_run=True)
    crlf = tmp_path / "crlf" / "threads" / "mastodon.md"
    crlf.parent.mkdir(parents=True)
    crlf.write_bytes(b"# Mine\r\n")
    backup(FakeReader(posts, files=files), cfg(tmp_path / "crlf"))
    assert started == []


def test_what_a_worker_sends_back_holds_no_posts(tmp_path: Path) -> None:
    """The parent puts its own post objects back (the batch compares them by identity)."""
    import pickle

    w = writer(tmp_path / "a.md")
    threads = threads_of(3)
    for t, prep in zip(threads, w.prepare_many(threads, media_path), strict=True):
        sent = pickle.loads(pickle.dumps(dataclasses.replace(prep, posts=())))
        w.keep(dataclasses.replace(sent, posts=tuple(t.posts)))
    assert w._reusable(threads[1], w._prepared[threads[1].root.id].title, "\n") is not None


def test_ctrl_c_while_the_workers_start_leaves_no_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real = PreparePool._start

    def interrupted(self: PreparePool, *args, **kw) -> None:
        real(self, *args, **kw)
        started.extend(proc.pid for proc, _ in self._procs)
        raise KeyboardInterrupt  # (before the caller holds the pool: it cannot close it)

    monkeypatch.setattr(PreparePool, "_start", interrupted)
    monkeypatch.setattr(prepare_pool, "MIN_THREADS", 1)
    monkeypatch.setattr(prepare_pool, "CHUNK", 3)
    posts, files = account()
    with pytest.raises(KeyboardInterrupt):
        backup(FakeReader(posts, files=files), cfg(tmp_path))
    assert len(started) == 2 and gone(started)


@given(st.lists(st.sampled_from([b"a", b"\n", b"\r\n", b"", b"## x\n"]), max_size=30).map(b"".join), st.data())
def test_the_changed_part_is_found_where_line_starts_puts_it(data: bytes, pick: st.DataObject) -> None:
    """`_verify` finds the first changed line by counting from the nearer end of the file, not by listing
    every line start of it (a 10 MB archive per batch): the same offset."""
    from crossposter.metadata import line_starts

    starts = line_starts(data)
    line = pick.draw(st.integers(1, len(starts)))
    assert writer_module._line_offset(data, line) == starts[line - 1]


def test_a_worker_that_hangs_leaves_its_sections_to_the_batches(tmp_path: Path, pools: list[PreparePool],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Alive but silent (say a lock held by another thread when it was forked): the backup does not hang."""
    real = ArchiveWriter.prepare_many

    def hangs_on_thread_4(self, threads, media_path):
        if os.getpid() != parent and any(t.root.id == "41" for t in threads):
            time.sleep(3600)
        return real(self, threads, media_path)

    parent = os.getpid()
    monkeypatch.setattr(ArchiveWriter, "prepare_many", hangs_on_thread_4)
    monkeypatch.setattr(prepare_pool, "WAIT", 0.5)
    posts, files = account()
    backup(FakeReader(posts, files=files), cfg(tmp_path / "pool"), batch_threads=7)
    assert (tmp_path / "pool" / "threads" / "mastodon.md").read_bytes() == \
        in_process(tmp_path, posts, files, monkeypatch, batch_threads=7)
    assert pools[0].failed == 5 and gone(pools[0].pids)  # (the hung worker killed and reaped at the end)
