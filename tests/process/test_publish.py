"""The publishing engine against in-process fake platforms: order, recording, resume, faults, pre-flight, lock."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossposter.archive import read_archive
from crossposter.config import Config
from crossposter.platforms.base import (
    Limits,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
)
from crossposter.platforms.fakes import FakeAdapter, fake_adapters
from crossposter.publish import PreflightError, ThreadLockedError, publish_thread, thread_lock

ROOT = Path(__file__).resolve().parents[2]
TITLE = "A small thread"
ARCHIVE = """# My archive

Intro text that is not a thread.

## A small thread
2024-02-13 21:25

The opening post of the thread.

### Second part
The second post, with a picture. ![a red square](red.png)

### Third part
The third post closes the thread.

## Another thread

Must stay untouched.
"""


def sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "red.png")
    path = tmp_path / "threads.md"
    path.write_text(ARCHIVE, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = Config(state_dir=tmp_path / "state", base_dir=tmp_path)
    cfg.platforms.x.enabled = True
    cfg.retry.attempts = 4
    cfg.retry.base_delay = 1.0
    cfg.retry.max_delay = 10.0
    cfg.retry.max_rate_limit_wait = 60.0
    return cfg


#: Every secret set, to recognisable fake values: a dry run checks them like a real run does.
FAKE_SECRETS = {name: f"fake-{name.lower()}" for name in (
    "CROSSPOSTER_BLUESKY_PASSWORD", "CROSSPOSTER_MASTODON_ACCESS_TOKEN", "CROSSPOSTER_X_CONSUMER_KEY",
    "CROSSPOSTER_X_CONSUMER_SECRET", "CROSSPOSTER_X_ACCESS_TOKEN", "CROSSPOSTER_X_ACCESS_TOKEN_SECRET")}


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FAKE_SECRETS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


class Sleeps(list):
    """An injected sleep: records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def meta_of(path: Path) -> dict:
    return read_archive(path).find(TITLE).metadata


def planned_texts(path: Path, config: Config, platform: str) -> list[str]:
    from crossposter.plan import plan_thread

    archive = read_archive(path)
    plan = plan_thread(archive, archive.find(TITLE), config, [platform])
    return [p.text for p in plan.platforms[platform].posts]


def run(config: Config, path: Path, fakes: dict[str, FakeAdapter], **kw):
    kw.setdefault("sleep", Sleeps())
    return publish_thread(config, path, TITLE, list(fakes), adapters=fakes, progress=False, **kw)


def assert_chain(fake: FakeAdapter, texts: list[str]) -> None:
    posts = fake.thread()
    assert [p.text for p in posts] == texts
    assert posts[0].parent is None
    for prev, post in zip(posts, posts[1:], strict=False):
        assert post.parent == prev.ref.id
        assert post.root == posts[0].ref.id


# --------------------------------------------------------------------------- happy path, recording


def test_thread_goes_out_in_order_as_replies_and_every_post_is_recorded(archive: Path, config: Config) -> None:
    original = archive.read_bytes()
    fakes = fake_adapters(["bluesky", "mastodon", "x"])
    result = run(config, archive, fakes)

    assert result.ok, result.outcomes
    meta = meta_of(archive)
    for name, fake in fakes.items():
        texts = planned_texts(archive, config, name)
        assert len(texts) == 3
        assert_chain(fake, texts)
        outcome = result.outcomes[name]
        assert (outcome.state, outcome.posted, outcome.total) == ("done", 3, 3)
        assert outcome.links == [p.ref.url for p in fake.thread()]
        assert [e["id"] for e in meta[name]] == [p.ref.id for p in fake.thread()]
        assert [e["sha"] for e in meta[name]] == [sha12(t) for t in texts]
        # the image of post 2 went with post 2, nowhere else
        assert [len(p.media) for p in fake.thread()] == [0, 1, 0]
    assert [e["cid"] for e in meta["bluesky"]] == [p.ref.cid for p in fakes["bluesky"].thread()]
    assert "pending" not in meta
    # the other thread and everything else is byte-identical once the block is removed
    from crossposter.metadata import strip_metadata_blocks

    assert strip_metadata_blocks(archive.read_bytes()) == original


