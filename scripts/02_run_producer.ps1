# Runs the clickstream producer: events into the S3 landing prefix, then the run manifest.
# Thin wrapper: every argument goes to `python -m producer run` (see --help there).
$root = Split-Path -Parent $PSScriptRoot
$python = @("$root/.venv/Scripts/python.exe", "$root/.venv/bin/python") | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $python) { $python = "python" }
$env:PYTHONPATH = $root
& $python -m producer run @args
exit $LASTEXITCODE
