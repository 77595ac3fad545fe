#!/usr/bin/env bash
# The dashboard test drives Debian's Chromium headless. Installs it when this user can (root with
# apt-get); otherwise says how. Never downloads a browser of its own.
set -euo pipefail
for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the dashboard browser test"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "error: the dashboard test needs Chromium and none was found." >&2
echo "       Install it from your distribution (Debian/Ubuntu: 'sudo apt-get install chromium') and retry." >&2
exit 1
