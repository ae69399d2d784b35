#!/usr/bin/env bash
# Create .venv/ in the repository root when missing and install spherepde with everything it needs.
# Idempotent: reinstalls only when setup.cfg or pyproject.toml changed. Safe to run on a fresh Debian
# machine as root (installs the missing Debian packages: libfftw3-dev, which SHTns needs to build from
# source, and python3-venv, python3-dev, make where absent).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
# Debian packages the build needs, installed only when missing: FFTW for SHTns, venv/ensurepip and
# the Python headers for a Debian-packaged python3 (other Pythons bring their own), make for the Makefile.
missing=()
dpkg -s libfftw3-dev >/dev/null 2>&1 || missing+=(libfftw3-dev)
if [ ! -x .venv/bin/python ] && ! "$PYTHON" -c "import ensurepip" >/dev/null 2>&1; then missing+=(python3-venv); fi
"$PYTHON" -c "import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    || missing+=(python3-dev)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv/" >&2
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.spherepde-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing spherepde and its dependencies into .venv/ (SHTns builds from source, ~1 min)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test,docs,numba]'
    touch "$stamp"
fi
