"""Stand-in for pip's get-pip.py, which ansible-test downloads from a host this machine cannot
reach and caches as ~/.ansible/test/cache/get_pip_<version>.py. ansible-test runs it in each
sanity test's new virtualenv with pip's options and the packages to install (pip==<version>
among them): pip comes from this Python's ensurepip, then installs those packages through the
machine's own package index settings."""

from __future__ import annotations

import subprocess
import sys

# get-pip.py's own flags, which pip install does not know.
OWN_FLAGS = ("--no-setuptools", "--no-wheel")

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call(
    [sys.executable, "-m", "pip", "install", *(a for a in sys.argv[1:] if a not in OWN_FLAGS)]
)
