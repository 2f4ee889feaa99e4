"""The image, without a docker engine: the Dockerfile's own ENTRYPOINT/CMD/HEALTHCHECK run as the container would.

The Dockerfile is parsed (not copied into the test) and its final stage drives the run: the
USER's uid, the ENV (CROSSPOSTER_CONFIG), the WORKDIR, the VOLUME, the entrypoint and the
health check command. `/data` is simulated by a fresh directory (the test must not create
/data on the host); every path the image names under /data is mapped there. When the tests
run as root, the processes are started with `setpriv` under the image's non-root uid. That
uid only gets CAP_DAC_READ_SEARCH, so it can read the Python installation (which lives under
/root here, mode 0700; in the image it is /usr/local) but can write nothing it does not own —
just like the container user.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (w, _) in enumerate(instructions) if w == "FROM")
    return instructions[last:]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not exec form: {args}"
    return value


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for w, rest in stage:
        if w == "ENV":
            for item in shlex.split(rest):
                k, _, v = item.partition("=")
                env[k] = v
    return env


@pytest.fixture(scope="module")
def stage() -> list[tuple[str, str]]:
    return final_stage(parse_dockerfile(ROOT / "Dockerfile"))


def _one(stage: list[tuple[str, str]], word: str) -> str:
    found = [rest for w, rest in stage if w == word]
    assert len(found) == 1, f"{word}: {found}"
    return found[0]


def _uid(stage: list[tuple[str, str]]) -> tuple[str, int]:
    user = _one(stage, "USER")
    runs = " ".join(rest for w, rest in stage if w == "RUN")
    m = re.search(r"useradd\b.*?--uid\s+(\d+).*?\s(\S+)\s*(?:&&|$)", runs)
    assert m and m.group(2) == user, f"USER {user} is not created with a fixed uid: {runs}"
    return user, int(m.group(1))


def test_dockerfile_shape(stage: list[tuple[str, str]]) -> None:
    all_instr = parse_dockerfile(ROOT / "Dockerfile")
    base = _one(stage, "FROM").split()[0]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    user, uid = _uid(stage)
    assert user not in ("root", "0") and uid != 0
    assert exec_form(_one(stage, "ENTRYPOINT")) == ["crossposter"]
    assert exec_form(_one(stage, "CMD")) == ["daemon"]
    hc = _one(stage, "HEALTHCHECK")
    assert "CMD" in hc and exec_form(hc.split("CMD", 1)[1].strip()) == ["crossposter", "health"]
    assert env_of(stage)["CROSSPOSTER_CONFIG"] == "/data/crossposter.yaml"
    assert "/data" in _one(stage, "VOLUME")
    # no build tools in the runtime stage, pip without a cache anywhere
    runtime_runs = " ".join(rest for w, rest in stage if w == "RUN")
    assert not re.search(r"apt-get|apk|gcc|build-essential|pip install", runtime_runs)
    for w, rest in all_instr:
        if w == "RUN" and "pip install" in rest:
            assert "--no-cache-dir" in rest
    # USER comes after everything that needs root
    words = [w for w, _ in stage]
    assert max(i for i, w in enumerate(words) if w in ("RUN", "COPY")) < words.index("USER")
    # the secrets are not baked in
    assert not any("PASSWORD" in k or "TOKEN" in k for k in env_of(stage))


def test_dockerignore_and_compose() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    for must in (".git", "tests", ".crossposter", "secrets", ".env"):
        assert must in ignore
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    svc = compose["services"]["crossposter"]
    assert any(v.endswith(":/data") for v in svc["volumes"])
    env = svc["environment"]
    assert env["CROSSPOSTER_CONFIG"] == "/data/crossposter.yaml"
    assert any(k.endswith("_FILE") and v.startswith("/run/secrets/") for k, v in env.items())
    for name in svc["secrets"]:
        assert name in compose["secrets"]
    # the compose file never carries a secret value itself
    for k, v in env.items():
        if not k.endswith("_FILE") and k != "CROSSPOSTER_CONFIG":
            assert str(v).startswith("${"), k


@pytest.fixture()
def data_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="crossposter-data-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _as_container_user(uid: int) -> list[str]:
    if os.geteuid() != 0:
        return []  # already not root
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def _map(value: str, data: Path) -> str:
    return value.replace("/data", str(data))


def test_entrypoint_and_healthcheck_as_the_container(stage: list[tuple[str, str]], data_dir: Path) -> None:
    _, uid = _uid(stage)
    image_env = env_of(stage)
    data = data_dir / "data"
    (data / "threads").mkdir(parents=True)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    (data / "threads" / "a.md").write_text(
        f"# Mine\n\n## In the container\n<!-- crossposter\nschedule: {due.isoformat()}\n-->\n\nPosted by uid {uid}.\n")
    (data / "crossposter.yaml").write_text(
        "timezone: Europe/Berlin\narchives: ['threads/*.md']\nplatforms: {bluesky: {handle: me.test}}\n"
        "daemon: {log_format: json, heartbeat_interval: 1, watch_interval: 0.5}\n")
    secrets = data_dir / "run-secrets"
    secrets.mkdir()
    for name, value in (("bluesky_password", "container-secret-pw"), ("mastodon_token", "container-secret-tok")):
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o400)
    if os.geteuid() == 0:
        for p in [data, *data.rglob("*"), secrets, *secrets.iterdir()]:
            os.chown(p, uid, uid)
    env = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": _map("/data", data),
        "LANG": "C.UTF-8",
        **{k: _map(v, data) for k, v in image_env.items()},
        "CROSSPOSTER_BLUESKY_PASSWORD_FILE": str(secrets / "bluesky_password"),
        "CROSSPOSTER_MASTODON_ACCESS_TOKEN_FILE": str(secrets / "mastodon_token"),
        "CROSSPOSTER_FAKE_PLATFORMS": "1",
        # the code of this checkout (in the image, the package installed in /usr/local)
        "PYTHONPATH": str(ROOT),
    }
    workdir = _map(_one(stage, "WORKDIR"), data)
    entry = exec_form(_one(stage, "ENTRYPOINT")) + exec_form(_one(stage, "CMD"))
    health = exec_form(_one(stage, "HEALTHCHECK").split("CMD", 1)[1].strip())
    prefix = _as_container_user(uid)

    # before the daemon runs, the health check fails with a message
    r = subprocess.run(prefix + health, env=env, cwd=workdir, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no heartbeat" in r.stderr

    log = data_dir / "out.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(prefix + entry, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    try:
        journal = data / ".crossposter" / "fake-platforms.jsonl"
        end = time.monotonic() + 30
        while time.monotonic() < end and not (journal.exists() and len(journal.read_text().splitlines()) >= 2):
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert journal.exists(), log.read_text()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        real_uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        assert real_uid == (uid if os.geteuid() == 0 else os.geteuid()) and real_uid != 0
        r = subprocess.run(prefix + health, env=env, cwd=workdir, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "healthy" in r.stdout
        # it wrote into the archive on /data as the container user
        text = (data / "threads" / "a.md").read_text()
        assert "bluesky:" in text and "mastodon:" in text
        if os.geteuid() == 0:
            assert (data / ".crossposter").stat().st_uid == uid
            assert (data / "threads" / "a.md").stat().st_uid == uid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = log.read_text()
    assert "container-secret" not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(ev.get("event") == "published" for ev in lines)
    time.sleep(3.2)
    r = subprocess.run(prefix + health, env=env, cwd=workdir, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "unhealthy" in r.stderr
