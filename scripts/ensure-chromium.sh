#!/usr/bin/env bash
# Makes sure headless Chromium is there for the report test (test/bench/report-chromium.test.ts).
# Idempotent and instant when it is installed; installs Debian's `chromium` package otherwise.
# Fails loudly, never silently: the test would fail anyway, this says how to fix it.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
echo "ensure-chromium: chromium is missing; installing Debian's chromium package (the bench report test renders HTML with it)"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: cannot install it here (needs root and apt-get). Install Chromium so that \`chromium\` is on PATH," >&2
  echo "  e.g. sudo apt-get install -y chromium, then run the tests again." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
  # The package lists may be missing or stale on a fresh machine.
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || { echo "ensure-chromium: apt-get ran but chromium is still not on PATH" >&2; exit 1; }
echo "ensure-chromium: $(chromium --version 2>/dev/null || echo chromium) installed"
