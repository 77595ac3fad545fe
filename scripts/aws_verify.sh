#!/usr/bin/env bash
# Lists the newest landing objects, counts their lines and validates a sample against the contract.
# Thin wrapper: every argument goes to `python -m producer verify` (see --help there).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$python" -m producer verify "$@"