def test_each_image_is_decoded_once_and_prepared_within_every_platforms_limits(
        archive: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    import crossposter.images as images

    picture = archive.parent / "red.png"
    Image.frombytes("RGB", (600, 450), os.urandom(600 * 450 * 3)).save(picture)  # ~800 KB of noise
    decodes: list[Path] = []
    real_open = images._open_problem
    monkeypatch.setattr(images, "_open_problem", lambda path, *rest: decodes.append(path) or real_open(path, *rest))
    sent: dict[str, list] = {}

    class Recording(FakeAdapter):
        def upload_image(self, image):  # type: ignore[no-untyped-def]
            sent.setdefault(self.name, []).append(image)
            return super().upload_image(image)

    mastodon_limits = Limits(max_characters=500, characters_reserved_per_url=23, max_image_bytes=16_000_000,
                             max_image_pixels=100_000)
    fakes = {"bluesky": Recording("bluesky"), "mastodon": Recording("mastodon", limits=mastodon_limits),
             "x": Recording("x")}
    assert run(config, archive, fakes).ok

    # the pre-flight checks (planner and publisher) and three platforms' preparations: one decode
    assert len(decodes) == 1
    assert not images._sources  # and nothing of it is kept once the chains run
    assert [len(v) for v in sent.values()] == [1, 1, 1]
    masto = sent["mastodon"][0]
    assert masto.width * masto.height <= 100_000  # the instance's pixel cap, met before the first request
    assert abs(masto.width / masto.height - 600 / 450) < 0.01
    # sharing changes no byte: what each platform got is what a separate preparation gives
    for name, lim in (("bluesky", (1_000_000, None)), ("x", (5_000_000, None)), ("mastodon", (16_000_000, 100_000))):
        alone = images.prepare_image(picture, "a red square", *lim)
        assert sent[name][0].data == alone.data, name
        assert len(alone.data) <= lim[0]


def test_each_post_is_recorded_before_the_next_request(archive: Path, config: Config) -> None:
    seen: list[tuple[str, int, int]] = []

    class Checking(FakeAdapter):
        def publish(self, post, parent, root):  # type: ignore[no-untyped-def]
            seen.append((self.name, post.index, len(meta_of(archive).get(self.name, []))))
            return super().publish(post, parent, root)

    fakes = {n: Checking(n) for n in ("bluesky", "mastodon", "x")}
    assert run(config, archive, fakes).ok
    assert sorted(seen) == [(n, i, i) for n in sorted(fakes) for i in range(3)]


def test_bluesky_rkey_is_stored_before_the_first_attempt_and_reused_on_retry(archive: Path,
                                                                            config: Config) -> None:
    pendings: list[dict] = []

    class Watching(FakeAdapter):
        def publish(self, post, parent, root):  # type: ignore[no-untyped-def]
            pendings.append(dict(meta_of(archive)["pending"]["bluesky"]))
            return super().publish(post, parent, root)

    bsky = Watching("bluesky")
    bsky.lose_response(1)  # accepted, but the answer never arrives: the retry must rewrite the same record
    sleeps = Sleeps()
    result = run(config, archive, {"bluesky": bsky}, sleep=sleeps)

    assert result.ok
    assert [p["index"] for p in pendings] == [0, 1, 1, 2]
    assert pendings[1] == pendings[2]  # same rkey and createdAt on the retry
    posts = bsky.thread()
    assert len(posts) == 3 and posts[1].writes == 2
    assert [p.ref.id.rsplit("/", 1)[-1] for p in posts] == [p["rkey"] for p in (pendings[0], pendings[1],
                                                                                pendings[3])]
    assert len(sleeps) == 1


def test_a_pending_rkey_left_by_a_crash_is_reused(archive: Path, config: Config) -> None:
    from crossposter.metadata import update_thread_metadata

    pend = {"index": 0, "rkey": "3lbqaaaaaaa22", "created_at": "2026-01-01T00:00:00.000Z", "sha": "abc123abc123"}
    update_thread_metadata(archive, TITLE, lambda m: m.__setitem__("pending", {"bluesky": pend}))
    bsky = FakeAdapter("bluesky")
    assert run(config, archive, {"bluesky": bsky}).ok
    assert bsky.thread()[0].ref.id.endswith("/3lbqaaaaaaa22")


# --------------------------------------------------------------------------- resume, edits


def test_resume_skips_recorded_posts_and_replies_to_the_last_one(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "mastodon"])
    fakes["mastodon"].fail("publish", RejectedError("mastodon", "Validation failed: try again"), index=2)
    first = run(config, archive, fakes)
    assert not first.ok and not first.retryable
    assert first.outcomes["bluesky"].state == "done"
    m = first.outcomes["mastodon"]
    assert (m.state, m.posted) == ("rejected", 2)
    assert "Validation failed" in m.message
    assert len(meta_of(archive)["mastodon"]) == 2

    second = run(config, archive, fakes)
    assert second.ok
    texts = planned_texts(archive, config, "mastodon")
    assert_chain(fakes["mastodon"], texts)
    published = [c for c in fakes["mastodon"].calls if c[0] == "publish"]
    assert [c[1] for c in published] == [0, 1, 2, 2]  # post 3 tried twice, posts 1-2 never again
    assert [c[1] for c in fakes["bluesky"].calls if c[0] == "publish"] == [0, 1, 2]


