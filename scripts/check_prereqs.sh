#!/usr/bin/env bash
# Finds a Python 3.11+ and checks Java 17+; prints the Python to use, or says what is missing.
set -euo pipefail

python_bin=""
for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    python_bin="$(command -v "$candidate")"
    break
  fi
done
if [ -z "$python_bin" ]; then
  echo "error: Python 3.11 or newer is required and none was found on PATH." >&2
  echo "       Install it (e.g. 'apt-get install python3.11' or https://www.python.org/downloads/)" >&2
  echo "       or point PYTHON at it: make PYTHON=/path/to/python3.11 test" >&2
  exit 1
fi
if ! "$python_bin" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "error: $python_bin has no venv/ensurepip module; install it (e.g. 'apt-get install python3-venv')." >&2
  exit 1
fi

java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! command -v "$java_bin" >/dev/null 2>&1; then
  echo "error: Java 17 or newer is required by Spark and no 'java' was found (JAVA_HOME or PATH)." >&2
  echo "       Install a JDK 17+ (e.g. 'apt-get install openjdk-17-jre-headless') and retry." >&2
  exit 1
fi
java_version="$("$java_bin" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
java_major="${java_version%%.*}"
if [ "$java_major" = "1" ]; then java_major="$(echo "$java_version" | cut -d. -f2)"; fi
if ! [ "$java_major" -ge 17 ] 2>/dev/null; then
  echo "error: Java 17 or newer is required by Spark; found '$java_version' at $(command -v "$java_bin")." >&2
  echo "       Install a JDK 17+ and put it first on PATH or set JAVA_HOME." >&2
  exit 1
fi
echo "$python_bin"
