"""Make the collection importable as ansible_collections.torchswarm.ddp, as Ansible does, and the
tests' own helper (module_runner) from every directory below, which mirror plugins/ as
ansible-test units lays them out."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLLECTIONS = HERE.parents[1] / "collections"
for path in (COLLECTIONS, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
