"""How fast an X archive zip is read: `XArchiveReader.read()` against a bare `json.loads` of its tweets.js.

Generates a realistic archive of 10,000 posts (the fields X writes, numbers as strings, 30 % self-
replies in threads, 20 % replies to others, 10 % retweets, links, mentions, emoji, `&amp;`, 2 %
long posts with their note-tweet.js entry, 500 media files of 20-200 kB) and prints:

- `json.loads` of tweets.js's JSON part (the floor: X's format must be parsed),
- `read()` of the zip (unzipping, parsing, every post's text, spans, media and threads' fields),
- copying the media: `fetch_media` + writing each file, against plain zipfile reads + writes.

The issue's target for the whole import: under 3 × json.loads + copying the media.
Run: `python benchmarks/x_archive.py [N]` (prints, asserts nothing).
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crossposter.backup.source import build_threads  # noqa: E402
from crossposter.backup.x_archive import XArchiveReader  # noqa: E402

OWN_ID, OWN = "1234567890", "archivist"
WORDS = ("the archive stays the source of truth while threads split into posts for every platform and "
         "nothing typed is ever lost even when a service disappears overnight").split()
EXTRAS = ["😀", "🇧🇹", "👍🏽", "AT&T", "<3", "日本語", "naïve", "—", "#backup", "\n\n"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(t: int) -> str:
    st = time.gmtime(t)
    return (f"{DAYS[st.tm_wday]} {MONTHS[st.tm_mon - 1]} {st.tm_mday:02d} {st.tm_hour:02d}:{st.tm_min:02d}:"
            f"{st.tm_sec:02d} +0000 {st.tm_year}")


def _tweet(rng: random.Random, tid: int, t: int, parent: int | None, other: bool, retweet: bool,
           media_name: str | None, length: int) -> tuple[dict, str]:
    text, urls, mentions = "", [], []
    if other:
        mentions.append({"name": "Someone", "screen_name": "someone_else", "indices": ["0", "13"],
                         "id_str": "987654", "id": "987654"})
        text = "@someone_else "
    start = len(text)
    if retweet:
        mentions.append({"name": "Bob", "screen_name": "bob", "indices": ["3", "7"], "id_str": "55", "id": "55"})
        text = "RT @bob: "
    while len(text) < length:
        r = rng.random()
        if r < 0.06:
            tco = f"https://t.co/{rng.getrandbits(40):010x}"
            urls.append({"url": tco, "expanded_url": f"https://example.org/{rng.choice(WORDS)}?id={tid}&x=1",
                         "display_url": "example.org/…", "indices": [str(len(text)), str(len(text) + len(tco))]})
            text += tco + " "
        elif r < 0.09:
            h = rng.choice(["alice", "Bob_99", "carol"])
            mentions.append({"name": h, "screen_name": h, "indices": [str(len(text)), str(len(text) + 1 + len(h))],
                             "id_str": str(1000 + len(h)), "id": str(1000 + len(h))})
            text += "@" + h + " "
        elif r < 0.2:
            text += _esc(rng.choice(EXTRAS)) + " "
        else:
            text += rng.choice(WORDS) + " "
    text = text.rstrip()
    end = len(text)
    entities: dict = {"hashtags": [], "symbols": [], "user_mentions": mentions, "urls": urls}
    tweet: dict = {
        "edit_info": {"initial": {"editTweetIds": [str(tid)], "editableUntil": "2023-02-18T13:03:11.000Z",
                                  "editsRemaining": "5", "isEditEligible": False}},
        "retweeted": False, "source": "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
        "entities": entities, "display_text_range": [str(start), str(end)], "favorite_count": str(rng.randint(0, 99)),
        "id_str": str(tid), "truncated": False, "retweet_count": "0", "id": str(tid), "created_at": _when(t),
        "favorited": False, "full_text": text, "lang": "en",
    }
    if parent is not None:
        for k in ("in_reply_to_status_id_str", "in_reply_to_status_id"):
            tweet[k] = str(parent)
        uid = "987654" if other else OWN_ID
        tweet["in_reply_to_user_id_str"] = tweet["in_reply_to_user_id"] = uid
        tweet["in_reply_to_screen_name"] = "someone_else" if other else OWN
    if media_name:
        tco = f"https://t.co/m{tid % 10**8}"
        m = {"expanded_url": f"https://x.com/{OWN}/status/{tid}/photo/1", "indices": [str(end + 1), str(end + 24)],
             "url": tco, "media_url": f"http://pbs.twimg.com/media/{media_name}", "id_str": str(tid + 1),
             "id": str(tid + 1), "media_url_https": f"https://pbs.twimg.com/media/{media_name}",
             "sizes": {"large": {"w": "1024", "h": "768", "resize": "fit"}}, "type": "photo",
             "display_url": "pic.x.com/abc"}
        tweet["full_text"] = text + " " + tco
        entities["media"] = [m]
        tweet["extended_entities"] = {"media": [dict(m, ext_alt_text="A photo")]}
    return {"tweet": tweet}, text


def build(path: Path, n: int, n_media: int, seed: int = 7) -> bytes:
    """Write the archive; return tweets.js's bytes."""
    rng = random.Random(seed)
    items, notes, media = [], [], {}
    t = 1_500_000_000
    tid = 1_000_000_000_000_000_000
    last_own: int | None = None
    media_due = 0  # media files still to place: one every n / n_media posts, on the next post that can hold one
    for i in range(n):
        tid += rng.randint(10**6, 10**9)
        t += rng.randint(30, 20_000)
        kind = rng.random()
        other, retweet, parent = kind < 0.2, 0.2 <= kind < 0.3, None
        if other:
            parent = tid - 5
        elif 0.3 <= kind < 0.6 and last_own is not None:
            parent = last_own
        if (i * n_media) % n < n_media:
            media_due += 1
        long_post = not (other or retweet) and rng.random() < 0.02
        media_name = f"M{i:07d}.jpg" if media_due and not (retweet or long_post) else None
        media_due -= 1 if media_name else 0
        item, text = _tweet(rng, tid, t, parent, other, retweet, media_name, rng.randint(40, 270))
        if long_post:
            whole = text + " " + " ".join(rng.choice(WORDS) for _ in range(120))
            cut = whole[:260] + "… "
            selflink = "https://t.co/s" + str(tid % 10**8)
            item["tweet"]["full_text"] = cut + selflink
            item["tweet"]["display_text_range"] = ["0", str(len(cut) + len(selflink))]
            item["tweet"]["entities"] = {"hashtags": [], "symbols": [], "user_mentions": [], "urls": [
                {"url": selflink, "expanded_url": f"https://twitter.com/i/web/status/{tid}",
                 "indices": [str(len(cut)), str(len(cut) + len(selflink))]}]}
            notes.append({"noteTweet": {"noteTweetId": str(tid + 7), "createdAt": time.strftime(
                "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t)), "core": {"text": whole, "urls": [], "mentions": []}}})
        if media_name:
            media[f"{tid}-{media_name}"] = rng.randbytes(rng.randint(20_000, 200_000))
        if not (other or retweet):
            last_own = tid
        items.append(item)
    items.reverse()  # X writes newest first
    tweets_js = ("window.YTD.tweets.part0 = " + json.dumps(items, indent=2, ensure_ascii=False,
                                                          separators=(",", " : "))).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/manifest.js", "window.__THAR_CONFIG = " + json.dumps(
            {"userInfo": {"accountId": OWN_ID, "userName": OWN, "displayName": "A"}}))
        z.writestr("data/account.js", "window.YTD.account.part0 = " + json.dumps(
            [{"account": {"username": OWN, "accountId": OWN_ID, "createdAt": "2011-06-23T13:04:14.000Z"}}]))
        z.writestr("data/tweets.js", tweets_js)
        z.writestr("data/note-tweet.js", "window.YTD.note_tweet.part0 = " + json.dumps(notes, indent=2))
        for name, data in media.items():
            z.writestr(f"data/tweets_media/{name}", data, compress_type=zipfile.ZIP_STORED)
    return tweets_js


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "twitter-archive.zip"
        tweets_js = build(path, n, 500)
        payload = tweets_js[tweets_js.index(b"["):]
        reader = XArchiveReader(path)
        result = reader.read()
        # interleaved, so a busy machine slows both alike; CPU time beside wall time for the same reason
        runs: dict[str, list[tuple[float, float]]] = {"json": [], "read": []}
        for _ in range(7):
            runs["json"].append(timed(lambda: json.loads(payload)))
            runs["read"].append(timed(reader.read))
        t_json, c_json = (min(x[i] for x in runs["json"]) for i in (0, 1))
        t_read, c_read = (min(x[i] for x in runs["read"]) for i in (0, 1))
        threads = build_threads(result.posts)
        media = [m for p in result.posts for m in p.media]
        out = Path(tmp) / "media"
        out.mkdir()

        def copy_plain() -> None:
            with zipfile.ZipFile(path) as z:
                for m in media:
                    (out / m.filename).write_bytes(z.read(m.fetch))

        def copy_reader() -> None:
            for m in media:
                (out / m.filename).write_bytes(reader.fetch_media(m))

        copies: dict[str, list[float]] = {"plain": [], "reader": []}
        for _ in range(3):
            copies["plain"].append(timed(copy_plain)[0])
            copies["reader"].append(timed(copy_reader)[0])
        t_copy_plain, t_copy = min(copies["plain"]), min(copies["reader"])
        reader.close()
        mb = len(tweets_js) / 1e6
        size = path.stat().st_size / 1e6
        print(f"archive: {n:,} posts, tweets.js {mb:.1f} MB, zip {size:.1f} MB, {len(media)} media files")
        print(f"posts returned {len(result.posts):,}, threads {len(threads):,}, skipped {result.skipped.counts}")
        print(f"json.loads(tweets.js)          {t_json * 1000:8.1f} ms wall  {c_json * 1000:8.1f} ms CPU")
        print(f"XArchiveReader.read()          {t_read * 1000:8.1f} ms wall  {c_read * 1000:8.1f} ms CPU   "
              f"= {t_read / t_json:.2f} × json.loads (CPU {c_read / c_json:.2f} ×)")
        print(f"media copy, plain zipfile      {t_copy_plain * 1000:8.1f} ms")
        print(f"media copy, fetch_media        {t_copy * 1000:8.1f} ms")
        target = 3 * t_json + t_copy_plain
        print(f"import (read + media copy)     {(t_read + t_copy) * 1000:8.1f} ms   target 3 × json.loads + copy = "
              f"{target * 1000:.1f} ms: {(t_read + t_copy) / target:.2f} of it (the rest is the archive writer's)")
        print("best of 7 interleaved runs (media: of 3)")


if __name__ == "__main__":
    main()
