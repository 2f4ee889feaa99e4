"""Tokens → posts: pack a thread into size-limited posts by one platform's counting rule.

Packing is greedy (each post takes as much as fits) but the cut itself goes to
the best boundary in reach: sub-section > paragraph > list item > line >
sentence > clause > word, ignoring boundaries that would leave a post less
than a third full. Lengths of tokens and separators are counted once and
summed (they are additive for every platform's rule as long as nothing spans
white space); every finished post is then counted again as a whole with
`counting.fits`, so the sum is never trusted blindly.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from math import ceil
from operator import add
from typing import NamedTuple

from crossposter import counting
from crossposter.counting import BLUESKY_MAX_BYTES
from crossposter.memo import BoundedCache
from crossposter.model import Diagnostic, Facet, ImageRef, Post
from crossposter.render import CLAUSE, SECTION, SENTENCE, Stream, Token

MAX_IMAGES = 4
MIN_FILL = 1 / 3  # a boundary that leaves a post less full than this is not worth preferring


@dataclass
class SplitResult:
    posts: list[Post]
    errors: list[Diagnostic]


class _Packing(NamedTuple):
    """What `_pack` chose: post boundaries, the tokens too long for a post, and exact lengths known."""

    ranges: list[tuple[int, int]]  # (first, last) token index of each post
    errors: list[Diagnostic]
    exact: dict[tuple[int, int], int]  # range -> its length, where the summed length is provably exact


_CACHE_MAX = 50_000


class _PlatformCaches:
    """Per platform, answers about token texts and separators kept across threads and archives (words
    repeat a lot, and counting a non-ASCII word costs a pattern match); see `crossposter.memo`."""

    def __init__(self) -> None:
        self.lengths: BoundedCache[str, int] = BoundedCache(_CACHE_MAX)
        #: whether a token text / a separator is "clean" (see _clean_test)
        self.clean_text: BoundedCache[str, bool] = BoundedCache(_CACHE_MAX)
        self.clean_sep: BoundedCache[str, bool] = BoundedCache(_CACHE_MAX)
        #: whether a token text holds one of _URL_MARKS
        self.marked: BoundedCache[str, bool] = BoundedCache(_CACHE_MAX)


_CACHES: dict[str, _PlatformCaches] = {}
_WORD_BYTES: BoundedCache[str, int] = BoundedCache(_CACHE_MAX)
#: A URL or mention always holds one of these (X: a "." before the TLD; Mastodon: "://" or "@").
_URL_MARKS = {"x": ".", "mastodon": ":/@"}
_WHITE_SPACE = " \t\n\r\f\v\u2028\u2029\u3000"  # what render puts between tokens


def _caches(platform: str) -> _PlatformCaches:
    caches = _CACHES.get(platform)
    if caches is None:
        caches = _CACHES.setdefault(platform, _PlatformCaches())  # setdefault: one wins if two threads race
    return caches


class _Lengths:
    """Per-platform length of token texts and separators (shared cache) and of whole posts (this split's)."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.cache = _caches(platform).lengths
        self.posts: dict[str, int] = {}

    def count(self, text: str) -> int:
        """`text`'s length, counted (no cache)."""
        return counting.length(self.platform, text) if text else 0

    def __call__(self, text: str) -> int:
        n = self.cache.get(text)
        return self.cache.put(text, self.count(text)) if n is None else n

    def post(self, text: str) -> int:
        """A whole post's length (not kept beyond this split: posts rarely repeat)."""
        n = self.posts.get(text)
        if n is None:
            n = self.posts[text] = self.count(text)
        return n


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def _indices_of(seq: list, value: object, start: int = 0) -> Iterator[int]:
    """Every index of `value` in `seq` from `start` on (list.index: no Python-level loop between hits)."""
    i = start - 1
    try:
        while True:
            i = seq.index(value, i + 1)
            yield i
    except ValueError:
        return


def _prefix_sums(first: Iterable[int], second: Iterable[int]) -> list[int]:
    """cum[i] = sum over j <= i of (first[j] + second[j])."""
    return list(accumulate(map(add, first, second)))


def numbering_suffix(i: int, n: int) -> str:
    return f"\n{i}/{n}"


def split(tokens: list[Token] | Stream, platform: str, limit: int, *, numbering: bool = False) -> SplitResult:
    """Split a thread's tokens into posts of at most `limit` by `platform`'s rule."""
    if not isinstance(tokens, Stream):
        tokens = Stream.of(tokens)
    lengths = _Lengths(platform)
    reserve = 0
    reserve_bytes = 0
    ranges: list[tuple[int, int]] = []
    errors: list[Diagnostic] = []
    exact: dict[tuple[int, int], int] = {}
    for _ in range(4):  # numbering width depends on the number of posts: iterate until stable
        ranges, errors, exact = _pack(tokens, platform, limit - reserve, lengths, BLUESKY_MAX_BYTES - reserve_bytes)
        if not numbering:
            break
        n = _count_posts(tokens, ranges)
        widest = numbering_suffix(n, n)
        if lengths(widest) <= reserve:
            break
        reserve, reserve_bytes = lengths(widest), len(widest.encode())
    posts = _assemble(tokens, ranges, platform, lengths, exact)
    if numbering and len(posts) > 1:
        n = len(posts)
        for i, post in enumerate(posts, 1):
            post.text += numbering_suffix(i, n) if post.text else numbering_suffix(i, n).lstrip("\n")
            post.length = -1
    for post in posts:
        if post.length < 0:
            post.length = lengths.post(post.text)
        too_long = post.length > limit or (platform == "bluesky" and counting.utf8_length(post.text) > BLUESKY_MAX_BYTES)
        if too_long and not any(e.line == post.line for e in errors):
            errors.append(Diagnostic(post.line, f"a post is {post.length}/{limit} long and cannot be cut "
                                         "further here; shorten the text", platform))
    return SplitResult(posts, errors)


def _count_posts(tokens: Stream, ranges: list[tuple[int, int]]) -> int:
    n = 0
    for a, b in ranges:
        images = sum(len(v) for k, v in tokens.images.items() if a <= k <= b)
        n += max(1, -(-images // MAX_IMAGES))
    return n


def _pack(tokens: Stream, platform: str, limit: int, L: _Lengths, max_bytes: int) -> _Packing:
    """Choose post boundaries as (first, last) token index ranges."""
    n = len(tokens)
    errors: list[Diagnostic] = []
    ranges: list[tuple[int, int]] = []
    if not n:
        return _Packing(ranges, errors, {})
    bluesky = platform == "bluesky"
    texts = tokens.texts
    seps = tokens.seps
    unique_texts, unique_seps = set(texts), set(seps)
    tl = L.cache.values_in_order(texts, L.count, unique_texts)
    # cum[i] = sum over j <= i of (sep_j + text_j); a post a..b measures cum[b] - cum[a] + tl[a].
    cum = _prefix_sums(L.cache.values_in_order(seps, L.count, unique_seps), tl)
    imgs = [0] * n
    for k, v in tokens.images.items():
        imgs[k] = len(v)
    # Ranges whose summed length is provably the platform's count of their text (see _clean_test): such a
    # post is not counted again.
    caches = _caches(platform)
    test = _clean_test(platform)
    bad_texts = caches.clean_text.keys_where(unique_texts, lambda x: test(x, False), False)
    bad_seps = caches.clean_sep.keys_where(unique_seps, lambda x: test(x, True), False)
    # Bluesky's byte cap can only bind when a token has more code points than clusters (not clean) or a
    # post of `limit` one-code-point clusters (4 bytes at most each) could pass it.
    bytes_bind = bluesky and bool(bad_texts or bad_seps or 4 * limit > max_bytes)
    if bytes_bind:
        tb = _WORD_BYTES.values_in_order(texts, _utf8_length, unique_texts)
        cb = _prefix_sums(_WORD_BYTES.values_in_order(seps, _utf8_length, unique_seps), tb)
    else:
        tb = cb = tl
    bad_t = [x in bad_texts for x in texts] if bad_texts else [False] * n
    bad_s = [x in bad_seps for x in seps] if bad_seps else [False] * n
    if platform != "bluesky" and "" in unique_seps:  # "example." right before "com" (no gap): one URL
        marks = _URL_MARKS[platform]
        marked = caches.marked.keys_where(unique_texts, lambda x: any(c in x for c in marks), True)
        if marked:
            for i in _indices_of(seps, "", 1):  # tokens joined without a gap (CJK)
                if texts[i - 1] in marked or texts[i] in marked:
                    bad_s[i] = True
    if any(bad_t) or any(bad_s):
        bt = list(accumulate(bad_t))
        bs = list(accumulate(bad_s))

        def exact(a: int, b: int) -> bool:
            return bt[b] - bt[a] + bad_t[a] == 0 and bs[b] == bs[a]
    else:
        def exact(a: int, b: int) -> bool:
            return True

    def size(a: int, b: int) -> int:
        return cum[b] - cum[a] + tl[a]

    def fits(a: int, b: int) -> bool:
        if size(a, b) > limit:
            return False
        return not bytes_bind or cb[b] - cb[a] + tb[a] <= max_bytes

    # image prefix sums: images in a..b = icum[b] - icum[a] + imgs[a]
    icum = list(accumulate(imgs))

    def furthest(start: int, end: int) -> int:
        """The last token that still fits after `start` (binary search on the prefix sums)."""
        w = bisect_right(cum, limit + cum[start] - tl[start], start, end + 1) - 1
        if bytes_bind:
            w = min(w, bisect_right(cb, max_bytes + cb[start] - tb[start], start, end + 1) - 1)
        if icum[-1]:
            w = min(w, bisect_right(icum, MAX_IMAGES + icum[start] - imgs[start], start, end + 1) - 1)
        return w

    # sections: a SECTION gap always starts a new post
    strengths = tokens.strengths
    if max(strengths) > SECTION:  # not from render: any strength above SECTION also starts a group
        group_starts = [i for i, st in enumerate(strengths) if st >= SECTION]
    else:  # a few SECTION gaps among many: list.index finds them without a Python loop
        group_starts = list(_indices_of(strengths, SECTION))
    if not group_starts or group_starts[0]:
        group_starts.insert(0, 0)
    group_starts.append(n)
    for g in range(len(group_starts) - 1):
        start, end = group_starts[g], group_starts[g + 1] - 1
        first_range = len(ranges)
        while start <= end:
            if not fits(start, start):
                tok_text = texts[start]
                shown = tok_text if len(tok_text) <= 60 else tok_text[:57] + "..."
                errors.append(Diagnostic(tokens.lines[start], f"{shown!r} is {tl[start]} long, longer than a whole "
                                         f"{platform} post ({limit}); shorten it or break it with spaces",
                                         platform))
                ranges.append((start, start))
                start += 1
                continue
            w = max(furthest(start, end), start)
            if w == end and (exact(start, end) or _really_fits(texts, seps, start, end, platform, limit, max_bytes, L)):
                ranges.append((start, end))
                break
            k = _best_cut(strengths, start, min(w, end - 1), cum, tl, limit)
            while k - 1 > start and not (exact(start, k - 1)
                                         or _really_fits(texts, seps, start, k - 1, platform, limit, max_bytes, L)):
                # the summed lengths were off (e.g. X sees a URL across tokens): take less
                k = _best_cut(strengths, start, k - 2, cum, tl, limit)
            ranges.append((start, k - 1))
            start = k
        _rebalance_tail(strengths, ranges, first_range, size, fits, imgs, limit)
    return _Packing(ranges, errors, {(a, b): size(a, b) for a, b in ranges if exact(a, b)})


def _clean_test(platform: str) -> Callable[[str, bool], bool]:
    """When the platform's length of a concatenation is provably the sum of its parts' lengths.

    Grapheme clusters: a cluster can only span two code points when one of them is "complex"
    (`counting.has_complex`: combining marks, ZWJ, CR, Hangul jamo, regional indicators...), so parts
    without one add up; UTF-8 bytes always add up. Mastodon also rewrites URLs and `@user@domain`: parts
    without ":" or "@" leave nothing to rewrite.

    URLs and mentions (Mastodon, X) never span white space, and the rules that find them look at their
    neighbours only for "not a letter, digit, @..." (white space and the start of a text both qualify) or
    for what may continue a path or query (never ASCII white space, nor any for X): so each token's URLs
    are the same alone and in the post, and its counted length adds up, as long as tokens are separated
    by white space (ASCII only for Mastodon, whose query characters include U+3000); tokens joined without
    a gap (CJK) are exact only when neither holds a URL mark (`_URL_MARKS`).

    X weighs code points after NFC: an NFC text stays NFC after a part that starts with a starter that
    composes with nothing before it (combining class 0 and not "complex": every code point that can be the
    second of a canonical composition is complex); emoji sequences only go on with complex code points
    (ZWJ, VS16, modifiers, keycap, tags, regional indicators). Everything else is counted as a whole post
    (`_really_fits`).
    """
    has_complex = counting.has_complex

    def grapheme_clean(text: str, is_sep: bool) -> bool:
        if text.isascii():
            return "\r" not in text and (is_sep or text != "")
        return not has_complex(text) and (is_sep or text != "")

    if platform == "bluesky":
        return grapheme_clean
    if platform == "mastodon":
        def mastodon_clean(text: str, is_sep: bool) -> bool:
            if is_sep:  # a URL's query may run on over U+3000 and other non-ASCII white space
                return text.isascii() and grapheme_clean(text, True)
            return grapheme_clean(text, False)
        return mastodon_clean

    def x_clean(text: str, is_sep: bool) -> bool:
        if is_sep:
            return text.strip(_WHITE_SPACE) == ""
        if not text:
            return False
        if text.isascii():
            return True
        first = text[0]
        return (unicodedata.is_normalized("NFC", text) and not has_complex(first)
                and unicodedata.combining(first) == 0)
    return x_clean


def _really_fits(texts: list[str], seps: list[str], a: int, b: int, platform: str, limit: int, max_bytes: int,
                 L: _Lengths) -> bool:
    """Count the post as a whole: the summed token lengths are checked, never trusted."""
    text = texts[a] + "".join(map(add, seps[a + 1:b + 1], texts[a + 1:b + 1]))
    if platform == "bluesky" and len(text.encode()) > max_bytes:
        return False
    return L.post(text) <= limit


def _best_cut(strengths: list[int], start: int, w: int, cum: list[int], tl: list[int], limit: int) -> int:
    """The token that starts the next post: the strongest gap in reach, the latest among equals.

    Gaps that would leave the post under MIN_FILL count only when no other gap is in reach. The sizes
    grow with k, so the gaps that leave enough are the k from k0 on (a bisection on the prefix sums).
    """
    base = cum[start] - tl[start]  # size(start, k - 1) == cum[k - 1] - base
    need = ceil(limit * MIN_FILL)  # sizes are whole numbers: >= limit * MIN_FILL means >= its ceiling
    k0 = bisect_left(cum, base + need, start, w + 1) + 1
    for lo, hi in ((k0, w + 1), (start + 1, min(k0 - 1, w + 1))):  # enough, then the fallback
        if lo > hi:
            continue
        window = strengths[lo:hi + 1]
        best = max(window)
        if best >= 0:
            return hi - window[::-1].index(best)  # the latest gap of that strength
    return w + 1


def _rebalance_tail(strengths, ranges, first_range: int, size, fits, imgs, limit: int) -> None:
    """Avoid a last post of a word or two cut off mid-sentence: share the last two posts out evenly."""
    if len(ranges) - first_range < 2:
        return
    (a, b), (c, d) = ranges[-2], ranges[-1]
    if c != b + 1 or strengths[c] > CLAUSE:
        return
    if d - c >= 2 and size(c, d) >= limit * 0.15:
        return
    total = size(a, d)
    best = None
    for k in range(a + 1, d + 1):
        if not (fits(a, k - 1) and fits(k, d)):
            continue
        if sum(imgs[a:k]) > MAX_IMAGES or sum(imgs[k:d + 1]) > MAX_IMAGES:
            continue
        left, right = size(a, k - 1), size(k, d)
        key = (min(left, right) >= total * 0.25, min(strengths[k], SENTENCE), -abs(left - right))
        if best is None or key > best[0]:
            best = (key, k)
    if best is not None:
        k = best[1]
        ranges[-2:] = [(a, k - 1), (k, d)]


def _assemble(tokens: Stream, ranges: list[tuple[int, int]], platform: str, L: _Lengths,
              exact: dict[tuple[int, int], int]) -> list[Post]:
    """Posts for the ranges; `length` is the exact summed length where known, else -1 (count the text).

    A post's text is one join; only the few tokens with facets, links or images are visited one by one.
    """
    bluesky = platform == "bluesky"
    texts = tokens.texts
    joined = list(map(add, tokens.seps, texts))  # how a token reads after another one in the same post
    tok_facets, tok_links, tok_images = tokens.facets, tokens.links, tokens.images
    special = sorted({*tok_links, *tok_images, *(tok_facets if bluesky else ())})
    ends = list(accumulate(map(len, joined))) if bluesky and special else []
    posts: list[Post] = []
    for a, b in ranges:
        text = texts[a] + "".join(joined[a + 1:b + 1])
        facets: list[list] = []  # [byte_start, byte_end, kind, value, token index]
        links: list[str] = []
        images: list[ImageRef] = []
        ascii_text = None
        for j in range(bisect_left(special, a), bisect_right(special, b)):
            i = special[j]
            facets_i = tok_facets.get(i) if bluesky else None
            if facets_i:
                # where the token starts in the post (rare: only tokens with a link, tag or mention)
                at = 0 if i == a else ends[i] - ends[a] + len(texts[a]) - len(texts[i])
                if ascii_text is None:
                    ascii_text = text.isascii()
                before = at if ascii_text else len(text[:at].encode())
                tok_text = texts[i]
                for fs, fe, kind, value, continues in facets_i:
                    bs = before + len(tok_text[:fs].encode())
                    be = before + len(tok_text[:fe].encode())
                    prev = facets[-1] if facets else None
                    if continues and prev and prev[2] == kind and prev[3] == value and prev[4] == i - 1:
                        prev[1] = be  # one link whose text spans several words stays one facet
                        prev[4] = i
                    else:
                        facets.append([bs, be, kind, value, i])
            if i in tok_links:
                links.extend(tok_links[i])
            if i in tok_images:
                images.extend(tok_images[i])
        kept = [Facet(f[0], f[1], f[2], f[3]) for f in facets] if facets else []
        if len(images) <= MAX_IMAGES:
            posts.append(Post(text=text, length=exact.get((a, b), -1), facets=kept, images=images, links=links,
                              line=tokens.lines[a]))
            continue
        chunks = [images[i:i + MAX_IMAGES] for i in range(0, len(images), MAX_IMAGES)]
        posts.append(Post(text=text, length=exact.get((a, b), -1), facets=kept, images=chunks[0], links=links,
                          line=tokens.lines[a]))
        for extra in chunks[1:]:
            posts.append(Post(text="", length=0, images=extra, line=extra[0].line))
    return posts
