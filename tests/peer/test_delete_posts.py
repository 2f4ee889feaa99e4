"""Each adapter's `delete` against the local peers (PDS, mastodon-mock, the X fake), and its error answers.

What a delete did is read back from the peer itself (getRecord, GET status, the fake's store), never
through the adapter. A post already gone must count as deleted (the mirror repeats a deletion a crash
cut short); a refusal must be an error that says what happened.
"""

from __future__ import annotations

import requests
import responses
from pydantic import SecretStr

from crossposter.platforms.base import OutgoingPost, RejectedError, UnauthorizedError
from crossposter.platforms.bluesky import new_tid
from crossposter.platforms.mastodon import MastodonAdapter
from crossposter.platforms.x import XAdapter
from testing.xfake import ACCESS_TOKEN, ACCESS_TOKEN_SECRET, CONSUMER_KEY, CONSUMER_SECRET
from tests.peer.test_bluesky import adapter_for, outgoing
from tests.unit.test_x import API, _assert_oauth_signed
from tests.unit.test_x import _adapter as x_mocked


def _post(text: str, index: int = 0) -> OutgoingPost:
    return OutgoingPost(text=text, index=index, thread_key="threads.md::Delete me")


# --------------------------------------------------------------------------- Bluesky (the real PDS)


def test_bluesky_delete_removes_the_record_and_a_repeat_is_harmless(pds, tmp_path):
    account = pds.create_account("del")
    bsky = adapter_for(pds, account, tmp_path / "state")
    keep = bsky.publish(outgoing("stays", 0), None, None)
    gone = bsky.publish(outgoing("goes", 1), keep, keep)
    assert pds.get_record(gone.id) is not None

    bsky.delete(gone.id)
    assert pds.get_record(gone.id) is None
    assert pds.get_record(keep.id) is not None  # exactly that record
    bsky.delete(gone.id)  # already gone: deleted, no error
    bsky.delete(f"at://{account[1]}/app.bsky.feed.post/{new_tid()}")  # never existed: the same
    assert [r["uri"] for r in pds.list_records(account[1])] == [keep.id]


def test_bluesky_never_deletes_another_accounts_post(pds, tmp_path):
    mine, theirs = pds.create_account("me"), pds.create_account("them")
    other = adapter_for(pds, theirs, tmp_path / "them").publish(outgoing("not yours", 0), None, None)
    bsky = adapter_for(pds, mine, tmp_path / "me")
    try:
        bsky.delete(other.id)
    except RejectedError as e:
        assert "not a post of" in str(e) and mine[0] in str(e)
    else:
        raise AssertionError("another account's record was not refused")
    assert pds.get_record(other.id) is not None


# --------------------------------------------------------------------------- Mastodon (mastodon-mock)


def _masto(server, tmp_path) -> MastodonAdapter:
    return MastodonAdapter(server.url, SecretStr(server.token), state_dir=tmp_path / "state")


def _status_code(server, status_id: str) -> int:
    return requests.get(f"{server.url}/api/v1/statuses/{status_id}",
                        headers={"Authorization": f"Bearer {server.token}"}, timeout=10).status_code


def test_mastodon_delete_removes_the_status_and_a_repeat_is_harmless(mastodon_server, tmp_path):
    masto = _masto(mastodon_server, tmp_path)
    keep = masto.publish(_post("stays " + new_tid()), None, None)
    gone = masto.publish(_post("goes " + new_tid(), 1), keep, keep)
    assert _status_code(mastodon_server, gone.id) == 200

    masto.delete(gone.id)
    assert _status_code(mastodon_server, gone.id) == 404
    assert _status_code(mastodon_server, keep.id) == 200
    masto.delete(gone.id)  # 404 now: counts as deleted


def test_mastodon_update_gives_the_status_its_new_text_and_keeps_it_in_place(mastodon_server, tmp_path):
    masto = _masto(mastodon_server, tmp_path)
    root = masto.publish(_post("first " + new_tid()), None, None)
    reply = masto.publish(_post("before the edit " + new_tid(), 1), root, root)
    text = "after the edit " + new_tid()
    masto.update(reply.id, text)
    masto.update(reply.id, text)  # a repeat after a crash: the same text again
    status = requests.get(f"{mastodon_server.url}/api/v1/statuses/{reply.id}",
                          headers={"Authorization": f"Bearer {mastodon_server.token}"}, timeout=10).json()
    assert text in status["content"] and status["in_reply_to_id"] == root.id and status["edited_at"]
    assert masto.lookup(reply.id).text == text


