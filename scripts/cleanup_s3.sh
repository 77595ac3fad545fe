#!/usr/bin/env bash
# Deletes the demo prefixes from the bucket; refuses unless --confirm is given.
# Thin wrapper: every argument goes to `python -m producer cleanup` (see --help there).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$python" -m producer cleanup "$@"
