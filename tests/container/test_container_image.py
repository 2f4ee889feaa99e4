"""The image itself: built from the Dockerfile with podman and run against the local test servers.

tests/process/test_container.py checks the Dockerfile's shape and simulates its entrypoint; this builds the real image
(`podman --runtime runc build --format docker`, from the locked dependencies) and runs it as a person would:

* as the image's own uid 10001, the Compose way (secrets as files under /run/secrets): `health` turns
  healthy, a thread scheduled a few seconds ahead goes out to the real PDS, mastodon-mock and the X fake
  (read back from them), the archive on the /data volume holds the IDs, `podman stop` ends it with exit 0;
* as a host user, with the README's own `docker run` line (its --user, --stop-timeout and volume layout);
* with a secret file the container user cannot read: a clear error at start, exit 1.

Needs podman, runc and the stand-in base image (`.ci/install-container.sh`, which uses ../shared/container/):
without them this skips with the reason, and fails under CI=true. Deselect with `-m "not container"`.
The dependency stage is kept under a tag (localhost/crossposter-ci:deps) so a later run reuses it until a
lock file changes; the test image, its containers and every other layer this run made are removed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.peer.test_publish_e2e import TITLE, Servers, assert_thread_everywhere, write_archive, write_config
from tests.process.test_container import readme_docker_run

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
BASE = "python:3.11-slim-bookworm"
IMAGE = "localhost/crossposter-ci:test"
DEPS = "localhost/crossposter-ci:deps"
IMAGE_UID = 10001
HOST_UID = 4242  # a "normal host user": a uid the image has no passwd entry for
BUILD_TIMEOUT = 900.0  # a clean machine downloads every locked wheel
PUBLISH_TIMEOUT = 120.0
HEALTHY_TIMEOUT = 60.0


def _unavailable(reason: str) -> None:
    """Missing tools: a failure under CI (where .ci/install-container.sh provides them), a skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"the container test is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"cannot build the image here: {reason}")


