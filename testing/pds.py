"""A real Bluesky PDS (with its PLC directory) on 127.0.0.1, for the tests and the benchmarks.

The servers come from npm (`.ci/install-pds.sh` installs them into tests/pds/node_modules) and are started
by tests/pds/server.mjs on free loopback ports. `LocalPDS` reads straight from the PDS's XRPC endpoints
(`getRecord`, `listRecords`, `getBlob`) with plain HTTP, so the checks never depend on the code under test.
The pytest fixture is in tests/fixtures_pds.py; the benchmarks call `start` and `stop` themselves.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

PDS_DIR = Path(__file__).resolve().parent.parent / "tests" / "pds"
START_SCRIPT = PDS_DIR / "server.mjs"
START_TIMEOUT = 60.0


class Unavailable(Exception):
    """Node or the npm packages are missing (a skip on a developer's machine, a failure under CI)."""


class StartFailed(Exception):
    """The PDS was installed but did not come up; the message ends with its stderr."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@dataclass
class RunningPDS:
    """The server process and its handle; `stop` it when done."""

    proc: subprocess.Popen[bytes]
    server: LocalPDS
    stderr: IO[bytes]

    def stop(self) -> None:
        stop(self.proc)
        self.stderr.close()


def start(timeout: float = START_TIMEOUT) -> RunningPDS:
    """Start the PDS on free ports and wait until `/xrpc/_health` answers; `Unavailable` or `StartFailed`."""
    node = shutil.which("node")
    if node is None:
        raise Unavailable("`node` is not on PATH (install Node 20+, then run .ci/install-pds.sh)")
    if not (PDS_DIR / "node_modules" / "@atproto" / "pds").is_dir():
        raise Unavailable(f"{PDS_DIR / 'node_modules'} is missing or incomplete (run .ci/install-pds.sh)")

    pds_port, plc_port = free_port(), free_port()
    while plc_port == pds_port:
        plc_port = free_port()
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by RunningPDS.stop, or below on failure
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

    def failure(what: str) -> StartFailed:
        stderr.seek(0)
        tail = stderr.read().decode("utf-8", "replace")[-3000:]
        return StartFailed(f"{what}; server.mjs stderr:\n{tail}")

    url = f"http://127.0.0.1:{pds_port}"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise failure(f"the PDS exited with code {proc.returncode} while starting")
            if ready:
                try:
                    if requests.get(f"{url}/xrpc/_health", timeout=2).status_code == 200:
                        server = LocalPDS(url=ready["pds"], plc_url=ready["plc"],
                                          admin_password=ready["adminPassword"], pid=proc.pid)
                        return RunningPDS(proc, server, stderr)
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        raise failure(f"the PDS did not answer /xrpc/_health within {timeout:.0f} s")
    except BaseException:
        stop(proc)
        stderr.close()
        raise


def stop(proc: subprocess.Popen[bytes]) -> None:
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
