#!/usr/bin/env bash
# Lint and type-check with the venv's pinned tools (the dev extra; configuration in
# pyproject.toml): `ruff check` over the repo, then `mypy` over the packages it lists.
# Runs both, prints every finding, and exits non-zero if either found anything.
# Extra arguments go to ruff, e.g. `scripts/lint.sh storage inference config`.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=.venv/bin
for tool in ruff mypy; do
  if [ ! -x "$venv/$tool" ]; then
    echo "lint: $venv/$tool is missing; install the dev extra (scripts/setup-venv.sh train,dev)" >&2
    exit 2
  fi
done

status=0
echo "== ruff check"
"$venv/ruff" check "${@:-.}" || status=1
echo "== mypy"
"$venv/mypy" || status=1
exit "$status"
