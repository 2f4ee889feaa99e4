#!/usr/bin/env bash
# Headless Chromium for the HTML-preview tests (tests/browser/test_preview_html.py) and docs/make_screenshot.py,
# plus the fonts that make its screenshots readable (Latin text and colour emoji).
# Debian's own packages, no browser download of its own. Idempotent: installs only what is missing.
set -euo pipefail

packages=(chromium fonts-liberation2 fonts-noto-color-emoji)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ] && [ -x /usr/bin/chromium ]; then
  echo "chromium and fonts already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
echo "installing: ${missing[*]:-chromium}"
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]:-chromium}" >/dev/null
/usr/bin/chromium --version
