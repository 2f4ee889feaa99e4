"""A mention never reaches the wrong person: it is live only on the platform that owns the account.

The archive form is a link to the profile (what `crossposter backup` writes): `[@alice.bsky.social](https://
bsky.app/profile/alice.bsky.social)`, `[@alice](https://mastodon.social/@alice)`, `[@alice](https://x.com/alice)`.
Whether a text mentions somebody is judged here with the platforms' own rules, written out from their sources
(not with the renderer's patterns): Mastodon's `Account::MENTION_RE` and twitter-text's `validMentionOrList`;
on Bluesky only a mention facet mentions.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from crossposter import counting
from crossposter.archive import read_archive
from crossposter.model import PLATFORMS, ThreadPlan
from crossposter.plan import PlanOptions, plan_thread
from crossposter.render import WORD_JOINER, inert, mention_of

OPTIONS = PlanOptions(decode_images=False, mastodon_instance="https://mastodon.social")

# mastodon/app/models/account.rb
_MASTODON = re.compile(r"(?<![=/\w])@(([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?)", re.I)
# twitter-text/js/src/regexp/validMentionOrList.js and endMentionMatch.js
_RT = "(?:rt|RT|rT|Rt)"
_X = re.compile(rf"(?:(?<=[^a-zA-Z0-9_!#$%&*@＠])|^|(?<=[^a-zA-Z0-9_+~.-]{_RT})|(?<=[^a-zA-Z0-9_+~.-]{_RT}:)"
                rf"|(?<=^{_RT})|(?<=^{_RT}:))[@＠]([a-zA-Z0-9_]{{1,20}})")
_X_END = re.compile(r"[@＠]|[A-Za-zÀ-ɏ]|://")
_URL = re.compile(r"https?://\S+")


def live(platform: str, post) -> list[str]:
    """Who `post` notifies on `platform`."""
    if platform == "bluesky":
        return [f.value for f in post.facets if f.kind == "mention"]
    text = post.text
    urls = [m.span() for m in _URL.finditer(text)]
    out = []
    for m in (_MASTODON if platform == "mastodon" else _X).finditer(text):
        if any(a <= m.start() < b for a, b in urls):
            continue  # a URL's path, not a mention (both platforms find URLs first)
        if platform == "x" and _X_END.match(text, m.end()):
            continue
        out.append(m.group(1))
    return out


def plan_of(folder: Path, body: str, options: PlanOptions = OPTIONS, meta: str = "") -> ThreadPlan:
    path = folder / "archive.md"
    path.write_text(f"# Archive\n\n## A thread\n{meta}\n{body}", encoding="utf-8")
    archive = read_archive(path)
    return plan_thread(archive, archive.threads[0], options)


def post_of(plan: ThreadPlan, platform: str):
    posts = plan.platforms[platform].posts
    assert len(posts) == 1, [p.text for p in posts]
    return posts[0]


BLUESKY = "[@alice.bsky.social](https://bsky.app/profile/alice.bsky.social)"
MASTODON = "[@alice](https://mastodon.social/@alice)"
X = "[@alice](https://x.com/alice)"


def test_bluesky_mention_is_live_on_bluesky_only(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, f"Thanks {BLUESKY}!\n")
    bluesky = post_of(plan, "bluesky")
    assert bluesky.text == "Thanks @alice.bsky.social!"
    assert live("bluesky", bluesky) == ["alice.bsky.social"]
    assert [(f.kind, f.byte_start, f.byte_end) for f in bluesky.facets] == [("mention", 7, 25)]
    for platform in ("mastodon", "x"):  # directions bluesky -> mastodon, bluesky -> x
        post = post_of(plan, platform)
        assert live(platform, post) == [], post.text
        assert post.text == f"Thanks @{WORD_JOINER}alice.bsky.social https://bsky.app/profile/alice.bsky.social!"


def test_mastodon_mention_is_live_on_mastodon_only(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, f"Thanks {MASTODON}!\n")
    mastodon = post_of(plan, "mastodon")
    assert mastodon.text == "Thanks @alice!" and live("mastodon", mastodon) == ["alice"]
    bluesky = post_of(plan, "bluesky")  # mastodon -> bluesky: a link to the profile, no mention
    assert live("bluesky", bluesky) == [] and bluesky.text == "Thanks @alice!"
    assert [(f.kind, f.value) for f in bluesky.facets] == [("link", "https://mastodon.social/@alice")]
    x = post_of(plan, "x")  # mastodon -> x
    assert live("x", x) == [] and x.text == f"Thanks @{WORD_JOINER}alice https://mastodon.social/@alice!"


def test_x_mention_is_live_on_x_only(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, f"Thanks {X}!\n")
    x = post_of(plan, "x")
    assert x.text == "Thanks @alice!" and live("x", x) == ["alice"]
    bluesky = post_of(plan, "bluesky")  # x -> bluesky
    assert live("bluesky", bluesky) == [] and [f.value for f in bluesky.facets] == ["https://x.com/alice"]
    mastodon = post_of(plan, "mastodon")  # x -> mastodon: not the instance's local @alice
    assert live("mastodon", mastodon) == [] and mastodon.text == f"Thanks @{WORD_JOINER}alice https://x.com/alice!"


def test_a_mastodon_mention_names_its_server_unless_it_is_the_configured_one(tmp_path: Path) -> None:
    body = "[@bob](https://other.example/@bob) [@carol@mastodon.social](https://mastodon.social/@carol)\n"
    assert post_of(plan_of(tmp_path, body), "mastodon").text == "@bob@other.example @carol"
    unknown = PlanOptions(decode_images=False)  # preview without config: the full address, never a guess
    post = post_of(plan_of(tmp_path, body, unknown), "mastodon")
    assert post.text == "@bob@other.example @carol@mastodon.social"
    assert live("mastodon", post) == ["bob@other.example", "carol@mastodon.social"]
    assert post.length == len("@bob @carol")  # Mastodon counts @user@domain as @user


def test_a_bluesky_mention_by_did_keeps_its_text_and_names_the_did(tmp_path: Path) -> None:
    did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    plan = plan_of(tmp_path, f"[@old-handle.bsky.social](https://bsky.app/profile/{did}) said so\n")
    post = post_of(plan, "bluesky")
    assert post.text == "@old-handle.bsky.social said so" and live("bluesky", post) == [did]


def test_a_link_naming_somebody_else_or_nobody_known_is_a_mention_nowhere(tmp_path: Path) -> None:
    body = "[@bob](https://x.com/alice) [@carol](https://example.com/carol) [@dave.bsky.social](https://bsky.app/profile/eve.bsky.social)\n"
    plan = plan_of(tmp_path, body)
    for platform in PLATFORMS:
        assert live(platform, post_of(plan, platform)) == [], platform


def test_mention_links_are_read_in_the_forms_backup_writes() -> None:
    assert mention_of("@alice.bsky.social", "https://bsky.app/profile/alice.bsky.social").platform == "bluesky"
    assert mention_of("@Alice", "https://twitter.com/alice").account == "alice"
    m = mention_of("@alice@home.example", "https://mastodon.social/@alice@home.example")
    assert (m.platform, m.account, m.host) == ("mastodon", "alice", "home.example")
    m = mention_of("@alice", "http://127.0.0.1:3000/users/alice")
    assert (m.platform, m.host) == ("mastodon", "127.0.0.1:3000")
    assert mention_of("@alice", "https://x.com/alice/status/1") is None
    assert mention_of("@alice", "https://bsky.app/profile/alice.bsky.social/post/3l") is None
    assert mention_of("@alice", "javascript:alert(1)") is None


def test_bare_mentions_of_a_backed_up_thread_are_live_on_its_source_only(tmp_path: Path) -> None:
    body = "Thanks @alice and @bob.bsky.social, see https://mastodon.social/@carol\n"
    for source, expect in (("x", {"x": ["alice", "bob"], "bluesky": [], "mastodon": []}),
                           ("bluesky", {"bluesky": ["bob.bsky.social"], "mastodon": [], "x": []}),
                           ("mastodon", {"mastodon": ["alice", "bob.bsky.social"], "bluesky": [], "x": []})):
        plan = plan_of(tmp_path, body, PlanOptions(decode_images=False, source=source))
        for platform in PLATFORMS:
            post = post_of(plan, platform)
            assert live(platform, post) == expect[platform], (source, platform, post.text)
            assert "https://mastodon.social/@carol" in post.text or platform == "bluesky"
            assert post.text.replace(WORD_JOINER, "") == post_of(plan_of(tmp_path, body), platform).text


def test_without_a_source_bare_mentions_are_as_today(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "Thanks @alice and @bob.bsky.social\n")
    assert live("bluesky", post_of(plan, "bluesky")) == ["bob.bsky.social"]
    assert post_of(plan, "mastodon").text == post_of(plan, "x").text == "Thanks @alice and @bob.bsky.social"


def test_inert_text_keeps_urls_and_e_mail_addresses() -> None:
    text = "write to me@example.com or @x, see https://mastodon.social/@carol and RT@bob ＠dave"
    assert inert(text) == ("write to me@example.com or @\u2060x, see https://mastodon.social/@carol and "
                           "RT@\u2060bob ＠\u2060dave")


_PIECE = st.sampled_from(["word", "@alice", "@bob.bsky.social", "@c@d.example", "日本語", "🧵", "é", "me@x.org",
                          "https://x.com/a", BLUESKY, MASTODON, X, "RT@z", "#tag", "end."])


@settings(max_examples=80, deadline=None)
@given(words=st.lists(_PIECE, min_size=1, max_size=60), limit=st.integers(min_value=60, max_value=300),
       source=st.sampled_from([None, "bluesky", "mastodon", "x"]))
def test_inert_mentions_keep_the_counting_rules(tmp_path_factory, words, limit: int, source) -> None:
    """Posts with word joiners still fit by each platform's own count, and that count is what the plan says."""
    folder = tmp_path_factory.mktemp("mentions")
    options = PlanOptions(decode_images=False, limits={p: limit for p in PLATFORMS}, source=source)
    plan = plan_of(folder, " ".join(words) + "\n", options)
    # off the source, only the mention links that platform owns may notify anybody
    owned = {"bluesky": {"alice.bsky.social"} if BLUESKY in words else set(),
             "mastodon": {"alice@mastodon.social"} if MASTODON in words else set(),  # no instance configured
             "x": {"alice"} if X in words else set()}
    for platform in PLATFORMS:
        for post in plan.platforms[platform].posts:
            assert post.length == counting.length(platform, post.text) <= limit, (platform, post.text)
            if source is not None and platform != source:
                assert set(live(platform, post)) <= owned[platform], (platform, post.text)


def test_the_terminal_preview_marks_exactly_the_mentions_that_notify(tmp_path: Path) -> None:
    from crossposter.preview_text import MENTION_STYLE, post_text

    plan = plan_of(tmp_path, f"{BLUESKY} {MASTODON} {X} `@zed`\n")
    marked = {}
    for platform in PLATFORMS:
        body = post_text(post_of(plan, platform), platform)
        marked[platform] = [body.plain[s.start:s.end] for s in body.spans if s.style == MENTION_STYLE]
    assert marked == {"bluesky": ["@alice.bsky.social"], "mastodon": ["@alice", "@zed"], "x": ["@alice", "@zed"]}
