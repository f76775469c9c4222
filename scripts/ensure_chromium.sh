#!/usr/bin/env bash
# Install Debian's chromium (used headless by tests/test_webmap.py and, through playwright,
# tests/test_interpret.py).
# Idempotent: returns at once when /usr/bin/chromium is already there. Needs root (or sudo) and the
# Debian package mirrors; prints a notice and exits 0 when it cannot install, so the test that
# needs chromium skips with its own reason instead of the whole test command failing here.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "ensure_chromium: not root and no sudo; chromium not installed" >&2; exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq >/dev/null; then
    echo "ensure_chromium: apt-get update failed; chromium not installed" >&2; exit 0
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "ensure_chromium: apt-get install chromium failed" >&2; exit 0
fi
echo "ensure_chromium: installed $(/usr/bin/chromium --version 2>/dev/null)"
