"""Mention links from the archive become mention facets of the right DID on a real PDS (handle or DID form)."""

from __future__ import annotations

from pathlib import Path

from crossposter.archive import read_archive
from crossposter.plan import PlanOptions, plan_thread
from tests.peer.test_bluesky import account, adapter_for, outgoing, state_dir  # noqa: F401 (fixtures)


def test_mention_links_by_handle_and_by_did_reach_their_account(pds, account, state_dir, tmp_path: Path) -> None:  # noqa: F811
    _, did, _ = account
    bob_handle, bob_did, _ = pds.create_account("bob")
    carol_handle, carol_did, _ = pds.create_account("carol")
    path = tmp_path / "archive.md"
    path.write_text(f"# A\n\n## T\n\nHi [@{bob_handle}](https://bsky.app/profile/{bob_handle}) and "
                    f"[@carol.old.handle](https://bsky.app/profile/{carol_did}), not [@dave](https://x.com/dave).\n",
                    encoding="utf-8")
    archive = read_archive(path)
    post = plan_thread(archive, archive.threads[0], PlanOptions(decode_images=False)).platforms["bluesky"].posts[0]
    bsky = adapter_for(pds, account, state_dir)
    bsky.login()
    ref = bsky.publish(outgoing(post.text, 0, facets=post.facets), None, None)
    record = next(r for r in pds.list_records(did) if r["uri"] == ref.id)["value"]
    raw = record["text"].encode()
    got = [(raw[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode(), f["features"][0]) for f in record["facets"]]
    assert record["text"] == f"Hi @{bob_handle} and @carol.old.handle, not @dave."
    assert [(text, feature.get("did") or feature.get("uri")) for text, feature in got] == [
        (f"@{bob_handle}", bob_did), ("@carol.old.handle", carol_did), ("@dave", "https://x.com/dave")]
    assert carol_handle != "carol.old.handle"