def test_edited_published_post_stops_that_platform_with_where_it_changed(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "mastodon"])
    fakes["mastodon"].fail("publish", TransientError("mastodon", "down"), index=2)
    config.retry.attempts = 1
    first = run(config, archive, fakes)
    assert first.outcomes["mastodon"].state == "transient"
    text = archive.read_text(encoding="utf-8").replace("The second post, with", "The EDITED second post, with")
    archive.write_text(text, encoding="utf-8")
    before = {n: len(f.calls) for n, f in fakes.items()}

    second = run(config, archive, fakes)
    for name in fakes:
        o = second.outcomes[name]
        assert o.state == "changed"
        line = text.splitlines().index("### Second part") + 1  # the block moved it down
        assert f"post 2 (line {line})" in o.message
    assert {n: len(f.calls) for n, f in fakes.items()} == {n: before[n] + 1 for n in fakes}  # only the logins


def test_thread_shorter_than_what_was_published_is_a_change(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["x"])
    assert run(config, archive, fakes).ok
    text = archive.read_text(encoding="utf-8")
    archive.write_text(text.replace("### Third part\nThe third post closes the thread.\n", ""), encoding="utf-8")
    result = run(config, archive, fakes)
    assert result.outcomes["x"].state == "changed"
    assert "only 2" in result.outcomes["x"].message


# --------------------------------------------------------------------------- faults


def test_transient_errors_are_retried_with_bounded_jittered_backoff(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "mastodon"])
    fakes["mastodon"].fail("publish", TransientError("mastodon", "502"), TransientError("mastodon", "503"), index=1)
    fakes["bluesky"].fail("publish", *[TransientError("bluesky", "500")] * 10, index=1)
    sleeps = Sleeps()
    result = run(config, archive, fakes, sleep=sleeps)

    assert result.outcomes["mastodon"].state == "done"
    b = result.outcomes["bluesky"]
    assert (b.state, b.posted) == ("transient", 1)
    assert b.retry_at is not None and b.retry_at.tzinfo is not None
    assert result.retryable
    tries = [c for c in fakes["bluesky"].calls if c[0] == "publish" and c[1] == 1]
    assert len(tries) == config.retry.attempts  # bounded
    assert len(sleeps) == 2 + (config.retry.attempts - 1)
    # full jitter: each delay within [0, min(max_delay, base * 2^(n-1))]
    assert all(0 <= s <= config.retry.max_delay for s in sleeps)
    assert len(set(sleeps)) == len(sleeps)


