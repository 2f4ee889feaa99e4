"""The idle poll of a Mastodon source: one small request (`min_id`, `limit=1`) and no backup child, against
mastodon-mock; a new status, a cursor with a gap or a wrong token make the backup run."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

from crossposter.config import load_config
from crossposter.mirror import backup_child
from crossposter.mirror.source import run_source_backup
from tests.peer.test_backup_peers import _api, _dev_user


def test_an_idle_mastodon_poll_is_one_request_and_no_child(mastodon_server, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    _, token = _dev_user(mastodon_server, f"idle_{uuid.uuid4().hex[:8]}")
    api = _api(mastodon_server, token)
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", token)
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text(f"state_dir: state\nplatforms:\n  bluesky: {{enabled: false}}\n  mastodon: {{enabled: true, "
                   f"instance: '{mastodon_server.url}'}}\n  x: {{enabled: true}}\n"
                   "mirror: {from: mastodon, to: [x], every: 60}\n", encoding="utf-8")
    config = load_config(cfg)
    api.status_post("A toot before the first backup.")
    run_source_backup(config)  # the cursor
    requests: list[str] = []
    real = urllib.request.urlopen

    def counting(req, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        requests.append(req.full_url if isinstance(req, urllib.request.Request) else str(req))
        return real(req, *a, **k)

    def no_child(*_a: object, **_k: object) -> None:
        raise AssertionError("the backup child ran on an idle poll")

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    monkeypatch.setattr(backup_child, "run_in_child", no_child)
    result = backup_child.backup_out_of_process(config)
    assert result.newest == {} and len(requests) == 1 and "min_id=" in requests[0] and "limit=1" in requests[0]
    api.status_post("A new toot.")
    assert backup_child.nothing_new(config) is False
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", "a-wrong-but-long-enough-token")
    assert backup_child.nothing_new(config) is False


def test_a_cursor_with_a_gap_or_of_another_instance_is_not_trusted(tmp_path: Path, monkeypatch) -> None:
    from crossposter.backup.state import BackupState
    from crossposter.mirror.report import account_name

    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", "a-long-enough-access-token")
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("state_dir: state\nplatforms: {bluesky: {enabled: false}, mastodon: {enabled: true, instance: "
                   "'http://127.0.0.1:9'}, x: {enabled: true}}\nmirror: {from: mastodon, to: [x]}\n")
    config = load_config(cfg)

    def no_request(*_a: object, **_k: object) -> None:
        raise AssertionError("asked the server")

    monkeypatch.setattr(urllib.request, "urlopen", no_request)
    state = BackupState.load(config.state_path, "mastodon", account_name(config, "mastodon"))
    for cursor in ({"v": 1, "instance": "http://127.0.0.1:9", "account": "1", "newest": "5", "gap": [None, "3"]},
                   {"v": 1, "instance": "https://elsewhere.example", "account": "1", "newest": "5"},
                   {"v": 1, "instance": "http://127.0.0.1:9", "account": "1/../x", "newest": "5"}):
        state.save(json.dumps(cursor))
        assert backup_child.nothing_new(config) is False
    state.save(None)
    assert backup_child.nothing_new(config) is False


def test_an_idle_x_poll_is_one_signed_request_after_the_first(x_server, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from crossposter.backup.state import BackupState
    from crossposter.mirror.report import account_name

    for k, v in x_server.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("crossposter.backup.x_api._X_USER_IDS", {})  # the user id cache (moved there)
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text(f"state_dir: state\nplatforms:\n  mastodon: {{enabled: true}}\n  x: {{enabled: true, api_base: "
                   f"'{x_server.url}', upload_base: '{x_server.url}', username: xfake_user}}\n"
                   "mirror: {from: x, to: [mastodon]}\n", encoding="utf-8")
    config = load_config(cfg)
    state = BackupState.load(config.state_path, "x", account_name(config, "x"))
    assert backup_child.nothing_new(config) is False  # no cursor yet: the backup runs
    from testing.xfake import FakeTweet

    with x_server.lock:  # the person's post, as X would have it
        x_server.tweets.append(FakeTweet(id=str(1_869_000_000_000_000_000 + len(x_server.tweets)),
                                         text=f"A post {uuid.uuid4().hex}", in_reply_to=None, media_ids=[],
                                         conversation_id=""))
    newest = max(int(t.id) for t in x_server.tweets)
    state.save(str(newest))
    before = len(x_server.requests)
    assert backup_child.nothing_new(config) is True
    assert [p for _m, p, _s in x_server.requests[before:]] == ["/2/users/me", "/2/users/1234567890/tweets"]
    before = len(x_server.requests)
    assert backup_child.nothing_new(config) is True  # the user id is remembered: one request
    assert [(m, s) for m, _p, s in x_server.requests[before:]] == [("GET", 200)] and not x_server.auth_failures
    state.save(str(newest - 1))  # a post above the cursor (the fake ignores since_id: the IDs decide)
    assert backup_child.nothing_new(config) is False
    state.save(json.dumps({"since_id": str(newest), "next_token": "abc", "newest_id": None}))
    assert backup_child.nothing_new(config) is False
    monkeypatch.setenv("CROSSPOSTER_X_ACCESS_TOKEN_SECRET", "a-wrong-secret")
    state.save(str(newest))
    assert backup_child.nothing_new(config) is False  # a 401 runs the backup, which says what is wrong
