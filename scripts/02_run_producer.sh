#!/usr/bin/env bash
# Runs the clickstream producer: events into the S3 landing prefix, then the run manifest.
# Thin wrapper: every argument goes to `python -m producer run` (see --help there).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$python" -m producer run "$@"
