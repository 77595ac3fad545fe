#!/usr/bin/env bash
# Creates and secures the landing bucket (idempotent): public access blocked, encryption, TLS-only policy, lifecycle.
# Thin wrapper: every argument goes to `python -m producer setup-aws` (see --help there).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m producer setup-aws "$@"
