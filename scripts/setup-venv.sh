#!/usr/bin/env bash
# Create ./.venv and install memebot with the given extras (default: train).
# torch is installed with plain pip: it takes the wheels from this machine's disk where they lie.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-train}
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