def test_backoff_bounds_grow_exponentially(archive: Path, config: Config) -> None:
    import random

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    config.retry.attempts = 6
    fakes = fake_adapters(["x"])
    fakes["x"].fail("publish", *[TransientError("x", "timeout")] * 5, index=0)
    sleeps = Sleeps()
    assert run(config, archive, fakes, sleep=sleeps, rng=Top()).ok
    assert list(sleeps) == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_transient_retry_after_from_the_server_is_honoured(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["x"])
    fakes["x"].fail("upload", TransientError("x", "503", retry_after=7.0))
    sleeps = Sleeps()
    assert run(config, archive, fakes, sleep=sleeps).ok
    assert sleeps[0] >= 7.0


def test_near_rate_limit_is_waited_out_far_one_stops_the_platform(archive: Path, config: Config) -> None:
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    fakes = fake_adapters(["bluesky", "mastodon"])
    fakes["bluesky"].fail("publish", RateLimitedError("bluesky", "429", reset_at=t0 + timedelta(seconds=30)),
                          index=1)
    far = t0 + timedelta(hours=3)
    fakes["mastodon"].fail("publish", RateLimitedError("mastodon", "429", reset_at=far), index=1)
    sleeps = Sleeps()
    result = run(config, archive, fakes, sleep=sleeps, now=lambda: t0)

    assert result.outcomes["bluesky"].state == "done"
    assert len(sleeps) == 1 and 30 <= sleeps[0] <= 32
    m = result.outcomes["mastodon"]
    assert (m.state, m.posted, m.retry_at) == ("rate_limited", 1, far)
    assert result.retryable
    assert [c[1] for c in fakes["mastodon"].calls if c[0] == "publish"] == [0, 1]


def test_one_platform_down_while_the_others_succeed(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "mastodon", "x"])
    fakes["x"].fail("login", *[TransientError("x", "connection refused")] * 10)
    fakes["mastodon"].fail("publish", UnauthorizedError("mastodon", "401 token revoked"), index=1)
    result = run(config, archive, fakes)
    assert result.outcomes["bluesky"].state == "done"
    assert (result.outcomes["x"].state, result.outcomes["x"].posted) == ("transient", 0)
    assert result.outcomes["mastodon"].state == "unauthorized"
    assert "token revoked" in result.outcomes["mastodon"].message
    assert fakes["x"].posts == {}
    assert "x" not in meta_of(archive) and len(meta_of(archive)["mastodon"]) == 1


def test_x_duplicate_content_is_settled_from_the_account_never_posted_again(archive: Path,
                                                                           config: Config) -> None:
    fakes = fake_adapters(["x"])
    assert run(config, archive, fakes).ok
    ids = [p.ref.id for p in fakes["x"].thread()]
    # a crash lost the record of posts 2-3: X refuses the same text again; the account shows they are there
    from crossposter.metadata import update_thread_metadata

    update_thread_metadata(archive, TITLE, lambda m: m.__setitem__("x", m["x"][:1]))
    result = run(config, archive, fakes)
    assert result.ok
    assert [e["id"] for e in meta_of(archive)["x"]] == ids
    assert len(fakes["x"].posts) == 3
    assert [c[1] for c in fakes["x"].calls if c[0] == "publish"] == [0, 1, 2, 1, 2]


def test_x_duplicate_content_without_a_match_is_reported_never_retried(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["x"])
    assert run(config, archive, fakes).ok
    from crossposter.metadata import update_thread_metadata

    update_thread_metadata(archive, TITLE, lambda m: m.__setitem__("x", m["x"][:1]))
    fakes["x"].find_recent = lambda text, parent: None  # type: ignore[method-assign] # the earlier attempt is not found
    result = run(config, archive, fakes)
    o = result.outcomes["x"]
    assert (o.state, o.posted) == ("maybe_posted", 1)
    assert "post 2" in o.message and "record it" in o.message
    assert [c[1] for c in fakes["x"].calls if c[0] == "publish"] == [0, 1, 2, 1]
    assert not result.retryable


