#!/usr/bin/env bash
# podman (with runc) and the base image for tests/container/test_container_image.py, which builds the project's Dockerfile
# and runs the image. This machine has no Docker daemon and reaches no image registry, so:
#   - podman, runc and debootstrap come from Debian (runc: crun fails on this machine's cgroup layout);
#   - `FROM python:3.11-slim` is served by a local stand-in, built from Debian packages by
#     ../shared/container/make-python-base.sh when ../shared is beside the clone (CI has it).
# Without ../shared this only says so: the container test then skips with the reason, and fails under CI=true.
# Idempotent: installs only what is missing; the base script does nothing when its image exists.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_SCRIPT="$ROOT/../shared/container/make-python-base.sh"

SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi

packages=(podman runc debootstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-container: podman, runc and debootstrap already installed"
else
  start=$(date +%s)
  echo "install-container: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-container: installed in $(( $(date +%s) - start )) s"
fi
podman --version

if [ -f "$BASE_SCRIPT" ]; then
  # As root (podman's storage is root's); the script writes its own podman settings under /tmp.
  $SUDO bash "$BASE_SCRIPT"
  # The Dockerfile names the Debian release (python:3.11-slim-bookworm); the stand-in is bookworm: give it that
  # name too, under the same registry prefix the script resolved for `python`.
  name=$($SUDO podman image inspect --format '{{index .RepoTags 0}}' python:3.11-slim)
  if ! $SUDO podman image exists python:3.11-slim-bookworm; then
    $SUDO podman tag "$name" "${name%:*}:3.11-slim-bookworm"
  fi
  echo "install-container: base image ${name%:*}:3.11-slim-bookworm ready"
else
  echo "install-container: $BASE_SCRIPT not found: no stand-in for python:3.11-slim," \
    "so tests/container/test_container_image.py will skip (and fail under CI=true)"
fi
