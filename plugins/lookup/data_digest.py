"""The digest of job_data_src on the controller, read again only where files changed."""

from __future__ import annotations

DOCUMENTATION = r"""
name: data_digest
short_description: The digest of a dataset on the controller, cached by file sizes and times
version_added: 0.1.0
description:
  - The digest M(torchswarm.ddp.data_relay) checks a staged dataset by (C(sha256:) of every file's
    relative path, size and sha256), for a file or every file below a directory (symlinks left out).
  - Each file's sha256 is kept with its size and modification time in O(cache_dir), so a run
    reads again only the files whose size or modification time changed, not a large dataset
    whole each time.
options:
  _terms:
    description: The dataset (a file or a directory).
    required: true
    type: path
  cache_dir:
    description: Where the digests are kept between runs.
    type: path
    default: ~/.cache/torchswarm/data-digests
"""

EXAMPLES = r"""
- name: Digest the dataset once for this run
  ansible.builtin.set_fact:
    data_digest: "{{ lookup('torchswarm.ddp.data_digest', playbook_dir ~ '/datasets/shards') }}"
  run_once: true
"""

RETURN = r"""
_raw:
  description: The digest of each term, C(sha256:<hex>).
  type: list
  elements: str
"""

import hashlib
import json
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.torchswarm.ddp.plugins.module_utils import _data_chain as data_chain
from ansible_collections.torchswarm.ddp.plugins.module_utils._atomic_file import write_atomically


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        cache_dir = os.path.expanduser(self.get_option("cache_dir"))
        return [self._digest(os.path.abspath(os.path.expanduser(str(term))), cache_dir) for term in terms]

    @staticmethod
    def _digest(source: str, cache_dir: str) -> str:
        if not os.path.exists(source):
            raise AnsibleLookupError(
                f"job_data_src: {source} is neither a file nor a directory on the controller"
            )
        root, files = data_chain.listing(source)
        if not files:
            raise AnsibleLookupError(f"job_data_src: {source} holds no files")
        cache = os.path.join(cache_dir, hashlib.sha256(source.encode()).hexdigest()[:32] + ".json")
        try:
            with open(cache, encoding="utf-8") as handle:
                cached = json.load(handle)
        except (OSError, ValueError):
            cached = None
        digest, entry, read = data_chain.digest_with_cache(
            files, cached, lambda path: data_chain.file_sha256(os.path.join(root, path))
        )
        if read or cached != entry:
            write_atomically(cache, json.dumps(entry), sync=False)  # a cache: cheap to lose
        return digest
