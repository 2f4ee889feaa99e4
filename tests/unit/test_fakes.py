"""The platform fakes: one set of idempotency rules, kept in memory (`FakeAdapter`) or in a journal that
another process reads back (`JournalAdapter`, the daemon's end-to-end fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossposter.platforms.base import MaybePostedError, OutgoingPost, RejectedError
from crossposter.platforms.fakes import (
    FAKE_DELAY_ENV,
    FAKE_ENV,
    JOURNAL,
    FakeAdapter,
    JournalFakes,
    journal_fakes_from_env,
)


def post(text: str, index: int = 0, rkey: str | None = None) -> OutgoingPost:
    return OutgoingPost(text=text, index=index, thread_key="/a.md::T", rkey=rkey,
                        created_at="2026-12-01T09:00:00.000Z" if rkey else None)


def journal_pair(tmp_path: Path, name: str) -> tuple[FakeAdapter, FakeAdapter]:
    """Two adapters of the same account over one journal: as a daemon run and the next one see it."""
    fakes = JournalFakes(tmp_path / JOURNAL)
    return fakes.adapters([name])[name], fakes.adapters([name])[name]


def memory_pair(_tmp_path: Path, name: str) -> tuple[FakeAdapter, FakeAdapter]:
    """The in-memory fake has one process: both "runs" are the same object."""
    adapter = FakeAdapter(name)
    return adapter, adapter


@pytest.fixture(params=[memory_pair, journal_pair], ids=["memory", "journal"])
def pair(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    return lambda name: request.param(tmp_path, name)


def test_mastodon_idempotency_key_returns_the_first_status(pair) -> None:  # noqa: ANN001
    first, second = pair("mastodon")
    ref = first.publish(post("hello"), None, None)
    assert second.publish(post("hello"), None, None) == ref
    assert len(second.thread()) == 1
    assert second.publish(post("hello", index=1), ref, ref) != ref  # another position is another post


def test_x_refuses_the_same_text_and_finds_the_earlier_post(pair) -> None:  # noqa: ANN001
    first, second = pair("x")
    ref = first.publish(post("hello"), None, None)
    with pytest.raises(MaybePostedError):
        second.publish(post("hello"), None, None)
    assert second.find_recent("hello", None) == ref


def test_bluesky_rkey_addresses_the_record(pair) -> None:  # noqa: ANN001
    first, second = pair("bluesky")
    ref = first.publish(post("hello", rkey="3kabc"), None, None)
    again = second.publish(post("hello!", rkey="3kabc"), None, None)
    assert again.id == ref.id
    assert [(p.text, p.writes) for p in second.thread()] == [("hello!", 2)]
    assert second.lookup(ref.id).text == "hello!"


@pytest.mark.parametrize("name", ["bluesky", "mastodon", "x"])
def test_delete_removes_exactly_that_post_and_a_repeat_is_harmless(pair, name: str) -> None:  # noqa: ANN001
    first, later = pair(name)
    rkeys = [first.new_tid(), first.new_tid()] if name == "bluesky" else [None, None]
    keep = first.publish(post("stays", 0, rkeys[0]), None, None)
    gone = first.publish(post("goes", 1, rkeys[1]), keep, keep)
    first.delete(gone.id)
    later.delete(gone.id)  # a repeat (in the next run, for the journal): already gone counts as deleted
    assert later.lookup(gone.id) is None and later.lookup(keep.id) is not None
    assert [p.ref.id for p in later.thread()] == [keep.id]
    assert first.deleted == [gone.id]


def test_a_reply_to_an_unknown_post_is_refused(tmp_path: Path) -> None:
    journal, _ = journal_pair(tmp_path, "mastodon")
    stranger = FakeAdapter("mastodon").publish(post("elsewhere"), None, None)
    with pytest.raises(RejectedError):  # what a server answers; the daemon records it
        journal.publish(post("reply", 1), stranger, stranger)
    with pytest.raises(AssertionError):  # in memory: a publisher bug the test must see
        FakeAdapter("mastodon").publish(post("reply", 1), stranger, stranger)


def test_journal_ids_keep_growing_across_runs(tmp_path: Path) -> None:
    first, second = journal_pair(tmp_path, "mastodon")
    a = first.publish(post("one"), None, None)
    b = second.publish(post("two", 1), a, a)
    c = first.publish(post("three", 2), b, a)  # the first run's adapter sees the second's post
    assert int(a.id) < int(b.id) < int(c.id)
    assert [p.parent for p in first.thread()] == [None, a.id, b.id]


def test_the_fakes_are_chosen_from_the_environment_by_the_commands_only(tmp_path: Path) -> None:
    class Config:
        state_path = tmp_path / "state"

    assert journal_fakes_from_env(Config(), {}) is None
    assert journal_fakes_from_env(Config(), {FAKE_ENV: "0"}) is None
    fakes = journal_fakes_from_env(Config(), {FAKE_ENV: "1", FAKE_DELAY_ENV: "0.25"})
    assert fakes == JournalFakes(tmp_path / "state" / JOURNAL, 0.25)
    assert JournalFakes.from_json(fakes.to_json()) == fakes  # as the publisher child receives it
