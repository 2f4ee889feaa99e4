#!/usr/bin/env bash
# Install the real Bluesky PDS (and PLC directory) the Bluesky tests run on loopback: npm packages into
# tests/pds/node_modules, exactly as pinned by tests/pds/package-lock.json.
# Idempotent: returns at once when node_modules is complete. Needs Node >= 20, npm, and g++/make/python3
# (better-sqlite3 is compiled when no prebuilt binary matches; ~2.5 min on a clean machine).
set -euo pipefail
cd "$(dirname "$0")/../tests/pds"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-pds: node and npm are required (Node 20 or newer); the Bluesky tests need them" >&2
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "install-pds: Node $(node --version) is too old, the PDS needs Node 20 or newer" >&2
  exit 1
fi

# What "complete" means: every package the start script loads resolves, and the native sqlite module loads.
check() {
  node --input-type=module -e '
    import { createRequire } from "node:module"
    const require = createRequire(process.cwd() + "/server.mjs")
    require("@atproto/pds"); require("@did-plc/server"); require("@did-plc/lib")
    const Database = require("better-sqlite3"); new Database(":memory:").close()
  ' >/dev/null 2>&1
}

if [ -d node_modules ] && check; then
  echo "install-pds: tests/pds/node_modules is complete"
  exit 0
fi

start=$(date +%s)
# --foreground-scripts: better-sqlite3's build output shows up in the CI log if it fails.
flags=(--no-audit --no-fund --foreground-scripts)
if [ -f package-lock.json ]; then
  echo "install-pds: npm ci (from package-lock.json)"
  npm ci "${flags[@]}"
else
  echo "install-pds: npm install (no lock file yet: commit the package-lock.json it writes)"
  npm install "${flags[@]}"
fi

# Newer npm versions may skip install scripts that are not allow-listed; build the native module then.
if ! check; then
  echo "install-pds: rebuilding better-sqlite3"
  npm rebuild better-sqlite3 --foreground-scripts
fi
if ! check; then
  echo "install-pds: the PDS packages do not load after installing; see the npm output above" >&2
  exit 1
fi
echo "install-pds: done in $(( $(date +%s) - start )) s"
