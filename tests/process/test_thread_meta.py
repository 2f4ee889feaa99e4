"""The one validated model of a thread's metadata block, and every command reading through it.

A bad value must be an error naming the file, the thread, the line and the key, the same in
`preview`, `post`, `status`, `check`, `schedule` and the daemon; never a reply target, a record key
sent to a server, a traceback, or a skip for some commands and not for others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossposter.archive import ArchiveError, parse_archive, read_archive
from crossposter.config import Config
from crossposter.platforms.fakes import fake_adapters
from crossposter.publish import PreflightError, publish_thread
from crossposter.thread_meta import Entry, MetadataError, ThreadMeta, Where, of

ROOT = Path(__file__).resolve().parents[2]
TID = "3lbq2xk7d2s2a"
AT = f"at://did:plc:abcdefghijklmnopqrstuvwx/app.bsky.feed.post/{TID}"


def thread_with(block: str, title: str = "T") -> str:
    """An archive whose thread `title` has `block` (YAML lines) as its metadata; the block opens on line 3."""
    return f"# Archive\n\n## {title}\n<!-- crossposter\n{block}-->\n\nFirst post.\n\n### Two\n\nSecond post.\n"


def meta_of(block: str) -> ThreadMeta:
    archive = parse_archive(thread_with(block), Path("/arch/a.md"))
    return of(archive.threads[0], "Europe/Berlin")


# line 5 of the file is the first YAML line of the block (line 4 is `<!-- crossposter`)
BAD = [
    ("x: [null]\n", 5, "`x[0]`"),
    ("mastodon: [[1, 2]]\n", 5, "`mastodon[0]`"),
    ("bluesky:\n- {url: 'https://bsky.app/profile/me/post/x'}\n", 6, "`bluesky[0]`: has no `id`"),
    ("mastodon:\n- {id: '1'}\n- {id: '../../etc'}\n", 7, "`mastodon[1].id`"),
    ("x:\n- '1862000000000000001'\n- 'https://x.com/../../etc'\n", 7, "`x[1]`"),
    (f"bluesky:\n- {{id: '{AT}/../x'}}\n", 6, "`bluesky[0].id`"),
    ("pending:\n  bluesky: {index: 0, rkey: '../../x', created_at: '2026-01-01T00:00:00.000Z'}\n", 6,
     "`pending.bluesky.rkey`"),
    ("pending: [1, 2]\n", 5, "`pending`"),
    ("pending: {x: {index: 0, rkey: 3lbq2xk7d2s2a, created_at: '2026-01-01T00:00:00Z'}}\n", 5, "`pending.x`"),
    ("skip: 'true'\n", 5, "`skip`: must be true or false"),
    ("queued: yes please\n", 5, "`queued`"),
    ("schedule: 2026-13-01 09:00\n", 5, "`schedule`"),
    ("schedule: 9999-12-31T23:30:00Z\n", 5, "`schedule`: time 9999-12-31T23:30:00+00:00 is out of range"),
    ("shedule: 2030-01-01T09:00:00Z\n", 5, "`shedule`: unknown key"),
    ("x:\n- {id: '1', sha: 'not hex'}\n", 6, "`x[0].sha`"),
    ("mastodon:\n- {id: '1', cid: bafyabc12345}\n", 6, "`mastodon[0].cid`"),
    ("x:\n- {id: '1', url: 'javascript:alert(1)'}\n", 6, "`x[0].url`"),
    ("x:\n- {id: '1', when: today}\n", 6, "`x[0].when`: unknown key"),
    ("x: '1862000000000000001'\n", 5, "`x`: must be a list"),
    ("source: twitter\n", 5, "`source`: must be the platform the thread was backed up from"),
    ("source: [x]\n", 5, "`source`"),
]


@pytest.mark.parametrize(("block", "line", "key"), BAD, ids=[b for b, _, _ in BAD])
def test_a_bad_block_names_the_file_thread_line_and_key(block: str, line: int, key: str) -> None:
    with pytest.raises(MetadataError) as info:
        meta_of(block)
    err = info.value
    assert isinstance(err, ArchiveError)
    assert str(err).startswith(f"/arch/a.md:{line}: thread 'T': crossposter block, ")
    assert key in str(err)


def test_every_problem_of_a_block_is_listed_in_file_order() -> None:
    with pytest.raises(MetadataError) as info:
        meta_of("skip: 'true'\nx: [null]\nshedule: 2030-01-01T09:00:00Z\n")
    assert [line for line, _ in info.value.problems] == [5, 6, 7]
    assert info.value.messages()[1].startswith("/arch/a.md:6: thread 'T': crossposter block, `x[0]`")


def test_the_readme_block_and_hand_written_ids_are_read() -> None:
    meta = meta_of(
        "schedule: 2026-12-01T09:00:00+01:00\nqueued: true\n"
        f"bluesky:\n- {{id: '{AT}', url: 'https://bsky.app/profile/me/post/{TID}', cid: bafyreib2rx, "
        "sha: 944aa85014e4}\n"
        f"- https://bsky.app/profile/me.bsky.social/post/{TID}\n"
        "mastodon:\n- {id: '113520001', url: 'https://mastodon.social/@me/113520001', sha: 944aa85014e4}\n"
        "- 113520002\n- https://mastodon.social/@me/113520003\n- 01F8MH75CBF9JFX4ZAD54N0W0R\n"
        "x:\n- 1862000000000000001\n- https://x.com/me/status/1862000000000000002\n"
        f"pending:\n  bluesky: {{index: 2, rkey: {TID}, created_at: '2026-12-01T08:00:00.000Z', sha: 944aa85014e4}}\n")
    assert meta.schedule is not None and meta.schedule.isoformat() == "2026-12-01T09:00:00+01:00"
    assert meta.queued and not meta.skip
    assert meta.recorded("bluesky")[0] == Entry(AT, f"https://bsky.app/profile/me/post/{TID}", "bafyreib2rx",
                                               "944aa85014e4")
    assert meta.recorded("bluesky")[1].id == f"at://me.bsky.social/app.bsky.feed.post/{TID}"
    assert [e.id for e in meta.recorded("mastodon")] == ["113520001", "113520002", "113520003",
                                                         "01F8MH75CBF9JFX4ZAD54N0W0R"]
    assert [e.id for e in meta.recorded("x")] == ["1862000000000000001", "1862000000000000002"]
    assert meta.recorded("x")[1].link == "https://x.com/me/status/1862000000000000002"
    assert meta.pending["bluesky"].rkey == TID and meta.published() == ["bluesky", "mastodon", "x"]


_SHAPES = {
    "bluesky": r"at://[^/]+/app\.bsky\.feed\.post/[234567a-j][2-7a-z]{12}",
    "mastodon": r"[0-9A-Za-z]{1,64}",
    "x": r"[0-9]{1,19}",
}
_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
              st.sampled_from([AT, "../../etc", "1", "https://x.com/u/status/12", TID, "2026-01-01T00:00:00Z"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["id", "url", "cid", "sha", "index", "rkey",
                                                             "created_at", "bluesky", "zz"]), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["schedule", "queued", "skip", "bluesky", "mastodon", "x", "pending", "zz"]),
                       _values, max_size=5))
def test_any_block_is_a_valid_model_or_a_metadata_error(raw: dict) -> None:
    """Whatever YAML a person writes into the block, reading it never raises anything but MetadataError,
    and every ID it lets through has its platform's shape (nothing else can become a reply target)."""
    import re

    try:
        meta = ThreadMeta.parse(raw, Where(Path("a.md"), "T", 1), "Europe/Berlin")
    except MetadataError as e:
        assert e.problems and all(message.startswith("thread 'T': crossposter block, `")
                                  for _, message in e.problems)
        return
    for platform, shape in _SHAPES.items():
        for entry in meta.recorded(platform):
            assert re.fullmatch(shape, entry.id), (platform, entry)
    for pending in meta.pending.values():
        assert re.fullmatch(r"[234567a-j][2-7a-z]{12}", pending.rkey)
    assert isinstance(meta.skip, bool) and isinstance(meta.queued, bool)


