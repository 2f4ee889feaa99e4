"""The platform registry: every platform list and default comes from it, and a platform added there (and
nowhere else) is previewed like the built-in ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import get_args

import pytest

from crossposter import cli
from crossposter.archive import read_archive
from crossposter.plan import PlanOptions, plan_thread
from crossposter.platforms import registry
from crossposter.platforms.registry import PlatformName, PlatformSpec

ROOT = Path(__file__).resolve().parents[2]

#: A fourth platform that writes like Mastodon (written-out links, every URL 23, @user@host mentions) with
#: a smaller limit; its adapter module does not exist: a preview never loads one.
FOURTH = PlatformSpec(
    name="fourth", display="Fourth", dialect="mastodon", limit=120, config_limit=None,  # type: ignore[arg-type]
    characters_reserved_per_url=23, max_images=4, max_image_bytes=1_000_000, max_alt_text=40,
    max_image_pixels=None, refuses_repeats=True, limit_from_server=False, secret_variables=("FOURTH_TOKEN",),
    adapter="crossposter.platforms.fourth_does_not_exist", backup=None, placeholder_account="you@fourth.example",
    id_hint="a fourth-platform ID",
)

ARCHIVE = """# Threads

## A thread for four platforms

This first paragraph is long enough to need more than one post at a small limit, and it links to
https://example.com/a/very/long/path/that/counts/as/twenty-three/characters/on/mastodon?and=more so the
counting rule shows. It also names @alice@mastodon.example, who is a mention where Mastodon's rules apply.

A second paragraph repeats nothing and then ends.