class Podman:
    """`podman --runtime runc` with this machine's settings (no systemd: cgroupfs; runc: crun fails here)."""

    def __init__(self, conf: Path) -> None:
        self.env = {**os.environ}
        if not self.env.get("CONTAINERS_CONF"):
            conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n'
                            'runtime = "runc"\n')
            self.env["CONTAINERS_CONF"] = str(conf)

    def __call__(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = ["podman", "--runtime", "runc", *args]
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            pytest.fail(f"{shlex.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}",
                        pytrace=False)
        return r

    def image_id(self, name: str) -> str | None:
        r = self("image", "inspect", "--format", "{{.Id}}", name, check=False)
        return (r.stdout.strip() or None) if r.returncode == 0 else None

    def image_ids(self) -> set[str]:
        return set(self("images", "--all", "--no-trunc", "--quiet").stdout.split())

    def remove_container(self, name: str) -> None:
        self("rm", "--force", "--time", "0", "--ignore", name, timeout=60, check=False)


@pytest.fixture(scope="session")  # session: set up before the session's servers, so a skip costs nothing
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            _unavailable(f"`{tool}` is not installed (run .ci/install-container.sh as root)")
    if os.geteuid() != 0:
        _unavailable("podman runs as root here (its image storage is root's)")
    p = Podman(tmp_path_factory.mktemp("podman") / "containers.conf")
    if p("image", "exists", BASE, check=False).returncode != 0:
        _unavailable(f"no base image {BASE}: run .ci/install-container.sh, which builds a local stand-in with "
                     "../shared/container/make-python-base.sh (no image registry is reachable here)")
    return p


@pytest.fixture(scope="module")
def image(podman: Podman) -> Iterator[str]:
    """The image built from this checkout; afterwards only the dependency stage (tagged) is left behind."""
    before = podman.image_ids()
    old_deps = podman.image_id(DEPS)
    build = ["build", "--pull=never", "--network", "host", "--format", "docker", "--layers"]
    started = time.monotonic()
    try:
        # The dependency stage under its own tag: it is the layer worth keeping between runs.
        podman(*build, "--target", "deps", "--tag", DEPS, str(ROOT), timeout=BUILD_TIMEOUT)
        podman(*build, "--tag", IMAGE, str(ROOT), timeout=BUILD_TIMEOUT)
        print(f"image built in {time.monotonic() - started:.1f} s")
        yield IMAGE
    finally:
        podman("rmi", "--force", IMAGE, timeout=120, check=False)
        new_deps = podman.image_id(DEPS)
        if old_deps and old_deps != new_deps:
            podman("rmi", old_deps, timeout=120, check=False)  # a lock file changed: the old stage is dead weight
        # What this run made and nothing uses: the build stage's layers (removing a leaf removes its untagged
        # parents too, up to the tagged dependency stage).
        for _ in range(3):
            dangling = set(podman("images", "--all", "--no-trunc", "--quiet", "--filter", "dangling=true",
                                  check=False).stdout.split())
            leftovers = dangling - before
            if not leftovers:
                break
            podman("rmi", *sorted(leftovers), timeout=120, check=False)


# --------------------------------------------------------------------------- the data volume


def _chown_tree(path: Path, uid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, uid, follow_symlinks=False)


def _data_dir(tmp_path: Path, servers: Servers, platforms: list[str], marker: str, due: datetime) -> Path:
    """/data as the README describes it: crossposter.yaml, threads/*.md (with images), the state beside them."""
    data = tmp_path / "data"
    archive = write_archive(data / "threads", marker)
    # the thread is scheduled: a metadata block under its heading
    text = archive.read_bytes().decode("utf-8")
    heading = f"## {TITLE}\r\n"
    assert text.count(heading) == 1
    archive.write_bytes(text.replace(heading, f"{heading}<!-- crossposter\r\nschedule: {due.isoformat()}\r\n"
                                              "-->\r\n").encode("utf-8"))
    cfg = write_config(data, servers, platforms)
    with cfg.open("a", encoding="utf-8") as f:
        f.write("archives: ['threads/*.md']\n"
                "daemon: {log_format: json, heartbeat_interval: 1, watch_interval: 0.5}\n")
    from crossposter.archive import read_archive

    thread = read_archive(archive).find(TITLE)
    assert thread.metadata.get("schedule"), thread.metadata  # the block is where the daemon looks
    return data


def _archive(data: Path) -> Path:
    return data / "threads" / "threads.md"


def _recorded(data: Path, platforms: list[str]) -> dict[str, int]:
    from crossposter.archive import ArchiveError, read_archive

    try:
        meta = read_archive(_archive(data)).find(TITLE).metadata
    except ArchiveError:
        meta = {}
    return {p: len(meta.get(p) or []) for p in platforms}


def _wait_published(podman: Podman, name: str, data: Path, platforms: list[str]) -> None:
    """Until every platform has the thread's 3 posts recorded in the archive (or the container died)."""
    deadline = time.monotonic() + PUBLISH_TIMEOUT
    while time.monotonic() < deadline:
        if all(n == 3 for n in _recorded(data, platforms).values()):
            return
        _assert_running(podman, name, "before publishing")
        time.sleep(0.5)
    pytest.fail(f"not published within {PUBLISH_TIMEOUT:.0f} s (recorded: {_recorded(data, platforms)}):\n"
                f"{_logs(podman, name)}", pytrace=False)


def _wait_healthy(podman: Podman, name: str, command: list[str]) -> str:
    """Until `command` (a health check) exits 0; its output. Fails at once when the container is not running."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT
    while True:
        _assert_running(podman, name, "while starting")
        r = podman(*command, timeout=30, check=False)
        if r.returncode == 0:
            return r.stdout.strip()
        if time.monotonic() > deadline:
            pytest.fail(f"not healthy within {HEALTHY_TIMEOUT:.0f} s: {r.stdout} {r.stderr}\n{_logs(podman, name)}",
                        pytrace=False)
        time.sleep(0.5)


def _assert_running(podman: Podman, name: str, when: str) -> None:
    state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
    if state != "running":
        pytest.fail(f"the container stopped ({state}) {when}:\n{_logs(podman, name)}", pytrace=False)


def _logs(podman: Podman, name: str, *, tail: int = 6000) -> str:
    """The container's output (the end of it, for a failure message; tail=0: all of it)."""
    r = podman("logs", name, check=False)
    return (r.stdout + r.stderr)[-tail:] if tail else r.stdout + r.stderr


def _events(logs: str) -> list[dict]:
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def _published_at(events: list[dict], due: datetime) -> None:
    """The daemon published the thread once, at its time (not before: a scheduled job, not a start-up run)."""
    published = [e for e in events if e.get("event") == "published"]
    assert len(published) == 1, events
    assert datetime.fromisoformat(published[0]["ts"]) >= due, (published, due)


def _stop(podman: Podman, name: str, timeout: float) -> int:
    podman("stop", name, timeout=timeout + 30)
    return int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())


@pytest.fixture
def servers(pds, mastodon_server, x_server) -> Servers:  # noqa: ANN001 - fixtures from plugins
    handle, did, password = pds.create_account("img")
    return Servers(pds, mastodon_server, x_server, handle, did, password)


# --------------------------------------------------------------------------- tests


