#!/usr/bin/env bash
# Lists the newest landing objects, counts their lines and validates a sample against the contract.
# Thin wrapper: every argument goes to `python -m producer verify` (see --help there).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m producer verify "$@"
