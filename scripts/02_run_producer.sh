#!/usr/bin/env bash
# Runs the clickstream producer: events into the S3 landing prefix, then the run manifest.
# Thin wrapper: every argument goes to `python -m producer run` (see --help there).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m producer run "$@"
