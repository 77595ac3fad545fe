# Deletes the demo prefixes from the bucket; refuses unless --confirm is given.
# Thin wrapper: every argument goes to `python -m producer cleanup` (see --help there).
$root = Split-Path -Parent $PSScriptRoot
$python = @("$root/.venv/Scripts/python.exe", "$root/.venv/bin/python") | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $python) { $python = "python" }
$env:PYTHONPATH = $root
& $python -m producer cleanup @args
exit $LASTEXITCODE
