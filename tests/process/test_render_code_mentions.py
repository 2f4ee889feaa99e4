"""Mentions and tags in code (issue 11): no facet where the platform lets us choose (Bluesky); a warning at the
line, for each platform that will notify somebody anyway (Mastodon and X find mentions in plain text)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crossposter.archive import read_archive
from crossposter.plan import PlanOptions, plan_thread
from crossposter.preview_html import render_html


def plan_of(folder: Path, body: str):
    path = folder / "archive.md"
    path.write_text(f"# Archive\n\n## A thread\n\n{body}", encoding="utf-8")
    archive = read_archive(path)
    return plan_thread(archive, archive.threads[0], PlanOptions(decode_images=False))


def test_bluesky_makes_no_mention_or_tag_facets_in_code(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "Run `notify @alice.bsky.social #build` now, @bob.bsky.social #ok\n\n"
                             "```\n@carol.bsky.social #tag\n```\n")
    post = plan.platforms["bluesky"].posts[0]
    assert [(f.kind, f.value) for f in post.facets] == [("mention", "bob.bsky.social"), ("tag", "ok")]


def test_mastodon_and_x_mentions_in_code_are_warnings_at_their_line(tmp_path: Path) -> None:
    body = "Plain text.\n\nUse `git log --author=@x` or `ping @alice`.\n\n```\nfirst line\ncc @bob@example.social\n```\n"
    plan = plan_of(tmp_path, body)
    got = sorted((w.line, w.platform, w.message.split(":")[0]) for w in plan.warnings)
    # body line 1 is file line 5: the paragraph is line 7, the fence's second content line is line 11
    # `=@x` is a mention on X only (twitter-text accepts "=" before the @, Mastodon does not); X reads no
    # mention of a name followed by another @
    assert got == [(7, "mastodon", "`@alice` in code"), (7, "x", "`@alice` in code"), (7, "x", "`@x` in code"),
                   (11, "mastodon", "`@bob@example.social` in code")], got
    assert any("so @alice is notified" in w.message for w in plan.warnings)


def test_the_warning_is_in_every_preview_format(tmp_path: Path) -> None:
    archive = tmp_path / "archive.md"
    archive.write_text("# A\n\n## T\n\nSay `hi @alice` there.\n", encoding="utf-8")
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "crossposter", "preview", str(archive), "--format", "json"],
                         capture_output=True, text=True, env=env, check=True).stdout
    warnings = json.loads(out)["threads"][0]["warnings"]
    assert {(w["line"], w["platform"]) for w in warnings} == {(5, "mastodon"), (5, "x")}
    text = subprocess.run([sys.executable, "-m", "crossposter", "preview", str(archive)],
                          capture_output=True, text=True, env=env, check=True).stdout
    assert text.count("`@alice` in code") == 2
    page = render_html([plan_of(tmp_path, "Say `hi @alice` there.\n")])
    assert page.count("`@alice` in code") >= 2
