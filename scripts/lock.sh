#!/usr/bin/env bash
# Refresh requirements/lock.txt: exact versions of every dependency of every extra, resolved
# from pyproject.toml. setup-venv.sh installs through it, so a new release upstream changes
# nothing until this is run again (and the suite passes on the result).
#   bash scripts/lock.sh                 # keep current pins where still allowed
#   bash scripts/lock.sh --upgrade       # move every pin to the newest allowed release
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.venv-lock
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q "pip-tools==7.6.2"; }
# --all-extras: one lock for serve, [train], [dev] and [gpu]; pip only installs what an
# install asks for, so the GPU wheel's pin costs a CPU install nothing.
"$tools/bin/pip-compile" -q --all-extras --strip-extras --no-emit-index-url --no-emit-find-links \
  --allow-unsafe --output-file requirements/lock.txt "$@" pyproject.toml
echo "requirements/lock.txt refreshed: run 'bash .ci/run' before committing it"
