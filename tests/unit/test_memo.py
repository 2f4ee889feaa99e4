"""The pipeline's one cache helper, and the splitter with its caches under eviction from two threads."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from crossposter import memo
from crossposter.render import blocks, tokenize_streams
from crossposter.split import split


def test_cache_stays_bounded_and_evicts_the_oldest_first() -> None:
    cache: memo.BoundedCache[int, int] = memo.BoundedCache(10)
    for i in range(100):
        cache.put(i, i * i)
        assert len(cache) <= 10
    assert cache.get(99) == 99 * 99
    assert cache.get(0) is None


def test_values_for_answers_every_key_even_past_the_bound() -> None:
    cache: memo.BoundedCache[str, int] = memo.BoundedCache(4)
    words = {f"w{i}" for i in range(50)}
    got = cache.values_for(words, len)
    assert got == {w: len(w) for w in words}
    assert len(cache) <= 4


def test_values_in_order_and_keys_where_answer_every_key_even_past_the_bound() -> None:
    """The splitter's two readers: each key's value in the sequence's order (repeats included), and the keys
    whose value is true or false, however few of them the cache can hold."""
    words = [f"w{i % 37}" * (i % 3 + 1) for i in range(200)]
    lengths: memo.BoundedCache[str, int] = memo.BoundedCache(4)
    assert lengths.values_in_order(words, len) == [len(w) for w in words]
    assert lengths.values_in_order(words, len, set(words)) == [len(w) for w in words]
    assert len(lengths) <= 4
    even: memo.BoundedCache[str, bool] = memo.BoundedCache(4)
    assert even.keys_where(set(words), lambda w: len(w) % 2 == 0, True) == {w for w in words if len(w) % 2 == 0}
    assert even.keys_where(set(words), lambda w: len(w) % 2 == 0, False) == {w for w in words if len(w) % 2}
    assert len(even) <= 4


def test_a_cache_needs_room() -> None:
    with pytest.raises(ValueError):
        memo.BoundedCache(1)


_ARCHIVES = [f"word{i} " * 3 + " ".join(f"w{i}x{j} 日本語{j} e\u0301{j} https://e{j}.org/{i}" for j in range(40))
             for i in range(30)]


def _plan(markdown: str) -> list[list[str]]:
    streams = tokenize_streams(blocks(markdown, 1, Path("/nonexistent")), ["bluesky", "mastodon", "x"])
    return [[p.text for p in split(streams[name], name, 50, numbering=True).posts] for name in streams]


def test_two_threads_planning_at_once_give_what_one_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every cache shrunk to 3 entries, eviction runs between a split's filling of a cache and its
    reads; the old caches (cleared whole at a cap) raised KeyError here."""
    expected = [_plan(md) for md in _ARCHIVES]  # one thread; also creates every per-platform cache
    for cache in memo.all_caches():
        monkeypatch.setattr(cache, "maxsize", 3)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    failures: list[str] = []

    def worker() -> None:
        try:
            for _ in range(3):
                for md, want in zip(_ARCHIVES, expected, strict=True):
                    if _plan(md) != want:
                        failures.append(f"different posts for {md[:30]!r}")
        except Exception as e:  # noqa: BLE001 - a crash in the thread is the failure this test looks for
            failures.append(repr(e))

    try:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert failures == []
