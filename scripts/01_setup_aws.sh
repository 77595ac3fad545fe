#!/usr/bin/env bash
# Creates and secures the landing bucket (idempotent): public access blocked, encryption, TLS-only policy, lifecycle.
# Thin wrapper: every argument goes to `python -m producer setup-aws` (see --help there).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$python" -m producer setup-aws "$@"
