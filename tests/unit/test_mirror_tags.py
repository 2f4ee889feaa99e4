"""`mirror.remove_tags`: out of the text posted to the targets, never out of the archive; facets and splitting
follow the text as posted; a post left with nothing is an error at its line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from crossposter.archive import read_archive
from crossposter.plan import PlanOptions, plan_thread

OPTS = PlanOptions(decode_images=False, remove_tags=("#xpost", "#nomirror"), remove_tags_from="bluesky")
FROM_MASTODON = PlanOptions(decode_images=False, remove_tags=("#xpost", "#nomirror"), remove_tags_from="mastodon")


def archive(tmp_path: Path, body: str, source: str = "bluesky") -> tuple:
    path = tmp_path / "threads.md"
    post_id = "113520001" if source == "mastodon" else "at://did:plc:abcdefghijklmnopqrstuvwx/app.bsky.feed.post/3l2abcdefgh2a"
    text = (f"# Threads\n\n## A thread\n<!-- crossposter\nsource: {source}\n{source}:\n"
            f"- {{id: '{post_id}', sha: 000000000000}}\n-->\n2026-12-01 12:00\n\n{body}")
    path.write_text(text, encoding="utf-8")
    a = read_archive(path)
    return a, a.threads[0], text, path


def texts(plan, platform: str) -> list[str]:  # noqa: ANN001
    return [p.text for p in plan.platforms[platform].posts]


def test_tags_leave_cleanly_and_bluesky_facets_follow_the_text(tmp_path: Path) -> None:
    a, t, text, path = archive(tmp_path, "Hello #xpost world #keep.\n\n#XPOST A second paragraph #nomirror\n\n"
                                         "---\n\nThe next post `#xpost in code` #xpost\nline two\n#xpost\n",
                                source="mastodon")
    plan = plan_thread(a, t, FROM_MASTODON, ["bluesky", "x"])
    assert not plan.errors, plan.errors
    expected = ["Hello world #keep.\n\nA second paragraph", "The next post #xpost in code\nline two"]
    assert texts(plan, "x") == texts(plan, "bluesky") == expected
    post = plan.platforms["bluesky"].posts[0]
    tags = [(f.value, post.text.encode()[f.byte_start:f.byte_end].decode()) for f in post.facets if f.kind == "tag"]
    assert tags == [("keep", "#keep")]
    assert path.read_text(encoding="utf-8") == text  # the archive is never touched


def test_a_post_of_nothing_but_removed_tags_is_an_error_at_its_line(tmp_path: Path) -> None:
    a, t, _text, _ = archive(tmp_path, "Words first.\n\n---\n\n#xpost #nomirror\n\n---\n\nWords last.\n")
    plan = plan_thread(a, t, OPTS, ["mastodon"])
    (err,) = plan.errors
    assert err.line == 15 and "nothing but #xpost, #nomirror" in err.message


def test_another_sources_thread_and_a_config_without_the_option_keep_their_tags(tmp_path: Path) -> None:
    a, t, _text, _ = archive(tmp_path, "Hello #xpost world.\n", source="mastodon")
    assert texts(plan_thread(a, t, OPTS, ["x"]), "x") == ["Hello #xpost world."]
    a, t, _text, _ = archive(tmp_path, "Hello #xpost world.\n")
    assert texts(plan_thread(a, t, PlanOptions(decode_images=False), ["x"]), "x") == ["Hello #xpost world."]


def test_splitting_counts_the_text_without_the_tags(tmp_path: Path) -> None:
    words = " ".join(["word"] * 55)  # 274 characters
    a, t, _text, _ = archive(tmp_path, f"{words} #xpost\n")
    assert len(texts(plan_thread(a, t, PlanOptions(decode_images=False), ["x"]), "x")) == 2
    assert texts(plan_thread(a, t, OPTS, ["x"]), "x") == [words]


def test_the_config_builds_the_options_and_refuses_a_tag_both_skipped_and_removed(tmp_path: Path) -> None:
    import pytest

    from crossposter.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("platforms: {x: {enabled: true}}\nmirror: {from: bluesky, to: [x], remove_tags: ['#xpost']}\n")
    o = PlanOptions.of(load_config(cfg))
    assert (o.remove_tags, o.remove_tags_from) == (("#xpost",), "bluesky")
    cfg.write_text("platforms: {x: {enabled: true}}\n"
                   "mirror: {from: bluesky, to: [x], skip_tag: '#nomirror', remove_tags: ['#NoMirror']}\n")
    with pytest.raises(Exception, match="both `skip_tag`"):
        load_config(cfg)


WORD = st.sampled_from(["alpha", "beta", "#xpost", "#XPost", "#xposter", "#keep", "x#xpost", "gamma."])


@settings(max_examples=150, deadline=None)
@given(st.lists(WORD, min_size=1, max_size=12))
def test_property_tags_gone_other_words_kept_in_order_no_double_space(tmp_path_factory, words: list[str]) -> None:  # noqa: ANN001
    kept = [w for w in words if w.casefold() != "#xpost"]
    a, t, _text, _ = archive(tmp_path_factory.mktemp("p"), " ".join(words) + "\n")
    plan = plan_thread(a, t, OPTS, ["mastodon"])
    if not kept:
        assert any("nothing but" in e.message and e.line == 11 for e in plan.errors)
        return
    assert not plan.errors, plan.errors
    assert texts(plan, "mastodon") == [" ".join(kept)]