def test_stop_event_stops_every_chain_before_its_next_request(archive: Path, config: Config) -> None:
    stop = threading.Event()

    class Stopping(FakeAdapter):
        def publish(self, post, parent, root):  # type: ignore[no-untyped-def]
            ref = super().publish(post, parent, root)
            stop.set()
            return ref

    fakes = {"bluesky": Stopping("bluesky")}
    result = run(config, archive, fakes, stop_event=stop)
    o = result.outcomes["bluesky"]
    assert (o.state, o.posted) == ("stopped", 1)
    assert result.retryable
    assert len(meta_of(archive)["bluesky"]) == 1


def test_mastodon_posts_are_split_for_the_instance_real_limit(archive: Path, config: Config) -> None:
    long = " ".join(["word"] * 30)  # 149 characters
    text = archive.read_text(encoding="utf-8").replace("The third post closes the thread.", long)
    archive.write_text(text, encoding="utf-8")
    small = Limits(max_characters=60, characters_reserved_per_url=23, max_images=4, max_image_bytes=8_000_000)
    fake = FakeAdapter("mastodon", limits=small)
    result = run(config, archive, {"mastodon": fake})
    assert result.ok
    posts = fake.thread()
    assert len(posts) > 3
    assert all(len(p.text) <= 60 for p in posts)
    assert result.outcomes["mastodon"].total == len(posts)


# --------------------------------------------------------------------------- pre-flight


def _nothing_happened(fakes: dict[str, FakeAdapter]) -> bool:
    return all(not f.posts and not f.media for f in fakes.values())


def test_missing_image_fails_preflight_and_nothing_is_posted(archive: Path, config: Config) -> None:
    (archive.parent / "red.png").unlink()
    original = archive.read_bytes()
    fakes = fake_adapters(["bluesky", "mastodon", "x"])
    with pytest.raises(PreflightError) as info:
        run(config, archive, fakes)
    assert any(p.startswith(f"{archive}:11:") and "red.png" in p for p in info.value.problems)
    assert _nothing_happened(fakes) and all(not f.calls for f in fakes.values())
    assert archive.read_bytes() == original