![a picture with a description that is far too long for the fourth platform's alt limit](pic.png)

## Again

Same words.

---

Same words.

## Code

Type `@bob` to mention Bob.
"""


@pytest.fixture
def fourth() -> Iterator[PlatformSpec]:
    registry.register(FOURTH)
    try:
        yield FOURTH
    finally:
        registry.unregister(FOURTH.name)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    (tmp_path / "pic.png").write_bytes(  # a valid 1×1 PNG
        bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                      "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"))
    path = tmp_path / "threads.md"
    path.write_text(ARCHIVE, encoding="utf-8")
    return path


def test_the_builtin_platforms_are_the_registry_and_the_type() -> None:
    assert registry.names() == registry.BUILTIN == get_args(PlatformName) == ("bluesky", "mastodon", "x")
    for spec in registry.specs():
        assert spec.dialect == spec.name  # a built-in platform defines its own text rules
        module = spec.adapter_module()
        assert callable(module.from_config) and callable(module.warm_up)
    assert registry.get("bluesky").link_style == "facets" and registry.get("x").link_style == "written"
    assert "twitter-text" in registry.get("x").counting_rule
    import re

    for spec in registry.specs():  # (register checks these for a platform added later, not at import)
        assert re.compile(spec.id_pattern) and spec.link_pattern and re.compile(spec.link_pattern).groupindex


def test_defaults_and_choices_are_derived_from_the_registry(fourth: PlatformSpec) -> None:
    from crossposter.model import DEFAULT_LIMITS

    assert DEFAULT_LIMITS == {"bluesky": 300, "mastodon": 500, "x": 280}
    assert PlanOptions().limits == {**DEFAULT_LIMITS, "fourth": 120}  # read when used, not at import
    sub = cli.build_parser()._subparsers._group_actions[0].choices["preview"]  # type: ignore[union-attr]
    assert "bluesky, mastodon, x, fourth" in sub.format_help()
    backup = cli.build_parser()._subparsers._group_actions[0].choices["backup"]  # type: ignore[union-attr]
    assert "fourth" not in backup.format_help()  # no backup reader: not a choice of `backup --from`


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(replace(registry.get("x"), limit=281))
    with pytest.raises(ValueError, match="built-in"):
        registry.unregister("x")


@pytest.mark.parametrize(("change", "problem"), [
    ({"name": "Fourth"}, "lowercase"), ({"name": "a,b"}, "lowercase"), ({"name": "pending"}, "metadata key"),
    ({"dialect": "threads"}, "unknown dialect"), ({"limit": 0}, "positive"), ({"max_alt_text": -1}, "positive"),
    ({"id_pattern": "[0-9"}, "id_pattern is not a regular expression"),
    ({"link_pattern": r"https://f\.example/(?P<post>\d+)"}, "id_from_link needs id"),
    ({"settings": "testing.fourth.FourthConfig"}, "module:Class"),
])
def test_a_spec_the_rest_could_not_use_is_refused(change: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        registry.register(replace(FOURTH, **change))
    assert "fourth" not in registry.names() and "Fourth" not in registry.names()


def test_a_fourth_platform_previews_from_its_registry_entry_alone(fourth: PlatformSpec, archive: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(["preview", str(archive), "-p", "bluesky,fourth", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # the alt text and the repeat are errors on the fourth platform
    first, again, code_thread = out["threads"]
    assert list(first["platforms"]) == ["bluesky", "fourth"]
    posts = first["platforms"]["fourth"]["posts"]
    assert first["platforms"]["fourth"]["limit"] == 120 and len(posts) > 1
    assert all(p["length"] <= 120 and "facets" not in p for p in posts)  # links written out, no facets
    assert "facets" in first["platforms"]["bluesky"]["posts"][0]
    # Its dialect decides every post: the same as Mastodon's at the same limit (planned independently).
    archive_obj = read_archive(archive)
    mastodon = plan_thread(archive_obj, archive_obj.threads[0], PlanOptions(limits={"mastodon": 120},
                                                                           decode_images=False), ["mastodon"])
    assert [(p["text"], p["length"]) for p in posts] == [(p.text, p.length)
                                                       for p in mastodon.platforms["mastodon"].posts]
    # Its own limits and rules, under its own name: the alt text (40), the repeated post.
    assert any(e.get("platform") == "fourth" and "fourth keeps at most 40" in e["message"] for e in first["errors"])
    assert not any(e.get("platform") == "bluesky" for e in first["errors"])
    assert any(e.get("platform") == "fourth" and "Fourth refuses a repeated post" in e["message"]
               for e in again["errors"])
    # What render warns about per dialect is said of the platform speaking it, by its name.
    assert [(w.get("platform"), w["message"].split(":")[0]) for w in code_thread["warnings"]] == [
        ("fourth", "`@bob` in code")]
    assert "Fourth has no code formatting" in code_thread["warnings"][0]["message"]


def test_a_fourth_platform_in_the_text_and_html_previews(fourth: PlatformSpec, archive: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rich")
    cli.run(["preview", str(archive), "-p", "fourth", "--format", "text"])
    text = capsys.readouterr().out
    assert "Fourth" in text and "limit 120" in text
    page = tmp_path / "out.html"
    cli.run(["preview", str(archive), "-p", "fourth", "--format", "html", "-o", str(page)])
    html = page.read_text(encoding="utf-8")
    assert 'data-platform="fourth"' in html and "Fourth post 1 of" in html and "you@fourth.example" in html


def test_importing_the_registry_is_light() -> None:
    code = ("import sys, crossposter.platforms.registry as r; r.specs(); "
            "print(sorted(m for m in sys.modules if m.startswith('crossposter')), "
            "[m for m in ('pydantic', 'rich', 'PIL', 'atproto', 'tweepy', 'mastodon', 'regex') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['crossposter', 'crossposter.platforms', 'crossposter.platforms.registry'] []"


def test_no_module_but_the_registry_lists_the_platforms_or_their_display_names() -> None:
    """The facts live once: a list of every platform, or a table of display names, elsewhere would miss
    the next platform (the dialect names in render/split/counting and the previews are not platform lists)."""
    import ast

    offenders = []
    for path in sorted((ROOT / "crossposter").rglob("*.py")):
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                words = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if {"bluesky", "mastodon", "x"} <= words:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Dict):
                values = {v.value for v in node.values if isinstance(v, ast.Constant)}
                if {"Bluesky", "Mastodon"} <= values or {"you.bsky.social", "you@mastodon.social"} <= values:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


#: Modules allowed to name a platform: the registry and the adapters (platforms/), a platform's own backup
#: modules (backup/<platform>*.py), and the text rules, which are named after the platform that defined
#: them (the dialects: render, split, counting and its reference); a new platform picks a dialect.
_OWN = ("crossposter/platforms/", "crossposter/backup/bluesky", "crossposter/backup/mastodon",
        "crossposter/backup/x_", "crossposter/render.py", "crossposter/split.py", "crossposter/counting.py",
        "crossposter/split_reference.py")
#: the Mastodon dialect's home server (its mention rule), read from Mastodon's section (plan.PlanOptions.of)
_ALLOWED = {("crossposter/plan.py", "config.platforms.mastodon")}


def _names_a_platform(node: object) -> str | None:
    """What in `node` names a platform as only a platform list would (None: nothing)."""
    import ast

    names = {"bluesky", "mastodon", "x"}
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
        if any("dialect" in ast.unparse(side) for side in sides):
            return None  # a text rule, by dialect
        for side in sides:
            if isinstance(side, ast.Constant) and side.value in names:
                return ast.unparse(node)
            if isinstance(side, (ast.Tuple, ast.List, ast.Set)) and any(
                    isinstance(e, ast.Constant) and e.value in names for e in side.elts):
                return ast.unparse(node)
    elif isinstance(node, ast.Attribute) and node.attr in names and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "platforms":
        return ast.unparse(node)
    elif isinstance(node, ast.Dict) and len({k.value for k in node.keys if isinstance(k, ast.Constant)} & names) >= 2:
        return ast.unparse(node)[:60]
    return None


def test_no_module_outside_the_platforms_own_names_a_platform() -> None:
    """What a fourth platform would have to edit: a comparison with a platform's name (`platform ==
    "bluesky"`), a config section read by name (`config.platforms.x`), a table keyed by platforms.
    Everything else asks the registry, the platform's config model or its backup module."""
    import ast

    offenders = []
    for path in sorted((ROOT / "crossposter").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(_OWN):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found = _names_a_platform(node)
            if found and (rel, found) not in _ALLOWED:
                offenders.append(f"{rel}:{getattr(node, 'lineno', '?')}: {found}")
    assert offenders == []


def test_the_scan_sees_what_it_looks_for() -> None:
    """The scan above is no test if it finds nothing anywhere: the lines it exists to refuse are found."""
    import ast

    for line in ('platform == "bluesky"', 'p in ("mastodon", "x")', "config.platforms.x.username",
                 '{"bluesky": 1, "x": 2}'):
        assert any(_names_a_platform(n) for n in ast.walk(ast.parse(line))), line
    assert not any(_names_a_platform(n) for n in ast.walk(ast.parse('registry.dialect_of(p) == "bluesky"')))


# --------------------------------------------------------------------------- a fourth platform, end to end

FOURTH_ARCHIVE = """# Threads

## Hello fourth

A first paragraph that is long enough to need two posts on a platform whose limit the config lowers to
one hundred characters, so that the reply chain is real.

A second paragraph, posted as a reply.
"""


@pytest.fixture
def fourth_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """`testing/fourth.py` registered for one test (its posts forgotten afterwards)."""
    from testing import fourth as module

    registry.register(module.SPEC)
    module.SERVERS.clear()
    module.TOKENS.clear()
    monkeypatch.setenv(module.TOKEN, "fourth-token-0123456789abcdef")
    try:
        yield module
    finally:
        registry.unregister(module.SPEC.name)
        module.SERVERS.clear()


def test_a_fourth_platform_from_one_module_configures_checks_posts_and_reads_back(
        fourth_module: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module: object = fourth_module
    (tmp_path / "threads").mkdir()
    archive = tmp_path / "threads" / "t.md"
    archive.write_text(FOURTH_ARCHIVE, encoding="utf-8")
    config = tmp_path / "crossposter.yaml"
    config.write_text("state_dir: state\nplatforms:\n  bluesky: {enabled: false}\n  mastodon: {enabled: false}\n"
                      "  fourth: {enabled: true, account_name: me, max_characters: 100}\n", encoding="utf-8")

    from crossposter.config import ConfigError, load_config, missing_settings

    # Its section is read by its own model: its limit reaches the planner, its checks are its own.
    loaded = load_config(config)
    assert loaded.enabled_platforms() == ["fourth"] and loaded.platforms.fourth.account() == "me"
    assert PlanOptions.of(loaded).limits["fourth"] == 100
    bad = tmp_path / "bad.yaml"
    bad.write_text("platforms:\n  fourth: {enabled: true, max_characters: 500, colour: red}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert any(p.startswith("platforms.fourth.max_characters:") for p in err.value.problems)
    assert "platforms.fourth.colour: unknown key (check the spelling against config.example.yaml)" \
        in err.value.problems
    mirrored = tmp_path / "mirror.yaml"
    mirrored.write_text("platforms:\n  bluesky: {handle: me.bsky.social}\n  fourth: {enabled: true}\n"
                        "mirror: {from: bluesky, to: [fourth]}\n", encoding="utf-8")
    assert load_config(mirrored).mirror.to == ["fourth"]  # type: ignore[union-attr]
    assert missing_settings(loaded, environ={}) == [
        "platforms.fourth: FOURTH_TOKEN is not set (set it, or FOURTH_TOKEN_FILE to a file holding it)"]

    # preview with the config: its limit and its account
    assert cli.run(["preview", str(archive), "-c", str(config), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)["threads"][0]["platforms"]
    assert list(plan) == ["fourth"] and plan["fourth"]["limit"] == 100 and len(plan["fourth"]["posts"]) >= 2

    # check: logs in through its adapter module (the token from FOURTH_TOKEN)
    assert cli.run(["check", "-c", str(config)]) == 0
    assert "fourth: logged in; limit 120 characters" in capsys.readouterr().out
    assert module.TOKENS == ["fourth-token-0123456789abcdef"]  # type: ignore[attr-defined]

    # post: the chain goes to its adapter, the IDs into the archive under its key
    assert cli.run(["post", str(archive), "-t", "Hello fourth", "-c", str(config)]) == 0
    capsys.readouterr()
    server = module.SERVERS["me"]  # type: ignore[attr-defined]
    posts = server.thread()
    assert len(posts) == len(plan["fourth"]["posts"]) and posts[1].parent == posts[0].ref.id
    text = archive.read_text(encoding="utf-8")
    assert "fourth:" in text and "https://fourth.example/@me/1" in text

    # status reads the recorded IDs back, by the registry's ID rules
    assert cli.run(["status", str(archive), "-c", str(config), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert json.dumps(status).count("https://fourth.example/@me/") == len(posts)

    # posting again resumes: nothing is sent twice (the platform refuses repeats; nothing is repeated)
    assert cli.run(["post", str(archive), "-t", "Hello fourth", "-c", str(config)]) == 0
    capsys.readouterr()
    assert len(server.thread()) == len(posts)


def test_a_fourth_platforms_recorded_ids_and_links_follow_its_registry_entry(fourth_module: object) -> None:
    from crossposter.thread_meta import MetadataError, ThreadMeta, Where

    where = Where(Path("t.md"), "T", 1)
    meta = ThreadMeta.parse({"fourth": [17, "https://fourth.example/@me/18", {"id": "19"}]}, where)
    assert [e.id for e in meta.recorded("fourth")] == ["17", "18", "19"]  # type: ignore[arg-type]
    assert meta.published() == ["fourth"]
    with pytest.raises(MetadataError, match=r"is not a fourth post ID: write the post's number"):
        ThreadMeta.parse({"fourth": ["at://did:plc:abc/app.bsky.feed.post/3lbq2xk7d2s2a"]}, where)
    with pytest.raises(MetadataError, match="only Bluesky posts have a cid"):
        ThreadMeta.parse({"fourth": [{"id": "1", "cid": "bafy12345678"}]}, where)


def test_init_writes_a_fourth_platforms_section(fourth_module: object, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.yaml"
    assert cli.run(["init", "-p", "fourth", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "export FOURTH_TOKEN=...    # fourth.example > Settings > Tokens" in printed
    assert "fill in platforms.fourth.account_name" in printed
    from crossposter.config import load_config

    assert load_config(out).enabled_platforms() == ["fourth"]


@pytest.mark.parametrize(("yaml", "problem"), [
    ("platforms:\n  bluesky:\n", "platforms.bluesky: Input should be a valid dictionary"),
    ("platforms:\n  threads: {enabled: true}\n", "platforms.threads: unknown key"),
    ("platforms: []\n", "platforms: Input should be a valid dictionary"),
    ("mirror: {from: bluesky, to: [threads]}\n", "mirror.to.0: Input should be 'bluesky', 'mastodon' or 'x'"),
])
def test_the_platforms_sections_refuse_what_they_always_refused(tmp_path: Path, yaml: str, problem: str) -> None:
    from crossposter.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems
