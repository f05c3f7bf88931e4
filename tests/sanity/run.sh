#!/usr/bin/env bash
# make sanity: ansible-test sanity on the collection, as Galaxy and Automation Hub run it, each
# test in a virtualenv of its own (--venv), on this machine's Python. ansible-test wants the
# collection at ansible_collections/torchswarm/ddp with no link back into itself (the checkout's
# collections/ folder is one), so it runs on a copy of the tracked files. SANITY_VENV names the
# virtualenv whose ansible-test and Python run it (.venv, the oldest ansible-core tested, unless
# told). Extra arguments go to ansible-test (--test pylint, for one test).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$(cd "$root" && realpath "${SANITY_VENV:-.venv}")"
python="$venv/bin/python"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# The bootstrap script ansible-test would download (see get_pip_standin.py), where it looks first.
pip_version="$("$python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$version"'"))["pip"])')"
install -D -m 0644 "$root/tests/sanity/get_pip_standin.py" \
  "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
copy="$work/ansible_collections/torchswarm/ddp"
mkdir -p "$copy"
git -C "$root" ls-files -z --cached --others --exclude-standard \
  | grep -zv '^collections/' | (cd "$root" && xargs -0 cp --parents -t "$copy")
cd "$copy"
# ansible-test lists a collection's files with git where there is a repository.
git init -q && git add -A
"$venv/bin/ansible-test" sanity --venv --python "$version" --color no "$@"
