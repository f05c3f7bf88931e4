"""Files written whole or not at all (module_utils/_atomic_file.py), which the stack file, daemon.json,
the results, the transfer progress and the dataset digest's cache are written through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._atomic_file import write_atomically, write_temp


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("sync", [True, False])
def test_the_file_is_replaced_whole_with_its_mode_and_nothing_else_is_left(tmp_path, sync):
    path = tmp_path / "deep" / "stack.yml"
    write_atomically(str(path), "old\n", mode=0o644, sync=sync)
    old_umask = os.umask(0o077)
    try:
        write_atomically(str(path), b"new\n", mode=0o640, sync=sync)
    finally:
        os.umask(old_umask)
    assert path.read_bytes() == b"new\n"
    assert mode_of(path) == 0o640  # the mode asked for, whatever the umask
    assert os.listdir(path.parent) == ["stack.yml"]


def test_a_private_file_is_private_before_its_first_byte_and_the_target_waits_for_the_rename(tmp_path):
    path = tmp_path / "stack.yml"
    path.write_text("running\n")
    temp = write_temp(str(path), "secret: x\n", mode=0o600)
    assert os.path.dirname(temp) == str(tmp_path)  # beside it: the rename stays on one filesystem
    assert mode_of(temp) == 0o600 and Path(temp).read_text() == "secret: x\n"
    assert path.read_text() == "running\n"
    assert write_temp(str(path), "other\n") != temp  # each writer has a name of its own


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text("{}\n")
    with pytest.raises(TypeError):
        write_atomically(str(path), 42)  # type: ignore[arg-type]
    assert path.read_text() == "{}\n" and os.listdir(tmp_path) == ["daemon.json"]
