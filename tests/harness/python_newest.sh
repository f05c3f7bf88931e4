#!/usr/bin/env bash
# Prints a Python that can run the newest ansible-core tested (2.20 and later need 3.12 or later):
# PYTHON_NEWEST if set, else python3.13 or python3.12 on PATH, else the newest that pyenv installed.
# Debian 13 and Ubuntu 24.04 have one as python3.
set -euo pipefail
candidates=(python3.13 python3.12 python3)
if [ -n "${PYTHON_NEWEST:-}" ]; then
  candidates=("$PYTHON_NEWEST")
elif command -v pyenv >/dev/null; then
  mapfile -t installed < <(ls -d "$(pyenv root)"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV)
  candidates+=("${installed[@]}")
fi
for python in "${candidates[@]}"; do
  if "$python" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    command -v "$python"
    exit 0
  fi
done
echo "python_newest: no Python 3.12 or later found for the newest ansible-core (tried: ${candidates[*]});" \
  "install one, or set PYTHON_NEWEST" >&2
exit 1
