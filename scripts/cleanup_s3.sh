#!/usr/bin/env bash
# Deletes the demo prefixes from the bucket; refuses unless --confirm is given.
# Thin wrapper: every argument goes to `python -m producer cleanup` (see --help there).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m producer cleanup "$@"