@responses.activate
def test_mastodon_delete_answers_410_is_deleted_403_is_a_clear_error(tmp_path):
    base = "https://masto.example"
    responses.get(f"{base}/api/v1/accounts/verify_credentials", json={"id": "7", "acct": "me"})
    responses.get(f"{base}/api/v1/instance", json={"version": "4.3.0"})
    responses.get(f"{base}/api/v2/instance", json={"version": "4.3.0"})
    responses.delete(f"{base}/api/v1/statuses/111", status=410, json={"error": "Gone"})
    responses.delete(f"{base}/api/v1/statuses/222", status=403, json={"error": "This action is not allowed"})
    masto = MastodonAdapter(base, SecretStr("tok-secret-123"), state_dir=tmp_path / "state")
    masto.delete("111")
    try:
        masto.delete("222")
    except UnauthorizedError as e:
        assert "HTTP 403" in str(e) and "This action is not allowed" in str(e) and "deleting post 222" in str(e)
        assert "tok-secret-123" not in str(e)
    else:
        raise AssertionError("a refused delete passed as deleted")


# --------------------------------------------------------------------------- X (the X fake, and responses)


def test_x_delete_removes_the_post_and_a_repeat_is_harmless(x_server):
    x = XAdapter(SecretStr(CONSUMER_KEY), SecretStr(CONSUMER_SECRET), SecretStr(ACCESS_TOKEN),
                 SecretStr(ACCESS_TOKEN_SECRET), api_base=x_server.url, upload_base=x_server.url)
    keep = x.publish(_post("stays"), None, None)
    gone = x.publish(_post("goes", 1), keep, keep)

    x.delete(gone.id)
    assert x_server.tweet(gone.id) is None and x_server.tweet(keep.id) is not None
    x.delete(gone.id)  # 404 now: counts as deleted
    assert not x_server.auth_failures
    assert [r for r in x_server.requests if r[0] == "DELETE"] == [
        ("DELETE", f"/2/tweets/{gone.id}", 200), ("DELETE", f"/2/tweets/{gone.id}", 404)]


@responses.activate
def test_x_delete_404_is_deleted_403_is_rejected_with_xs_words() -> None:
    responses.delete(f"{API}/2/tweets/404", status=404, json={"title": "Not Found Error", "detail": "gone"})
    responses.delete(f"{API}/2/tweets/403", status=403, json={
        "title": "Forbidden", "detail": "You are not allowed to delete this Tweet.", "status": 403})
    responses.delete(f"{API}/2/tweets/500", status=200, json={"data": {"deleted": False}})
    x = x_mocked()
    x.delete("404")
    _assert_oauth_signed(responses.calls[0].request)
    try:
        x.delete("403")
    except RejectedError as e:
        assert "deleting post 403" in str(e) and "You are not allowed to delete this Tweet." in str(e)
    else:
        raise AssertionError("a refused delete passed as deleted")
    try:
        x.delete("500")
    except Exception as e:  # noqa: BLE001
        assert "did not say it was deleted" in str(e)
    else:
        raise AssertionError("`deleted: false` passed as deleted")


# --------------------------------------------------------------------------- the daemon's way: in a child process


def test_the_daemons_delete_child_deletes_on_the_x_fake_and_says_so_per_post(x_server, tmp_path, monkeypatch):
    from crossposter.config import load_config
    from crossposter.mirror.backup_child import delete_out_of_process

    for k, v in x_server.env.items():
        monkeypatch.setenv(k, v)
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text(f"state_dir: state\nplatforms:\n  bluesky: {{handle: me.test}}\n  x: {{enabled: true, api_base: "
                   f"'{x_server.url}', upload_base: '{x_server.url}'}}\nmirror: {{from: bluesky, to: [x], "
                   "deletions: delete}\n", encoding="utf-8")
    x = XAdapter(SecretStr(CONSUMER_KEY), SecretStr(CONSUMER_SECRET), SecretStr(ACCESS_TOKEN),
                 SecretStr(ACCESS_TOKEN_SECRET), api_base=x_server.url, upload_base=x_server.url)
    ref = x.publish(_post("to be deleted by the child"), None, None)
    outcomes = delete_out_of_process(load_config(cfg), "x", [ref.id, "1870000000000999999"])
    assert outcomes == {ref.id: None, "1870000000000999999": None}  # the second was never there: gone is gone
    assert x_server.tweet(ref.id) is None
