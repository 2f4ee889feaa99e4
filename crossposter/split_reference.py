"""The splitter's reference: `split.py`'s packing rules written out plainly, slow and obviously correct.

`split.split` is tuned hard (prefix sums, bisections, a proof of when summed token lengths equal the
platform's count). This module is its executable specification: the same documented rules, but every
candidate post is joined and counted as a whole with `counting.length` (and its UTF-8 bytes for
Bluesky), candidates are tried one by one, and nothing is cached. A hypothesis test
(`tests/unit/test_split_reference.py`) compares the two on generated archives.

It lives in the package, next to `split.py`, rather than under `tests/`, so that tools (`tools/`) can use
it as an oracle too; nothing in the application imports it.

The rules (`split.py`'s module docstring and `_pack`/`_best_cut`/`_rebalance_tail`):

1. A gap of strength >= SECTION starts a new post; the thread's first token starts one.
2. Greedy: a post starting at token `a` reaches as far as the tokens fit: the longest run a..w whose
   every prefix fits the limit (and Bluesky's byte cap) and holds at most MAX_IMAGES images.
3. If the rest of the section fits, it is the post. Otherwise the cut goes to the strongest gap in reach
   (a gap k in a+1..w+1, never past the section's last token), the latest among equals, ignoring gaps
   that leave the post shorter than MIN_FILL of the limit unless no other gap is in reach.
4. A token that does not fit alone is an error and a post of its own.
5. When the last post of a section starts after a gap weaker than a sentence end and is short (under
   three tokens or 15% of the limit), the last two posts are shared out again at the gap that gives
   (both halves at least a quarter, the strongest gap up to a sentence end, the most even halves).
6. More than MAX_IMAGES images in a post: the extra images go into posts of their own, without text.
7. Numbering: the widest suffix ("\\nN/N") is reserved in every post (in units and in bytes), the
   packing repeated until the number of posts stops changing the reserve (at most 4 rounds), then
   "\\ni/N" is appended to each post of a thread of more than one post.

Where the fast path is defined differently: it decides with token lengths summed (counted once per
token and separator), which equal the whole post's count whenever no grapheme cluster, URL or
mention spans a gap, and checks a finished post as a whole. The reference records whether every count it
made equalled that sum (`additive`); when it did, the fast path must give exactly the same posts; when it
did not (e.g. X reading `example.` and `com` joined without a gap as one URL), the two may cut in
different places, and only the properties hold (every post fits, no token lost or reordered).
"""

from __future__ import annotations

from math import ceil
from typing import NamedTuple

from crossposter import counting
from crossposter.counting import BLUESKY_MAX_BYTES
from crossposter.render import CLAUSE, SECTION, SENTENCE, Token

MAX_IMAGES = 4
MIN_FILL = 1 / 3


class ReferencePost(NamedTuple):
    """A post of the reference split: its text, the tokens it holds and how many images."""

    text: str
    first: int  # token range first..last (-1, -1 for an images-only overflow post)
    last: int
    images: int


class ReferenceSplit(NamedTuple):
    posts: list[ReferencePost]
    #: whether every count made equalled the sum of its tokens' and separators' counts (see module doc)
    additive: bool
    #: tokens too long for a post of their own
    too_long: list[int]


