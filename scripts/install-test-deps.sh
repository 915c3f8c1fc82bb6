#!/usr/bin/env bash
# System packages the test suite needs: headless Chromium for the browser tests, socat for RTU,
# and the mosquitto binary for the fault tests (they start private brokers they can stop).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v socat >/dev/null || missing+=(socat)  # pty pairs for the Modbus RTU tests
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing system packages for the tests: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