def test_image_too_broken_to_prepare_fails_preflight(archive: Path, config: Config) -> None:
    (archive.parent / "red.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    fakes = fake_adapters(["bluesky"])
    with pytest.raises(PreflightError) as info:
        run(config, archive, fakes)
    assert "red.png" in str(info.value)
    assert _nothing_happened(fakes)


def test_missing_secret_fails_preflight_naming_the_variable(archive: Path, config: Config,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CROSSPOSTER_X_CONSUMER_KEY", "CROSSPOSTER_X_CONSUMER_SECRET", "CROSSPOSTER_X_ACCESS_TOKEN",
                 "CROSSPOSTER_X_ACCESS_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    fakes = fake_adapters(["bluesky", "mastodon"])  # x is built from the config: its secrets are missing
    with pytest.raises(PreflightError) as info:
        publish_thread(config, archive, TITLE, ["bluesky", "mastodon", "x"], adapters=fakes, progress=False)
    text = str(info.value)
    assert f"{archive}:5: [x]" in text and "CROSSPOSTER_X_CONSUMER_KEY" in text
    assert all(not f.calls for f in fakes.values())


def test_error_in_the_plan_fails_preflight(archive: Path, config: Config) -> None:
    text = archive.read_text(encoding="utf-8").replace("closes the thread.", "closes " + "a" * 400 + ".")
    archive.write_text(text, encoding="utf-8")
    fakes = fake_adapters(["bluesky", "mastodon", "x"])
    with pytest.raises(PreflightError) as info:
        run(config, archive, fakes)
    assert any(f"{archive}:14: [" in p for p in info.value.problems), info.value.problems
    assert all(not f.calls for f in fakes.values())


def test_unauthorized_login_fails_preflight_for_everyone(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "mastodon"])
    fakes["mastodon"].fail("login", UnauthorizedError("mastodon", "401 The access token is invalid"))
    with pytest.raises(PreflightError) as info:
        run(config, archive, fakes)
    assert "[mastodon] cannot log in: 401 The access token is invalid" in str(info.value)
    assert _nothing_happened(fakes)


def test_unknown_thread_is_a_preflight_error_listing_the_titles(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["x"])
    with pytest.raises(PreflightError) as info:
        publish_thread(config, archive, "No such thread", ["x"], adapters=fakes, progress=False)
    assert "Another thread" in str(info.value)
    assert not fakes["x"].calls


# --------------------------------------------------------------------------- lock, dry run, CLI


def test_a_second_run_is_refused_while_another_process_holds_the_thread(archive: Path, config: Config) -> None:
    code = ("import sys; from pathlib import Path; from crossposter.config import Config; "
            "from crossposter.publish import thread_lock\n"
            f"cfg = Config(state_dir=Path({str(config.state_path)!r}), base_dir=Path('/'))\n"
            f"with thread_lock(cfg, Path({str(archive)!r}), {TITLE!r}):\n"
            "    print('locked', flush=True); sys.stdin.readline()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        fakes = fake_adapters(["bluesky"])
        with pytest.raises(ThreadLockedError):
            run(config, archive, fakes)
        assert not fakes["bluesky"].calls
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)
    assert run(config, archive, fake_adapters(["bluesky"])).ok  # released when the holder exits


def test_two_concurrent_runs_never_both_post(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "mastodon"], delay=0.05)
    outcomes: list[object] = []

    def go() -> None:
        try:
            outcomes.append(run(config, archive, fakes))
        except ThreadLockedError as e:
            outcomes.append(e)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(type(o).__name__ for o in outcomes) == ["PublishResult", "ThreadLockedError"]
    assert all(len(f.posts) == 3 for f in fakes.values())


