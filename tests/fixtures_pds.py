"""A real Bluesky PDS (with its PLC directory) on 127.0.0.1 for the whole test session.

Loaded as a plugin by tests/conftest.py; test modules just ask for the `pds` fixture. The servers come
from npm (`.ci/install-pds.sh` installs them into tests/pds/node_modules) and are started by
tests/pds/server.mjs on free loopback ports. Reads go straight to the PDS's XRPC endpoints
(`getRecord`, `listRecords`, `getBlob`) with plain HTTP, so the checks never depend on the code under test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

PDS_DIR = Path(__file__).resolve().parent / "pds"
START_SCRIPT = PDS_DIR / "server.mjs"
START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    """No PDS: a failure under CI (where it must run), a skip with the reason on a developer's machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"the local Bluesky PDS is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"local Bluesky PDS unavailable: {reason}")


@dataclass
class LocalPDS:
    """Handle on the running PDS, with the few raw XRPC calls the tests use to check what was written."""

    url: str
    plc_url: str
    admin_password: str
    pid: int
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def xrpc_get(self, nsid: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.url}/xrpc/{nsid}", params=params, timeout=30)

    def xrpc_post(self, nsid: str, body: dict[str, Any], token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.session.post(f"{self.url}/xrpc/{nsid}", json=body, headers=headers, timeout=30)

    def create_account(self, handle_prefix: str) -> tuple[str, str, str]:
        """A fresh account: (handle ending in .test, did, password). Unique per call."""
        label = "".join(c for c in handle_prefix.lower() if c.isalnum() or c == "-").strip("-") or "user"
        handle = f"{label[:20]}-{secrets.token_hex(3)}.test"
        password = secrets.token_urlsafe(12)
        r = self.xrpc_post("com.atproto.server.createAccount",
                           {"handle": handle, "email": f"{handle}@example.com", "password": password})
        assert r.status_code == 200, f"createAccount {handle}: HTTP {r.status_code} {r.text}"
        return handle, r.json()["did"], password

    def get_record(self, uri: str) -> dict[str, Any] | None:
        """{"uri", "cid", "value"} of the record at an at:// URI, or None when it does not exist."""
        repo, collection, rkey = uri.removeprefix("at://").split("/", 2)
        r = self.xrpc_get("com.atproto.repo.getRecord", repo=repo, collection=collection, rkey=rkey)
        if r.status_code == 400 and r.json().get("error") == "RecordNotFound":
            return None
        assert r.status_code == 200, f"getRecord {uri}: HTTP {r.status_code} {r.text}"
        return r.json()

    def list_records(self, did: str, collection: str = "app.bsky.feed.post") -> list[dict[str, Any]]:
        """Every record of a collection (all pages), oldest first by record key."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"repo": did, "collection": collection, "limit": 100, "reverse": "true"}
            if cursor:
                params["cursor"] = cursor
            r = self.xrpc_get("com.atproto.repo.listRecords", **params)
            assert r.status_code == 200, f"listRecords {did} {collection}: HTTP {r.status_code} {r.text}"
            page = r.json()
            out.extend(page.get("records", []))
            cursor = page.get("cursor")
            if not cursor or not page.get("records"):
                break
        return sorted(out, key=lambda rec: rec["uri"].rsplit("/", 1)[-1])

    def get_blob(self, did: str, cid: str) -> bytes:
        r = self.xrpc_get("com.atproto.sync.getBlob", did=did, cid=cid)
        assert r.status_code == 200, f"getBlob {did} {cid}: HTTP {r.status_code} {r.text[:200]}"
        return r.content


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask nicely (stdin closed + SIGTERM lets it remove its temp dir), then kill the whole group."""
    try:
        if proc.stdin:
            proc.stdin.close()
    except OSError:
        pass
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def pds() -> Iterator[LocalPDS]:
    node = shutil.which("node")
    if node is None:
        _unavailable("`node` is not on PATH (install Node 20+, then run .ci/install-pds.sh)")
    if not (PDS_DIR / "node_modules" / "@atproto" / "pds").is_dir():
        _unavailable(f"{PDS_DIR / 'node_modules'} is missing or incomplete (run .ci/install-pds.sh)")

    pds_port, plc_port = _free_port(), _free_port()
    while plc_port == pds_port:
        plc_port = _free_port()
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below, after the server stops
    proc = subprocess.Popen(
        [node, str(START_SCRIPT), "--pds-port", str(pds_port), "--plc-port", str(plc_port)],
        cwd=PDS_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
        start_new_session=True,  # its own process group, so the stop reaches every child
    )
    ready: dict[str, Any] = {}

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("ready"):
                ready.update(msg)

    threading.Thread(target=read_stdout, daemon=True).start()

    def failure(what: str) -> str:
        stderr.seek(0)
        tail = stderr.read().decode("utf-8", "replace")[-3000:]
        return f"{what}; server.mjs stderr:\n{tail}"

    url = f"http://127.0.0.1:{pds_port}"
    deadline = time.monotonic() + START_TIMEOUT
    healthy = False
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(failure(f"the PDS exited with code {proc.returncode} while starting"), pytrace=False)
            if ready:
                try:
                    healthy = requests.get(f"{url}/xrpc/_health", timeout=2).status_code == 200
                except requests.RequestException:
                    healthy = False
                if healthy:
                    break
            time.sleep(0.1)
        if not healthy:
            pytest.fail(failure(f"the PDS did not answer /xrpc/_health within {START_TIMEOUT:.0f} s"),
                        pytrace=False)
        server = LocalPDS(url=ready["pds"], plc_url=ready["plc"], admin_password=ready["adminPassword"],
                          pid=proc.pid)
        yield server
    finally:
        _stop(proc)
        stderr.close()
