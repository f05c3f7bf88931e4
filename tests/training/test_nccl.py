"""Which network NCCL chose, and the warning for sockets on a host with InfiniBand. No GPU here,
so NCCL never runs: its lines are stand-ins written as NCCL 2.x prints them (NVIDIA/nccl#226,
#676), in the files NCCL_DEBUG_FILE names."""

from __future__ import annotations

from pathlib import Path

from torchswarm import nccl

SOCKETS = """\
node3:412:412 [0] NCCL INFO Bootstrap : Using eth0:10.0.1.12<0>
node3:412:412 [0] NCCL INFO NET/IB : No device found.
node3:412:412 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.1.12<0>
node3:412:530 [0] NCCL INFO Using network Socket
"""
INFINIBAND = """\
gpu01:351:351 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB ib0:10.10.10.2<0>
gpu01:351:530 [0] NCCL INFO Using network IB
"""


def test_the_network_nccl_chose_and_its_devices_standin_lines_no_gpu_here():
    assert nccl.chosen(SOCKETS) == {"network": "Socket", "devices": "[0]eth0:10.0.1.12<0>"}
    assert nccl.chosen(INFINIBAND) == {"network": "IB", "devices": "[0]mlx5_0:1/IB [1]mlx5_1:1/IB"}
    assert nccl.chosen("gloo only\n") is None


def test_sockets_on_a_host_with_infiniband_devices_is_a_warning_and_nowhere_else():
    sockets = nccl.chosen(SOCKETS)
    warning = nccl.fell_back(sockets, ["mlx5_0", "mlx5_1"])
    assert warning.startswith("NCCL uses sockets ([0]eth0:10.0.1.12<0>) though this host has mlx5_0, mlx5_1")
    assert nccl.fell_back(sockets, []) is None
    # On the overlay the job turns InfiniBand off (job_nccl_ib_disable): sockets are what it asked for.
    assert nccl.fell_back(sockets, ["mlx5_0"], ib_disabled=True) is None
    assert nccl.fell_back(nccl.chosen(INFINIBAND), ["mlx5_0"]) is None


def test_the_launcher_asks_nccl_for_its_lines_in_files_unless_the_user_set_nccl_debug(tmp_path):
    env: dict[str, str] = {}
    nccl.environment(env, str(tmp_path))
    assert env == {
        "NCCL_DEBUG": "INFO",
        "NCCL_DEBUG_SUBSYS": "INIT,NET",
        "NCCL_DEBUG_FILE": f"{tmp_path}/nccl.%h.%p",
        "TORCHSWARM_NCCL_FILE": f"{tmp_path}/nccl.%h.%p",
    }
    # The user's own NCCL lines go where the user wants them, and are never read or removed.
    mine = {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_FILE": f"{tmp_path}/mine.%h.%p"}
    nccl.environment(mine, str(tmp_path))
    assert mine == {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_FILE": f"{tmp_path}/mine.%h.%p"}
    (tmp_path / "mine.node3.1").write_text(SOCKETS)
    users = nccl.Check(mine)
    users.new_round()
    assert users.record() is None and (tmp_path / "mine.node3.1").exists()


def test_a_round_says_its_network_once_and_hands_on_nccls_warnings_standin_lines_no_gpu_here(tmp_path):
    env: dict[str, str] = {}
    nccl.environment(env, str(tmp_path))
    rdma = tmp_path / "infiniband"
    (rdma / "mlx5_0").mkdir(parents=True)
    check = nccl.Check(env, rdma_dir=str(rdma))
    assert check.record() is None  # before the workers set NCCL up
    (tmp_path / "nccl.node3.412").write_text(SOCKETS)
    (tmp_path / "nccl.node3.413").write_text(
        "node3:413:413 [1] NCCL INFO NET/Socket : Using [0]eth0:10.0.1.12<0>\n"
        "node3:413:531 [1] misc/socket.cc:50 NCCL WARN Net : Connection closed by remote peer\n"
    )
    record = check.record()
    assert record["event"] == "nccl" and record["network"] == "Socket"
    assert len(record["warnings"]) == 1 and "mlx5_0" in record["warnings"][0]
    assert check.record() is None  # once a round
    assert check.warnings() == [
        "node3:413:531 [1] misc/socket.cc:50 NCCL WARN Net : Connection closed by remote peer"
    ]
    check.new_round()
    assert list(Path(tmp_path).glob("nccl.*")) == [] and check.record() is None
    (tmp_path / "nccl.node3.414").write_text(SOCKETS)
    overlay = nccl.Check({**env, "NCCL_IB_DISABLE": "1"}, rdma_dir=str(rdma))
    assert overlay.record()["warnings"] == []
