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

ROOT = Path(__file__).resolve().parents[2]
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


# --------------------------------------------------------------------------- the README's docker run, compose


def readme_docker_run() -> list[str]:
    """The `docker run` command of the README's container section, as shell words (variables left unexpanded)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Running as a daemon in a container\n", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            if line.strip().startswith("docker run"):
                return shlex.split(line, comments=True)
    raise AssertionError("no `docker run` in the README's container section")


def _option(args: list[str], *names: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a in names]


def _longest_request_timeout() -> float:
    """The slowest platform client's per-request timeout: what a stop must be able to wait for."""
    import inspect

    from crossposter.platforms.bluesky import BlueskyAdapter
    from crossposter.platforms.mastodon import MastodonAdapter
    from crossposter.platforms.x import XAdapter

    return max(float(inspect.signature(cls.__init__).parameters["timeout"].default)
               for cls in (BlueskyAdapter, MastodonAdapter, XAdapter))


def test_readme_docker_run_works_for_a_host_user() -> None:
    args = readme_docker_run()
    # runs as the person who owns the folder, so it can write the archives and what it writes stays theirs
    assert _option(args, "--user", "-u") == ["$(id -u):$(id -g)"], args
    assert _option(args, "-v", "--volume") == ["$PWD:/data"], args
    # `docker stop` waits for the request in flight (Docker's default of 10 s would kill it half-way)
    stop = _option(args, "--stop-timeout")
    assert len(stop) == 1 and int(stop[0]) >= _longest_request_timeout() + 20, (stop, _longest_request_timeout())
    # secrets from the environment at run time, never baked into the image
    assert all(re.fullmatch(r"CROSSPOSTER_\w+=\$\w+", e) for e in _option(args, "-e", "--env")), args
    assert args[-1] == "crossposter"


def test_compose_user_and_stop_grace_period() -> None:
    import yaml

    svc = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["crossposter"]
    # `user:` is set (from .env, defaulting to the image's uid), so the secret files and ./data can be the user's
    m = re.fullmatch(r"\$\{(\w+):-(\d+):(\d+)\}", svc["user"])
    assert m and m.group(2) == m.group(3) == str(_uid(final_stage(parse_dockerfile(ROOT / "Dockerfile")))[1])
    # the README tells how to set that variable
    assert f"{m.group(1)}=" in (ROOT / "README.md").read_text(encoding="utf-8")
    grace = re.fullmatch(r"(\d+)s", str(svc["stop_grace_period"]))
    readme_stop = int(_option(readme_docker_run(), "--stop-timeout")[0])
    assert grace and int(grace.group(1)) == readme_stop


# --------------------------------------------------------------------------- the lock files


def _locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile --generate-hashes file; every requirement must be `==`."""
    from packaging.utils import canonicalize_name

    out: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert m, f"{path.name}: not an exact pin with hashes: {line}"
        out[canonicalize_name(m.group(1))] = (m.group(2), re.findall(r"[0-9a-f]{64}", m.group(3)))
    return out


def test_lock_files_pin_every_dependency_with_hashes() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for lock, wanted in (("requirements.lock", pyproject["project"]["dependencies"]),
                         ("requirements-build.lock", pyproject["build-system"]["requires"])):
        locked = _locked(ROOT / lock)
        for spec in map(Requirement, wanted):
            name = canonicalize_name(spec.name)
            assert name in locked, f"{lock} lacks {spec.name}: run tools/lock-requirements.sh"
            version, hashes = locked[name]
            assert spec.specifier.contains(version, prereleases=True), (
                f"{lock} pins {spec.name}=={version}, outside pyproject.toml's {spec}: run tools/lock-requirements.sh")
            assert hashes
    # the build backend is not installed into the runtime
    assert not {"setuptools", "wheel"} & set(_locked(ROOT / "requirements.lock"))


def test_dockerfile_installs_from_the_locks() -> None:
    instructions = parse_dockerfile(ROOT / "Dockerfile")
    runs = [rest for w, rest in instructions if w == "RUN" and "pip install" in rest]
    installs = [seg for r in runs for seg in r.split("&&") if "pip install" in seg]
    # every pip install is either from a lock with hashes, or the package itself without dependencies
    for seg in installs:
        words = shlex.split(seg)
        if "-r" in words:
            assert "--require-hashes" in words and _option(words, "-r")[0] in (
                "requirements.lock", "requirements-build.lock"), seg
        else:
            assert words[-1] == "." and "--no-deps" in words and "--no-build-isolation" in words, seg
    assert any("-r requirements.lock" in s for s in installs) and any("-r requirements-build.lock" in s
                                                                        for s in installs)
    # the locks are copied before the code: the dependency layer is reused until a lock changes
    copies = [rest for w, rest in instructions if w == "COPY"]
    lock_copy = next(i for i, c in enumerate(copies) if "requirements.lock" in c)
    code_copy = next(i for i, c in enumerate(copies) if c.split()[0] == "crossposter")
    assert lock_copy < code_copy
    # the build context has them
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert not any(pat in ignore for pat in ("requirements.lock", "requirements-build.lock", "*.lock"))
