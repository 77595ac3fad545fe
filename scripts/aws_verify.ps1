# Lists the newest landing objects, counts their lines and validates a sample against the contract.
# Thin wrapper: every argument goes to `python -m producer verify` (see --help there).
$root = Split-Path -Parent $PSScriptRoot
$python = @("$root/.venv/Scripts/python.exe", "$root/.venv/bin/python") | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $python) { $python = "python" }
$env:PYTHONPATH = $root
& $python -m producer verify @args
exit $LASTEXITCODE