# --------------------------------------------------------------------------- every reader


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = Config(state_dir=tmp_path / "state", base_dir=tmp_path, timezone="Europe/Berlin")
    cfg.platforms.x.enabled = True
    return cfg


@pytest.mark.parametrize("block", [
    "x: [null]\n", "mastodon: [[1, 2]]\n", "bluesky:\n- {url: 'https://bsky.app/profile/me/post/x'}\n",
    "mastodon:\n- {id: '../../etc'}\n",
    "pending:\n  bluesky: {index: 0, rkey: '../../x', created_at: '2026-01-01T00:00:00.000Z'}\n",
    "pending: [1, 2]\n", "skip: 'true'\n",
])
def test_post_refuses_a_bad_block_before_any_request(tmp_path: Path, config: Config, block: str) -> None:
    path = tmp_path / "a.md"
    path.write_text(thread_with(block), encoding="utf-8")
    before = path.read_bytes()
    fakes = fake_adapters(["bluesky", "mastodon", "x"])
    with pytest.raises(PreflightError) as info:
        publish_thread(config, path, "T", adapters=fakes, progress=False)
    assert f"{path}:" in str(info.value) and "thread 'T': crossposter block" in str(info.value)
    assert all(not fake.calls for fake in fakes.values())  # nothing sent anywhere: not even a log-in
    assert path.read_bytes() == before


