"""The trainer on a dataset of files (--data), and every dataset it refuses, named."""

from __future__ import annotations

import pytest
import torch

import workloads
from conftest import epochs_of, finish, metrics, torchrun


def test_a_written_dataset_reads_back_as_the_synthetic_data_it_came_from(tmp_path):
    for model in ("linear", "gpt"):
        paths = workloads.write_dataset(model, 96, str(tmp_path / model), files=3, seed=4)
        assert [p.rsplit("/", 1)[1] for p in paths] == ["part-00000.pt", "part-00001.pt", "part-00002.pt"]
        from_files = workloads.WORKLOADS[model](0, 4, str(tmp_path / model)).dataset.tensors
        synthetic = workloads.WORKLOADS[model](96, 4).dataset.tensors
        assert all(torch.equal(a, b) for a, b in zip(from_files, synthetic, strict=True)), model


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no *.pt files in it"),
        ({"a.pt": b"not torch"}, "a.pt cannot be read as a torch.save file"),
        ({"a.pt": {"x": torch.zeros(4, 20)}}, "a.pt is not a dict of tensors x, y"),
        (
            {"a.pt": {"x": torch.zeros(4, 3), "y": torch.zeros(4, 1)}},
            "linear needs x of N x 20 and y of N x 1",
        ),
    ],
    ids=["empty", "not-torch", "missing-key", "wrong-shape"],
)
def test_a_dataset_that_cannot_be_trained_on_is_named(tmp_path, files, message):
    for name, content in files.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            torch.save(content, tmp_path / name)
    with pytest.raises(workloads.DataError, match=message.replace("*", r"\*")):
        workloads.linear(0, 0, str(tmp_path))
    with pytest.raises(workloads.DataError, match="cannot list it"):
        workloads.linear(0, 0, str(tmp_path / "missing"))


def test_token_ids_past_the_vocabulary_are_refused(tmp_path):
    torch.save({"tokens": torch.full((2, 129), 512, dtype=torch.long)}, tmp_path / "t.pt")
    with pytest.raises(workloads.DataError, match="token ids must be below 512"):
        workloads.gpt(0, 0, str(tmp_path))


def test_the_trainer_trains_on_the_dataset_writes_its_model_and_refuses_a_bad_dataset(tmp_path, snapdir):
    """The same data as files and as --dataset_size: the same losses, epoch for epoch."""
    workloads.write_dataset("linear", 512, str(tmp_path / "data"))
    args = ["2", "1", "--batch_size", "32"]
    output = tmp_path / "output"
    rc, out = finish(
        torchrun(
            [*args, "--data", str(tmp_path / "data"), "--snapshot_dir", str(snapdir)],
            env={"TORCHSWARM_OUTPUT_DIR": str(output)},
        )
    )
    assert rc == 0, out
    model = torch.load(output / "model.pt", weights_only=True)  # rank 0's, from the environment
    assert {k: list(v.shape) for k, v in model.items()} == {"weight": [1, 20], "bias": [1]}
    assert f"rank 0 wrote the model to {output / 'model.pt'}" in out
    assert f"training on 512 items read from {tmp_path / 'data'}" in out
    synthetic = tmp_path / "synthetic"
    assert finish(torchrun([*args, "--dataset_size", "512", "--snapshot_dir", str(synthetic)]))[0] == 0
    losses = [r["loss"] for r in metrics(snapdir) if r["event"] == "epoch"]
    assert epochs_of(metrics(snapdir)) == [0, 1]
    assert losses == [r["loss"] for r in metrics(synthetic) if r["event"] == "epoch"]

    (tmp_path / "bad").mkdir()
    rc, out = finish(torchrun([*args, "--data", str(tmp_path / "bad")], entrypoint=True))
    assert rc == 3 and "no *.pt files in it" in out
