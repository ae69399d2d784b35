#!/usr/bin/env bash
# Create .venv/ in the repository root when missing and install spherepde with everything it needs.
# Idempotent: reinstalls only when setup.cfg or pyproject.toml changed. Safe to run on a fresh Debian
# machine as root (installs libfftw3-dev, which SHTns needs to build from source).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s libfftw3-dev >/dev/null 2>&1; then
    echo "setup: installing Debian's libfftw3-dev (needed to build SHTns)" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libfftw3-dev >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv/" >&2
    "${PYTHON:-python3}" -m venv .venv
fi

stamp=.venv/.spherepde-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing spherepde and its dependencies into .venv/ (SHTns builds from source, ~1 min)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test,docs]'
    touch "$stamp"
fi
