# Sourced by the bash scripts: picks the project's interpreter (.venv first, or $PYTHON) and makes
# the repo importable. Sets $root and $python.
root="$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
