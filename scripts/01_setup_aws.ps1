# Creates and secures the landing bucket (idempotent): public access blocked, encryption, TLS-only policy, lifecycle.
# Thin wrapper: every argument goes to `python -m producer setup-aws` (see --help there).
$root = Split-Path -Parent $PSScriptRoot
$python = @("$root/.venv/Scripts/python.exe", "$root/.venv/bin/python") | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $python) { $python = "python" }
$env:PYTHONPATH = $root
& $python -m producer setup-aws @args
exit $LASTEXITCODE