def test_skip_true_as_text_is_an_error_for_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`skip: 'true'` used to skip the thread for the daemon and `status` but not for `preview` and `post`."""
    from crossposter.commands import status as status_cmd
    from crossposter.daemon.watch import thread_info
    from crossposter.plan import PlanOptions, plan_thread

    (tmp_path / "threads").mkdir()
    path = tmp_path / "threads" / "a.md"
    path.write_text(thread_with("skip: 'true'\n"), encoding="utf-8")
    archive = read_archive(path)
    thread = archive.threads[0]
    plan = plan_thread(archive, thread, PlanOptions(decode_images=False))
    assert [(d.line, "`skip`" in d.message) for d in plan.errors] == [(5, True)]
    info = thread_info(path, thread, "Europe/Berlin")
    assert info.skipped is None and info.problems and info.problems[0][0] == 5
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: Europe/Berlin\nstate_dir: state\narchives: ['threads/*.md']\n")
    assert status_cmd.run([], "json", cfg) == 0
    data = json.loads(capsys.readouterr().out)
    t = data["threads"][0]
    assert t["state"] == "error" and t["skipped"] is False and t["skip_reason"] is None
    assert t["errors"][0]["line"] == 5 and "must be true or false" in t["errors"][0]["message"]


def test_preview_json_shows_a_bad_block_as_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(thread_with("mastodon:\n- {id: '1'}\n- {id: '../../etc'}\n"), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "crossposter", "preview", str(path), "--format", "json"],
                       capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 1, r.stderr
    errors = json.loads(r.stdout)["threads"][0]["errors"]
    assert errors[0]["line"] == 7 and "`mastodon[1].id`" in errors[0]["message"]


def test_schedule_refuses_a_thread_whose_block_is_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crossposter.commands.schedule import run_schedule, run_unschedule

    path = tmp_path / "a.md"
    path.write_text(thread_with("x: [null]\n"), encoding="utf-8")
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: Europe/Berlin\n")
    before = path.read_bytes()
    assert run_schedule(path, "T", "2099-01-01 09:00", cfg) == 1
    assert run_unschedule(path, "T", cfg) == 1
    err = capsys.readouterr().err
    assert err.count("`x[0]`") == 2 and f"{path}:5:" in err
    assert path.read_bytes() == before


def test_unschedule_removes_a_broken_schedule(tmp_path: Path) -> None:
    """The one bad value `unschedule` may meet: the schedule it is asked to remove."""
    from crossposter.commands.schedule import run_unschedule

    path = tmp_path / "a.md"
    path.write_text(thread_with("schedule: 9999-12-31T23:30:00Z\n"), encoding="utf-8")
    assert run_unschedule(path, "T", None) == 0
    assert read_archive(path).threads[0].metadata == {}


# --------------------------------------------------------------------------- YAML that is cheap to read


BOMB = "".join([
    "a: &a [x, x, x, x, x, x, x, x]\n",
    *(f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)),
])


def test_an_alias_bomb_in_a_block_is_refused_at_its_line(tmp_path: Path, config: Config) -> None:
    """8 aliases, 9 levels: 8^9 = 134 million items for whoever walks it; the dumper of the first write did."""
    path = tmp_path / "a.md"
    path.write_text(thread_with(BOMB), encoding="utf-8")
    start = time.monotonic()
    with pytest.raises(ArchiveError) as info:
        read_archive(path)
    assert time.monotonic() - start < 5  # correctness bound, not a benchmark: the write took minutes
    assert str(info.value).startswith(f"{path}:6: ") and "alias `*a`" in str(info.value)
    fakes = fake_adapters(["bluesky", "mastodon", "x"])
    with pytest.raises(PreflightError):
        publish_thread(config, path, "T", adapters=fakes, progress=False)
    assert all(not fake.calls for fake in fakes.values())


def test_deep_nesting_in_a_block_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """libyaml composes recursively in C: ~25,000 unclosed `[` ended the process with SIGSEGV."""
    path = tmp_path / "a.md"
    path.write_text(thread_with("x: " + "[" * 100_000 + "\n"), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "crossposter", "preview", str(path), "--format", "json"],
                       capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 1, (r.returncode, r.stderr[-500:])
    errors = json.loads(r.stdout)["threads"][0]["errors"]
    assert "nested more than 50 deep" in errors[0]["message"]


def test_an_alias_in_the_config_is_refused(tmp_path: Path) -> None:
    from crossposter.config import ConfigError, load_config

    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: Europe/Berlin\n" + BOMB.replace("a:", "x-a:", 1) + "archives: *i\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "line 3: YAML alias `*a`" in str(info.value)


def test_source_names_the_platform_a_thread_was_backed_up_from() -> None:
    meta = meta_of("source: mastodon\nmastodon:\n- {id: '113520001', url: 'https://m.example/@me/113520001'}\n")
    assert meta.source == "mastodon" and [e.id for e in meta.recorded("mastodon")] == ["113520001"]
    assert meta_of("x: ['1']\n").source is None