class _Packer:
    """One packing pass at one limit (limit and byte cap already reduced by the numbering reserve)."""

    def __init__(self, tokens: list[Token], platform: str, limit: int, max_bytes: int) -> None:
        self.tokens = tokens
        self.platform = platform
        self.limit = limit
        self.max_bytes = max_bytes
        self.additive = True

    def text(self, a: int, b: int) -> str:
        toks = self.tokens
        return toks[a].text + "".join(t.sep + t.text for t in toks[a + 1:b + 1])

    def size(self, a: int, b: int) -> int:
        """The platform's count of the post a..b, counted whole (and compared with the summed counts)."""
        count = counting.length
        real = count(self.platform, self.text(a, b))
        toks = self.tokens
        summed = count(self.platform, toks[a].text) + sum(
            count(self.platform, t.sep) + count(self.platform, t.text) for t in toks[a + 1:b + 1])
        if real != summed:
            self.additive = False
        return real

    def images(self, a: int, b: int) -> int:
        return sum(len(t.images or ()) for t in self.tokens[a:b + 1])

    def fits(self, a: int, b: int) -> bool:
        """Within the limit and (Bluesky) the byte cap; images are checked apart, like the fast path."""
        if self.platform == "bluesky" and len(self.text(a, b).encode("utf-8")) > self.max_bytes:
            return False
        return self.size(a, b) <= self.limit

    def furthest(self, a: int, end: int) -> int:
        """The last token b such that every post a..b' (b' <= b) fits; a - 1 when not even a..a does."""
        b = a - 1
        while b < end and self.fits(a, b + 1) and self.images(a, b + 1) <= MAX_IMAGES:
            b += 1
        return b

    def best_cut(self, a: int, w: int) -> int:
        """The first token of the next post: rule 3, gaps a+1..w+1."""
        strength = [t.strength for t in self.tokens]
        need = ceil(self.limit * MIN_FILL)
        gaps = range(a + 1, w + 2)
        enough = [k for k in gaps if self.size(a, k - 1) >= need]
        for candidates in (enough, [k for k in gaps if k not in enough]):
            if candidates:
                best = max(strength[k] for k in candidates)
                return max(k for k in candidates if strength[k] == best)
        return w + 1

    def section(self, start: int, end: int, too_long: list[int]) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        while start <= end:
            if not self.fits(start, start):
                too_long.append(start)
                ranges.append((start, start))
                start += 1
                continue
            w = max(self.furthest(start, end), start)
            if w == end:
                ranges.append((start, end))
                break
            k = self.best_cut(start, min(w, end - 1))
            ranges.append((start, k - 1))
            start = k
        self.rebalance_tail(ranges)
        return ranges

    def rebalance_tail(self, ranges: list[tuple[int, int]]) -> None:
        """Rule 5."""
        if len(ranges) < 2:
            return
        (a, _), (c, d) = ranges[-2], ranges[-1]
        if self.tokens[c].strength > CLAUSE:
            return
        if d - c >= 2 and self.size(c, d) >= self.limit * 0.15:
            return
        total = self.size(a, d)
        best = None
        for k in range(a + 1, d + 1):
            if not (self.fits(a, k - 1) and self.fits(k, d)):
                continue
            if self.images(a, k - 1) > MAX_IMAGES or self.images(k, d) > MAX_IMAGES:
                continue
            left, right = self.size(a, k - 1), self.size(k, d)
            key = (min(left, right) >= total * 0.25, min(self.tokens[k].strength, SENTENCE), -abs(left - right))
            if best is None or key > best[0]:
                best = (key, k)
        if best is not None:
            ranges[-2:] = [(a, best[1] - 1), (best[1], d)]

    def pack(self) -> tuple[list[tuple[int, int]], list[int]]:
        """Rules 1-5 over the whole thread: post ranges and the tokens too long for a post."""
        n = len(self.tokens)
        starts = [i for i in range(n) if i == 0 or self.tokens[i].strength >= SECTION]
        ranges: list[tuple[int, int]] = []
        too_long: list[int] = []
        for g, start in enumerate(starts):
            end = starts[g + 1] - 1 if g + 1 < len(starts) else n - 1
            ranges.extend(self.section(start, end, too_long))
        return ranges, too_long


def _posts(packer: _Packer, ranges: list[tuple[int, int]]) -> list[ReferencePost]:
    """Rule 6: texts of the ranges, images over MAX_IMAGES in text-less posts after their post."""
    posts = []
    for a, b in ranges:
        images = packer.images(a, b)
        posts.append(ReferencePost(packer.text(a, b), a, b, min(images, MAX_IMAGES)))
        while images > MAX_IMAGES:
            images -= MAX_IMAGES
            posts.append(ReferencePost("", -1, -1, min(images, MAX_IMAGES)))
    return posts


def reference_split(tokens: list[Token], platform: str, limit: int, *, numbering: bool = False) -> ReferenceSplit:
    """Posts for `tokens` by the rules above (rule 7 for numbering)."""
    reserve = reserve_bytes = 0
    additive = True
    for _ in range(4):
        packer = _Packer(tokens, platform, limit - reserve, BLUESKY_MAX_BYTES - reserve_bytes)
        ranges, too_long = packer.pack()
        additive = additive and packer.additive
        posts = _posts(packer, ranges)
        if not numbering:
            break
        widest = f"\n{len(posts)}/{len(posts)}"
        if counting.length(platform, widest) <= reserve:
            break
        reserve, reserve_bytes = counting.length(platform, widest), len(widest.encode("utf-8"))
    if numbering and len(posts) > 1:
        n = len(posts)
        posts = [p._replace(text=p.text + f"\n{i}/{n}" if p.text else f"{i}/{n}") for i, p in enumerate(posts, 1)]
    return ReferenceSplit(posts, additive, too_long)
