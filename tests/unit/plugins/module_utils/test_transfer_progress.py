"""The progress record a sender writes and the line the controller prints from it."""

from __future__ import annotations

import json

from ansible_collections.torchswarm.ddp.plugins.module_utils import _transfer_progress as transfer_progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_record_is_written_at_most_once_per_interval_and_at_the_end(tmp_path):
    path, clock = tmp_path / "sub" / "image-node1.json", Clock()
    recorder = transfer_progress.Recorder(str(path), total=1000, every=1.0, clock=clock)
    assert json.loads(path.read_text())["bytes"] == 0  # there from the start

    clock.now += 0.5
    recorder(100)
    assert json.loads(path.read_text())["bytes"] == 0  # too soon
    clock.now += 0.6
    recorder(300)
    assert json.loads(path.read_text()) == {"bytes": 300, "total": 1000, "seconds": 1.1, "finished": False}
    clock.now += 0.1
    recorder(1000, last=True)  # written at once: the other end answers next
    assert json.loads(path.read_text()) == {"bytes": 1000, "total": 1000, "seconds": 1.2, "finished": True}
    assert [p.name for p in path.parent.iterdir()] == ["image-node1.json"]  # no partial file left
    recorder.remove()
    recorder.remove()  # twice is fine
    assert not path.exists()


def test_recording_removes_its_file_even_when_the_transfer_fails(tmp_path):
    path = tmp_path / "data.json"
    try:
        with transfer_progress.recording(str(path), 10) as progress:
            progress(5)
            assert path.exists()
            raise OSError("the stream broke")
    except OSError:
        pass
    assert not path.exists()
    with transfer_progress.recording(None) as progress:
        assert progress is None


def test_the_line_says_how_much_of_how_much_and_how_fast():
    record = {"bytes": 1_500_000_000, "total": 6_000_000_000, "seconds": 30, "finished": False}
    assert (
        transfer_progress.line("dataset to node1", record, 31)
        == "dataset to node1: 1.5 GB of 6.0 GB (25%) in 30 s, 50.0 MB/s"
    )
    unknown_total = {"bytes": 2048, "total": None, "seconds": 2}
    assert (
        transfer_progress.line("image to node2", unknown_total, 3)
        == "image to node2: 2.0 KB in 2 s, 1.0 KB/s"
    )
    assert (
        transfer_progress.line("image to node2", None, 14.6) == "image to node2: nothing sent yet after 15 s"
    )
    sent = {"bytes": 558_900_000, "total": None, "seconds": 29, "finished": True}
    assert (
        transfer_progress.line("image to node0", sent, 60)
        == "image to node0: all 558.9 MB sent in 29 s, 19.3 MB/s; waiting for the answer"
    )


def test_anything_but_a_record_reads_as_none():
    assert transfer_progress.parse('{"bytes": 5, "total": null}') == {"bytes": 5, "total": None}
    for text in ("", "{", "[1]", '{"bytes": "5"}'):
        assert transfer_progress.parse(text) is None
