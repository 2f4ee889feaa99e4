"""The one kind of cache the text pipeline keeps across threads and archives: bounded and thread-safe.

Rendering and splitting look the same words up again and again (a word's length on a platform, the
cut strength after it, where CJK text may be cut, whether it can hide a URL), so those answers are
kept between threads. A cache lives as long as the process (the daemon's, for days), so each one is
bounded; and two threads may plan at once (the preview server, tests), so no reader may ever see a key
vanish between checking for it and reading it: readers take what they need into a dict of their own
(`values_for`), and eviction drops the oldest half instead of clearing everything at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, islice
from operator import not_
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_ALL: list[BoundedCache] = []  # caches are module-level: they live as long as the process anyway


def all_caches() -> list[BoundedCache]:
    """Every cache made so far (for tests that shrink them to make eviction happen all the time)."""
    return list(_ALL)


class BoundedCache(Generic[K, V]):
    """A memo of a pure function's answers, at most `maxsize` of them, the oldest evicted first.

    `get` is the dict's own bound method (lock-free: one dict read is atomic in CPython, and a miss
    only means computing again), so hot loops can `map` it; every write goes through the lock.
    Values are never None (None means "not known" to `get`).
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 2:
            raise ValueError("a cache needs room for at least two entries")
        self.maxsize = maxsize
        self._data: dict[K, V] = {}
        self._lock = threading.Lock()
        self.get: Callable[[K], V | None] = self._data.get
        _ALL.append(self)

    def __len__(self) -> int:
        return len(self._data)

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._store(key, value)
        return value

    def _store(self, key: K, value: V) -> None:
        data = self._data
        if len(data) >= self.maxsize and key not in data:
            # Insertion order is age: drop the older half (a whole clear would make every
            # word be counted again at once; one at a time would make every insert pay).
            for old in list(islice(data, len(data) - self.maxsize // 2 + 1)):
                data.pop(old, None)
        data[key] = value

    def _fill(self, keys: set[K] | frozenset[K], compute: Callable[[K], V]) -> dict[K, V]:
        """Compute and store the keys not known yet; returns what it computed (kept even if evicted)."""
        data = self._data
        computed = {k: compute(k) for k in keys.difference(data)}
        if computed:
            with self._lock:
                if len(data) + len(computed) <= self.maxsize:  # room for all: one C-level update
                    data.update(computed)
                else:
                    for k, v in computed.items():
                        self._store(k, v)
        return computed

    def _again(self, key: K, computed: dict[K, V], compute: Callable[[K], V]) -> V:
        """A value that vanished between storing and reading it (evicted by another thread)."""
        value = computed.get(key)
        return compute(key) if value is None else value

    def values_for(self, keys: Iterable[K], compute: Callable[[K], V]) -> dict[K, V]:
        """Every key's value, computing the missing ones, as a dict the caller owns (safe to index)."""
        keys = keys if isinstance(keys, (set, frozenset)) else set(keys)
        computed = self._fill(keys, compute)
        out = dict(zip(keys, map(self._data.get, keys), strict=False))  # one set read twice: the same length
        out.update(computed)
        if None in out.values():  # evicted by another thread meanwhile: compute again
            for k, v in out.items():
                if v is None:
                    out[k] = compute(k)
        return out

    def values_in_order(self, seq: Sequence[K], compute: Callable[[K], V],
                        unique: set[K] | frozenset[K] | None = None) -> list[V]:
        """The value of each key of `seq`, in its order, as a list the caller owns (`unique`: set(seq), when
        the caller has it): one C-level read per key, where a dict of its own would cost a copy more."""
        computed = self._fill(set(seq) if unique is None else unique, compute)
        out = list(map(self._data.get, seq))
        if None in out:  # evicted by another thread meanwhile
            out = [self._again(k, computed, compute) if v is None else v for k, v in zip(seq, out, strict=True)]
        return out

    def keys_where(self, keys: set[K] | frozenset[K], compute: Callable[[K], V], truth: bool) -> set[K]:
        """The keys whose value is truthy (`truth`) or falsy, computing the missing ones: a set the caller
        owns, found without a Python-level loop over the keys."""
        computed = self._fill(keys, compute)
        order = list(keys)
        values = list(map(self._data.get, order))
        if None in values:  # evicted by another thread meanwhile
            values = [self._again(k, computed, compute) if v is None else v
                      for k, v in zip(order, values, strict=True)]
        return set(compress(order, values if truth else map(not_, values)))

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
