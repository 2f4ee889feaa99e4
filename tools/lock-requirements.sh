#!/usr/bin/env bash
# Regenerates the lock files the Dockerfile installs from, so that an image built next month is the same software:
#   requirements.lock        the runtime dependencies of pyproject.toml, every one pinned (==) with its sha256 hashes
#   requirements-build.lock  the build backend of pyproject.toml's [build-system] (setuptools, wheel), pinned the same way
# usage: tools/lock-requirements.sh            re-resolve after pyproject.toml changed; pins that still fit are kept
#        tools/lock-requirements.sh --upgrade  take the newest releases pyproject.toml allows (review the diff, rebuild)
#        (any other pip-compile option is passed on, e.g. --upgrade-package rich)
# Why pip-compile (pip-tools): it reads pyproject.toml directly, writes a plain requirements file that the image's own
# pip installs with --require-hashes (no extra tool in the image), and records every file's hash for every platform,
# so the same lock serves amd64 and arm64 builds.
# Resolution follows the interpreter that runs it, so it must be Python 3.11, the image's (PYTHON=... to choose one),
# on Linux. It uses only the package index: this machine's pip settings (extra indexes, local wheels, constraints)
# are ignored, so the hashes are the index's. pip-tools itself runs pinned, in a throw-away virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_TOOLS="pip-tools==7.6.2"
PIP="pip==25.3"

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
  echo "lock-requirements: $python is Python $version; the image runs 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ "$(uname -s)" != "Linux" ]; then
  echo "lock-requirements: run this on Linux (the image's platform): markers are resolved for this machine" >&2
  exit 1
fi

venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
# Only the index (PIP_INDEX_URL if you set one): no pip config files, no find-links, no constraints.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX PIP_REQUIRE_VIRTUALENV
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q "$PIP" "$PIP_TOOLS"

common=(--quiet --resolver=backtracking --generate-hashes --allow-unsafe --strip-extras
        --no-emit-index-url --no-emit-trusted-host --no-emit-find-links --newline=lf)
# The header names the command that made the file, so the file itself says how to remake it.
export CUSTOM_COMPILE_COMMAND="tools/lock-requirements.sh"
"$venv/bin/pip-compile" "${common[@]}" "$@" --output-file=requirements.lock pyproject.toml
"$venv/bin/pip-compile" "${common[@]}" "$@" --build-deps-for=wheel --only-build-deps \
  --output-file=requirements-build.lock pyproject.toml
echo "lock-requirements: wrote requirements.lock ($(grep -c '^[a-zA-Z0-9]' requirements.lock) packages)" \
  "and requirements-build.lock ($(grep -c '^[a-zA-Z0-9]' requirements-build.lock) packages)"