def test_cli_exit_code_3_when_locked_and_2_without_config(archive: Path, config: Config, tmp_path: Path) -> None:
    cfg_file = tmp_path / "crossposter.yaml"
    cfg_file.write_text(f"state_dir: {config.state_path}\nplatforms:\n  bluesky: {{handle: me.test}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}
    from crossposter.config import load_config

    with thread_lock(load_config(cfg_file), archive, TITLE):
        locked = subprocess.run([sys.executable, "-m", "crossposter", "post", str(archive), "--thread", TITLE,
                                 "--config", str(cfg_file)], capture_output=True, text=True, cwd=ROOT, env=env,
                                timeout=60)
    assert locked.returncode == 3, locked.stderr
    assert "another crossposter run" in locked.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    none = subprocess.run([sys.executable, "-m", "crossposter", "post", str(archive), "--thread", TITLE],
                          capture_output=True, text=True, cwd=elsewhere,
                          env={**env, "XDG_CONFIG_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
                          timeout=60)
    assert none.returncode == 2 and none.stderr.startswith("crossposter: error: no config file")


def test_cli_preflight_failure_exits_2_and_names_the_problem(archive: Path, tmp_path: Path) -> None:
    cfg_file = tmp_path / "crossposter.yaml"
    cfg_file.write_text("state_dir: state\nplatforms:\n  bluesky: {handle: me.test}\n  mastodon: {enabled: false}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}
    original = archive.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "crossposter", "post", str(archive), "--thread", TITLE,
                           "--config", str(cfg_file)], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)
    assert proc.returncode == 2
    assert "[bluesky]" in proc.stderr and "CROSSPOSTER_BLUESKY_PASSWORD" in proc.stderr
    assert "nothing was posted" in proc.stderr
    assert archive.read_bytes() == original


def test_dry_run_prints_posts_and_diff_and_leaves_the_archive_untouched(archive: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       secrets_env: None) -> None:
    from crossposter.commands.post import run as post_run

    cfg_file = tmp_path / "crossposter.yaml"
    cfg_file.write_text("state_dir: state\nplatforms:\n  bluesky: {handle: me.test}\n  x: {enabled: true}\n")
    before = archive.read_bytes()
    time.sleep(0.01)
    mtime = archive.stat().st_mtime_ns
    code = post_run(path=archive, thread=TITLE, platforms=None, dry_run=True, config_path=cfg_file)
    out = capsys.readouterr().out
    assert code == 0
    assert archive.read_bytes() == before and archive.stat().st_mtime_ns == mtime
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*.lock"))
    assert "The third post closes the thread." in out
    assert "+<!-- crossposter" in out and "+bluesky:" in out and "+mastodon:" in out and "+x:" in out
    assert "at://did:plc:fakeme.test/app.bsky.feed.post/" in out
    assert f"-{TITLE}" not in out  # only additions: the block


def test_a_failing_update_in_a_group_commit_fails_alone(archive: Path) -> None:
    from crossposter.metadata import update_thread_metadata
    from crossposter.publish import _GroupRecorder

    group = _GroupRecorder(update_thread_metadata, archive, TITLE)
    started, release = threading.Event(), threading.Event()

    def slow(meta: dict) -> None:
        started.set()
        release.wait(5)
        meta["bluesky"] = [{"id": "a"}]

    def bad(meta: dict) -> None:
        raise RuntimeError("the block was edited")

    errors: list[BaseException] = []

    def submit(fn) -> None:  # type: ignore[no-untyped-def]
        try:
            group(fn)
        except RuntimeError as e:
            errors.append(e)

    first = threading.Thread(target=submit, args=(slow,))
    first.start()
    assert started.wait(5)
    queued = [threading.Thread(target=submit, args=(fn,)) for fn in
              (bad, lambda m: m.__setitem__("x", [{"id": "b"}]), lambda m: m.__setitem__("mastodon", [{"id": "c"}]))]
    for t in queued:
        t.start()
    deadline = time.monotonic() + 5
    while len(group._queue) < 3 and time.monotonic() < deadline:  # all three queue behind the write in progress
        time.sleep(0.01)
    release.set()
    for t in (first, *queued):
        t.join(5)
    assert [str(e) for e in errors] == ["the block was edited"]
    assert meta_of(archive) == {"bluesky": [{"id": "a"}], "x": [{"id": "b"}], "mastodon": [{"id": "c"}]}
    assert group.writes == 2  # the three queued updates went out in one write


def test_progress_bars_run_through_a_whole_thread(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "x"])
    fakes["x"].fail("publish", RejectedError("x", "too long"), index=1)
    result = publish_thread(config, archive, TITLE, ["bluesky", "x"], adapters=fakes, progress=True)
    assert result.outcomes["bluesky"].state == "done" and result.outcomes["x"].state == "rejected"


def test_read_only_archive_fails_preflight(archive: Path, config: Config) -> None:
    archive.chmod(0o444)
    try:
        fakes = fake_adapters(["bluesky"])
        with pytest.raises(PreflightError) as info:
            run(config, archive, fakes)
        assert "archive is not writable" in str(info.value)
        assert not fakes["bluesky"].calls
    finally:
        archive.chmod(0o644)


