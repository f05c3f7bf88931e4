"""Prints where the ansible package that this Python runs keeps its bundled collections (the
ansible_collections directory holding community.docker), for build-check and make ee."""

import os

import ansible_collections

print(next(p for p in ansible_collections.__path__ if os.path.isdir(os.path.join(p, "community", "docker"))))
