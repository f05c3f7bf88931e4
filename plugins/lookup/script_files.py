"""Read job_script_src (a file or a small directory on the controller) as {path: text}."""

from __future__ import annotations

DOCUMENTATION = r"""
name: script_files
short_description: A user's script, or a small directory of them, as a dict of relative path to text
version_added: 0.1.0
description:
  - Reads a file, or every file below a directory (hidden files and C(__pycache__) left out), on
    the controller and returns one dict of path (relative to the directory, or the file's name)
    to its text, for M(torchswarm.ddp.training_stack)'s O(torchswarm.ddp.training_stack#module:script_files).
  - Fails with the file named when one is not UTF-8 text or larger than a swarm config holds
    (1,024,000 bytes), or when there are more than 100 files; larger code belongs in an image
    built FROM the bundled one.
options:
  _terms:
    description: The file or directory.
    required: true
    type: path
"""

EXAMPLES = r"""
- name: Ship my_ddp.py and its helpers with the job
  torchswarm.ddp.training_stack:
    script: my_ddp.py
    script_files: "{{ lookup('torchswarm.ddp.script_files', playbook_dir ~ '/train') }}"
"""

RETURN = r"""
_raw:
  description: One dict of relative path to file text.
  type: list
  elements: dict
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

MAX_BYTES = 1024000 - 1  # a swarm config holds less than 1,024,000 bytes
MAX_FILES = 100


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [self._read(os.path.expanduser(str(term))) for term in terms]

    def _read(self, source: str) -> dict[str, str]:
        if os.path.isfile(source):
            paths = {os.path.basename(source): source}
        elif os.path.isdir(source):
            paths = {}
            for root, dirs, files in os.walk(source):
                dirs[:] = sorted(d for d in dirs if not _skipped(d))
                for name in sorted(files):
                    if not _skipped(name):
                        full = os.path.join(root, name)
                        paths[os.path.relpath(full, source)] = full
        else:
            raise AnsibleLookupError(
                f"job_script_src: {source} is neither a file nor a directory on the controller"
            )
        if not paths:
            raise AnsibleLookupError(f"job_script_src: {source} holds no files")
        if len(paths) > MAX_FILES:
            raise AnsibleLookupError(
                f"job_script_src: {source} holds {len(paths)} files, more than {MAX_FILES}; "
                "build an image FROM the bundled one for larger code (docs/scripts-and-data.md)"
            )
        return {relative: self._text(full) for relative, full in paths.items()}

    @staticmethod
    def _text(path: str) -> str:
        if os.path.getsize(path) > MAX_BYTES:
            raise AnsibleLookupError(
                f"job_script_src: {path} is larger than a swarm config holds (1,024,000 bytes); "
                "build an image FROM the bundled one for larger files (docs/scripts-and-data.md)"
            )
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except UnicodeDecodeError as exc:
            raise AnsibleLookupError(f"job_script_src: {path} is not UTF-8 text ({exc.reason})") from exc