def test_dry_run_of_a_partly_published_thread_shows_only_the_rest(archive: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 secrets_env: None) -> None:
    from crossposter.commands.post import run as post_run

    cfg_file = tmp_path / "crossposter.yaml"
    cfg_file.write_text("state_dir: state\nplatforms:\n  bluesky: {handle: me.test}\n  mastodon: {enabled: false}\n")
    config = Config(state_dir=tmp_path / "state", base_dir=tmp_path)
    first = fake_adapters(["bluesky"])
    first["bluesky"].fail("publish", RejectedError("bluesky", "no"), index=1)
    run(config, archive, first)
    before = archive.read_bytes()
    code = post_run(path=archive, thread=TITLE, platforms=None, dry_run=True, config_path=cfg_file)
    out = capsys.readouterr().out
    assert code == 0
    assert archive.read_bytes() == before
    assert "bluesky: 2 posts would be sent" in out
    assert "The opening post of the thread." not in out.split("Archive changes")[0]
    assert f"reply to {meta_of(archive)['bluesky'][0]['id']}" in out


# --------------------------------------------------------------------------- the dry run's pre-flight


def test_dry_run_reports_what_a_real_run_would_refuse(archive: Path, tmp_path: Path, no_secrets: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Missing credentials, a read-only archive and an unwritable state_dir stop a real run: the dry run says so."""
    from crossposter.commands.post import EXIT_PREFLIGHT
    from crossposter.commands.post import run as post_run

    blocked = tmp_path / "blocked"
    blocked.mkdir()
    cfg_file = tmp_path / "crossposter.yaml"
    cfg_file.write_text(f"state_dir: {blocked / 'state'}\nplatforms:\n  bluesky: {{handle: me.test}}\n")
    archive.chmod(0o444)
    blocked.chmod(0o555)
    try:
        code = post_run(path=archive, thread=TITLE, platforms=None, dry_run=True, config_path=cfg_file)
    finally:
        archive.chmod(0o644)
        blocked.chmod(0o755)
    captured = capsys.readouterr()
    assert code == EXIT_PREFLIGHT
    assert "The third post closes the thread." in captured.out  # the posts are still shown...
    assert "A real run would refuse this thread now" in captured.out  # ...clearly marked
    err = " ".join(captured.err.split())
    for expected in ("CROSSPOSTER_BLUESKY_PASSWORD is not set", "CROSSPOSTER_MASTODON_ACCESS_TOKEN is not set",
                     "the archive is not writable"):
        assert expected in err
    if os.geteuid() != 0:  # root may write into a 0555 folder: the check follows what the OS allows
        assert "cannot create the run lock" in err
    # and a real run refuses for the same reasons
    code = post_run(path=archive, thread=TITLE, platforms=None, dry_run=False, config_path=cfg_file)
    assert code == EXIT_PREFLIGHT
    assert "CROSSPOSTER_BLUESKY_PASSWORD is not set" in " ".join(capsys.readouterr().err.split())


def test_dry_run_without_a_config_says_a_real_run_needs_one(archive: Path, tmp_path: Path, secrets_env: None,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from crossposter.commands.post import EXIT_PREFLIGHT
    from crossposter.commands.post import run as post_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROSSPOSTER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config-here"))
    code = post_run(path=archive, thread=TITLE, platforms=["mastodon"], dry_run=True, config_path=None)
    captured = capsys.readouterr()
    assert code == EXIT_PREFLIGHT
    assert "The third post closes the thread." in captured.out
    assert "no config file" in " ".join(captured.err.split())


def test_a_dry_run_never_says_resume(archive: Path, tmp_path: Path, config: Config, secrets_env: None,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing was published by a dry run, so its summary cannot tell the person to run again to resume."""
    from crossposter.commands.post import run as post_run

    cfg_file = tmp_path / "crossposter.yaml"
    cfg_file.write_text("state_dir: state\nplatforms:\n  bluesky: {handle: me.test}\n  mastodon: {enabled: false}\n")
    assert run(config, archive, fake_adapters(["bluesky"])).ok
    archive.write_text(archive.read_text().replace("The opening post", "The edited opening post"))
    code = post_run(path=archive, thread=TITLE, platforms=None, dry_run=True, config_path=cfg_file)
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1 and "changed" in out  # the edited post stops the platform, as in a real run
    assert "run the same command again" not in out and "resume" not in out
    assert "A real run would not finish every platform" in out
