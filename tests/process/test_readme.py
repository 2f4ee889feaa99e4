"""The README's install, quick start and walkthrough, run from the README's own text.

Every fenced `sh` block between `## Install` and the end of `## Walkthrough` is run with bash
(`set -euo pipefail`), in order, in a fresh copy of the repository's files, with HOME in that
copy. A line the README marks `# needs: <what>` (credentials, network, browser, systemd,
long-running) is not run, and the test says which it skipped; nothing else is changed. The one
stand-in: the install line is marked `needs: network`, so `crossposter` on PATH is this checkout
(`python -m crossposter`), which is what that line would have installed.
Every `crossposter …` line, run or not, must parse with the real argument parser.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from crossposter.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
NEEDS = {"credentials", "network", "browser", "systemd", "long-running"}
MARK = re.compile(r"#\s*needs:\s*([a-z, -]+?)\s*$")


def _blocks() -> list[str]:
    """The `sh` blocks of the README from `## Install` up to the heading after `## Walkthrough…`."""
    tokens = MarkdownIt().parse((ROOT / "README.md").read_text(encoding="utf-8"))
    blocks, inside, seen_walkthrough = [], False, False
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h2":
            title = tokens[i + 1].content
            if title == "Install":
                inside = True
            elif inside and seen_walkthrough:
                break
            if title.startswith("Walkthrough"):
                seen_walkthrough = True
        elif inside and tok.type == "fence" and tok.info.strip() == "sh":
            blocks.append(tok.content)
    return blocks


def _commands(block: str) -> list[str]:
    """Logical lines: a trailing backslash continues a line."""
    out, current = [], ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    return [c for c in out if c.strip()]


def _needs(command: str) -> set[str]:
    m = MARK.search(command)
    return {n.strip() for n in m.group(1).split(",")} if m else set()


def test_the_readme_has_the_blocks_and_marks_this_test_reads() -> None:
    blocks = _blocks()
    assert len(blocks) >= 6
    commands = [c for b in blocks for c in _commands(b)]
    for c in commands:
        assert _needs(c) <= NEEDS, c
        assert ("needs:" in c) == bool(_needs(c)), f"a mark this test cannot read: {c}"
    text = "\n".join(commands)
    for must in ("python3 -m venv", "crossposter init", "crossposter check", "crossposter schedule",
                 "crossposter daemon", "systemctl --user"):
        assert must in text, must


def test_the_readme_states_the_python_the_package_requires() -> None:
    import tomllib

    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    version = wanted.removeprefix(">=").strip()
    install = (ROOT / "README.md").read_text(encoding="utf-8").split("## Install", 1)[1].split("\n## ", 1)[0]
    assert f"Python {version} or newer" in install and "externally-managed-environment" in install
    assert install.index("python3 -m venv") < install.index("python3 -m pip install")  # the venv first


def test_every_crossposter_command_in_the_readme_parses() -> None:
    parser = build_parser()
    for command in (c for b in _blocks() for c in _commands(b)):
        for part in re.split(r"&&|\|\||;|\|", command.split(" #", 1)[0]):
            words = shlex.split(part)
            if words[:1] == ["crossposter"]:
                try:
                    parser.parse_args(words[1:])
                except SystemExit as e:
                    pytest.fail(f"the README's {part.strip()!r} does not parse (exit {e.code})")


def test_the_install_quick_start_and_walkthrough_run(tmp_path: Path) -> None:
    work = tmp_path / "clone"
    for name in ("threads", "contrib"):
        shutil.copytree(ROOT / name, work / name)
    for name in ("config.example.yaml", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, work / name)
    home = tmp_path / "home"
    home.mkdir()
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "crossposter").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m crossposter "$@"\n')
    (shim / "crossposter").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PYTHONPATH=str(ROOT),
               PATH=f"{shim}:{os.environ['PATH']}", BROWSER="false")
    ran, skipped = [], []
    for block in _blocks():
        script = ["set -euo pipefail"]
        for command in _commands(block):
            if _needs(command):
                skipped.append(command)
                script.append(f": skipped, needs {', '.join(sorted(_needs(command)))}")
            else:
                ran.append(command)
                script.append(command)
        r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, f"README block failed:\n{block}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    print(f"ran {len(ran)} README commands, skipped {len(skipped)}:", *skipped, sep="\n  ")
    assert len(ran) >= 8
    # what the walkthrough promised is there
    from crossposter.config import load_config

    config = load_config(work / "crossposter.yaml")
    assert config.enabled_platforms() == ["bluesky", "mastodon"]
    assert config.platforms.mastodon.instance == "https://mastodon.social"
    assert "schedule: '2099-01-15T09:00:00+00:00'" in (work / "threads" / "example.md").read_text(encoding="utf-8")
    assert (home / ".config" / "systemd" / "user" / "crossposter.service").is_file()
    assert (work / ".venv" / "bin" / "python").exists()


def test_the_systemd_user_unit() -> None:
    """An INI file systemd reads: a user service (default.target), time to finish a request on stop."""
    unit = ROOT / "contrib" / "crossposter.service"
    ini = configparser.ConfigParser(interpolation=None, strict=True)
    ini.optionxform = str  # systemd keys are case-sensitive
    ini.read_string(unit.read_text(encoding="utf-8"))
    assert ini.sections() == ["Unit", "Service", "Install"]
    service = ini["Service"]
    assert service["ExecStart"].endswith("/crossposter daemon")
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 90
    assert service["Restart"] == "on-failure" and int(service["RestartSec"]) >= 10
    assert service["EnvironmentFile"].startswith("%h/") and service["WorkingDirectory"].startswith("%h/")
    assert ini["Install"]["WantedBy"] == "default.target"  # a user manager has no multi-user.target
    if shutil.which("systemd-analyze") is None:
        return
    # systemd's own parser: no unknown key or bad value; the only complaint allowed here is that the
    # ExecStart path (in a home this machine does not have) is not installed
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       timeout=60)
    complaints = [line for line in (r.stdout + r.stderr).splitlines()
                  if line.strip() and "/crossposter is not executable" not in line]
    assert complaints == []