def test_image_as_uid_10001_publishes_a_scheduled_thread(podman: Podman, image: str, servers: Servers,
                                                         tmp_path: Path) -> None:
    """The Compose way: the image's own user, secrets as files under /run/secrets readable by it."""
    platforms = ["bluesky", "mastodon", "x"]
    marker = uuid.uuid4().hex[:10]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    data = _data_dir(tmp_path, servers, platforms, marker, due)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    values = {"CROSSPOSTER_BLUESKY_PASSWORD": servers.bsky_password,
              "CROSSPOSTER_MASTODON_ACCESS_TOKEN": servers.mastodon.token}
    for var, value in values.items():
        f = secrets / var.lower()
        f.write_text(value + "\n")
        f.chmod(0o400)  # what the README says: owned by the container's user, readable by nobody else
    _chown_tree(data, IMAGE_UID)
    _chown_tree(secrets, IMAGE_UID)

    name = f"crossposter-ci-{marker}"
    files = [a for var in values for a in ("--env", f"{var}_FILE=/run/secrets/{var.lower()}")]
    x_env = [a for k, v in servers.x.env.items() for a in ("--env", f"{k}={v}")]
    try:
        podman("run", "--detach", "--name", name, "--network", "host", "--stop-timeout", "90",
               "--volume", f"{data}:/data", "--volume", f"{secrets}:/run/secrets:ro", *files, *x_env, image)
        # the image's HEALTHCHECK, run by podman (no systemd here runs it on its interval)
        _wait_healthy(podman, name, ["healthcheck", "run", name])
        assert podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() == "healthy"
        _wait_published(podman, name, data, platforms)
        assert _stop(podman, name, 90) == 0
        logs = _logs(podman, name, tail=0)
    finally:
        podman.remove_container(name)

    # what each server holds, read back from the servers; the archive holds their IDs
    assert_thread_everywhere(servers, _archive(data), data / "crossposter.yaml", marker, platforms)
    # it ran as uid 10001: what it wrote on the volume is that uid's
    assert _archive(data).stat().st_uid == IMAGE_UID
    assert (data / "state").stat().st_uid == IMAGE_UID
    events = _events(logs)
    _published_at(events, due)
    assert [e for e in events if e.get("event") == "stopped_daemon"], logs
    assert not [e for e in events if e.get("level") in ("error", "critical")], logs
    for secret in [*values.values(), *servers.x.env.values()]:
        assert secret not in logs


def test_readme_docker_run_as_a_host_user(podman: Podman, image: str, servers: Servers, tmp_path: Path) -> None:
    """The README's `docker run`, as written (--user "$(id -u):$(id -g)", its --stop-timeout, $PWD as /data), for a
    user whose uid the image does not know; only what cannot be the same here is changed: podman for docker, the
    test image and a unique name, --network host to reach the local servers, the values of the variables."""
    platforms = ["bluesky", "mastodon"]
    marker = uuid.uuid4().hex[:10]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    data = _data_dir(tmp_path, servers, platforms, marker, due)
    _chown_tree(data, HOST_UID)
    args = readme_docker_run()
    assert args[:2] == ["docker", "run"] and args[-1] == "crossposter", args
    values = {"$(id -u)": str(HOST_UID), "$(id -g)": str(HOST_UID), "$PWD": str(data),
              "$BSKY_APP_PASSWORD": servers.bsky_password, "$MASTODON_TOKEN": servers.mastodon.token}
    name = f"crossposter-ci-{marker}"
    run: list[str] = []
    it = iter(args[2:-1])
    for arg in it:
        if arg == "--name":
            run += ["--name", name]
            next(it)
            continue
        for var, value in values.items():
            arg = arg.replace(var, value)
        assert "$" not in arg, f"the README's docker run uses a variable this test does not know: {arg}"
        run.append(arg)
    stop_timeout = int(run[run.index("--stop-timeout") + 1]) if "--stop-timeout" in run else 10  # Docker's default
    try:
        podman("run", "--network", "host", *run, image)
        r = _wait_healthy(podman, name, ["exec", name, "crossposter", "health"])
        assert r.startswith("healthy"), r
        assert podman("exec", name, "id", "-u").stdout.strip() == str(HOST_UID)
        _wait_published(podman, name, data, platforms)
        assert _stop(podman, name, stop_timeout) == 0
        logs = _logs(podman, name, tail=0)
    finally:
        podman.remove_container(name)

    assert_thread_everywhere(servers, _archive(data), data / "crossposter.yaml", marker, platforms)
    # every file it wrote stays the host user's
    for p in [_archive(data), *(data / "state").rglob("*")]:
        assert p.stat().st_uid == HOST_UID, p
    _published_at(_events(logs), due)
    assert servers.bsky_password not in logs and servers.mastodon.token not in logs


def test_unreadable_secret_file_stops_the_daemon_with_a_clear_error(podman: Podman, image: str,
                                                                    tmp_path: Path) -> None:
    """A Compose file secret keeps the host file's owner and mode: one the container user cannot read is named."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "crossposter.yaml").write_text("platforms:\n  bluesky: {handle: me.test}\n  mastodon: {enabled: false}\n")
    _chown_tree(data, IMAGE_UID)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bluesky_password").write_text("unreadable-secret-value\n")
    (secrets / "bluesky_password").chmod(0o600)  # root's, as a file made with sudo would be
    name = f"crossposter-ci-{uuid.uuid4().hex[:10]}"
    try:
        r = podman("run", "--name", name, "--network", "none", "--volume", f"{data}:/data",
                   "--volume", f"{secrets}:/run/secrets:ro",
                   "--env", "CROSSPOSTER_BLUESKY_PASSWORD_FILE=/run/secrets/bluesky_password", image,
                   timeout=120, check=False)
    finally:
        podman.remove_container(name)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert re.search(r"CROSSPOSTER_BLUESKY_PASSWORD_FILE: /run/secrets/bluesky_password cannot be read "
                     r"\(Permission denied\) \(let user id 10001, which crossposter runs as, read it", out), out
    assert "unreadable-secret-value" not in out
