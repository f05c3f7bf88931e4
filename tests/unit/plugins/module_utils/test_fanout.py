from __future__ import annotations

import math

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import _fanout as fanout


def holders_after(rounds: list[dict[str, str]], holders: list[str]) -> list[str]:
    """Replays the rounds, checking that every sender held the image when it sent."""
    have = set(holders) | {"localhost"}
    for round_ in rounds:
        assert set(round_.values()) <= have, f"a sender without the image in {round_}"
        assert len(set(round_.values())) == len(round_), f"a host sends twice in one round: {round_}"
        have |= set(round_)
    return sorted(have - {"localhost"})


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 7, 8, 12, 100])
def test_n_hosts_from_the_controller_alone_take_ceil_log2_n_plus_1_rounds(n):
    hosts = [f"node{i}" for i in range(n)]
    rounds = fanout.fanout_rounds(hosts, [], plan="rounds")
    assert len(rounds) == math.ceil(math.log2(n + 1))
    assert holders_after(rounds, []) == sorted(hosts)
    # The controller's uplink carries the image once per round at most.
    assert all(list(r.values()).count("localhost") <= 1 for r in rounds)


def test_hosts_that_hold_the_image_send_before_the_controller():
    rounds = fanout.fanout_rounds(["node3"], ["node0", "node1", "node2"], plan="rounds")
    assert rounds == [{"node3": "node0"}]
    rounds = fanout.fanout_rounds(["node3", "node4", "node5", "node6"], ["node0", "node1"], plan="rounds")
    assert len(rounds) == 2
    assert "localhost" in rounds[0].values()  # three holders, four to go: everyone sends
    assert holders_after(rounds, ["node0", "node1"]) == ["node0", "node1", "node3", "node4", "node5", "node6"]


def test_nothing_missing_means_no_rounds_and_a_star_is_one_round_from_the_controller():
    for plan in fanout.PLANS:
        assert fanout.fanout_rounds([], ["node0"], plan=plan) == []
    assert fanout.fanout_rounds(["a", "b", "c"], ["node0"], plan="star") == [
        dict.fromkeys("abc", "localhost")
    ]
    with pytest.raises(ValueError, match="plan 'tree': expected one of chain, rounds, star"):
        fanout.fanout_rounds(["a"], [], plan="tree")


def test_a_host_both_missing_and_listed_as_holder_is_not_a_sender_and_duplicates_count_once():
    rounds = fanout.fanout_rounds(["a", "a", "b"], ["a"], plan="rounds")
    assert rounds == [{"a": "localhost"}, {"b": "a"}]
    assert fanout.fanout_rounds(["a", "a", "b"], ["a"]) == [{"a": "localhost", "b": "a"}]


def chains_of(round_: dict[str, str], holders: list[str]) -> list[list[str]]:
    """Follows a chain round from each host that sends without receiving in it, checking that
    every receiver is reached once and passes the stream on to one host at most."""
    senders = list(round_.values())
    assert all(senders.count(s) == 1 for s in senders), f"a host sends twice: {round_}"
    heads = [s for s in senders if s not in round_]
    assert set(heads) <= set(holders) | {"localhost"}, f"a head without the image: {round_}"
    chains = []
    for head in heads:
        chain, host = [head], head
        while (host := fanout.forwards_to(round_, host)) is not None:
            chain.append(host)
        chains.append(chain)
    assert sorted(h for c in chains for h in c[1:]) == sorted(round_), f"a receiver off every chain: {round_}"
    return chains


@pytest.mark.parametrize("n", [1, 2, 3, 12, 100])
def test_a_chain_from_the_controller_is_one_round_in_play_order_and_every_link_carries_it_once(n):
    hosts = [f"node{i}" for i in range(n)]
    rounds = fanout.fanout_rounds(hosts, [])
    assert len(rounds) == 1
    assert chains_of(rounds[0], []) == [["localhost", *hosts]]


def test_hosts_that_hold_the_image_head_the_chains_and_the_controller_sends_nothing():
    rounds = fanout.fanout_rounds(["node3", "node4", "node5", "node6"], ["node0", "node1"])
    assert len(rounds) == 1
    assert chains_of(rounds[0], ["node0", "node1"]) == [
        ["node0", "node3", "node5"],
        ["node1", "node4", "node6"],
    ]
    # More holders than hosts to serve: the first ones serve, one host each.
    assert fanout.fanout_rounds(["node3"], ["node0", "node1", "node2"]) == [{"node3": "node0"}]
    assert fanout.forwards_to({"node3": "node0"}, "node3") is None


def test_the_header_is_accepted_only_with_the_token_and_compression_it_was_made_with():
    line = fanout.header("s3cret", "zstd")
    assert fanout.header_problem(line, "s3cret", "zstd") is None
    assert fanout.header_problem(line, "other", "zstd") == "wrong token"
    assert fanout.header_problem(line, "s3cret", "none") == "compression zstd, expected none"
    assert fanout.header_problem(b"GET / HTTP/1.1\r\n", "s3cret", "zstd") == "not a torchswarm image stream"
    assert fanout.header_problem(b"TORCHSWARM-IMAGE 1 zstd s3cret\n", "s3cret", "zstd").startswith(
        "protocol version 1"
    )


def test_the_receivers_answer_must_name_the_expected_id():
    assert fanout.reply_problem(fanout.reply("sha256:ab"), "sha256:ab") is None
    assert fanout.reply_problem(fanout.reply("sha256:cd"), "sha256:ab") == "unexpected answer 'OK sha256:cd'"
    assert (
        fanout.reply_problem(fanout.reply(None, "docker load exited 1"), "sha256:ab")
        == "docker load exited 1"
    )
    assert "without an answer" in fanout.reply_problem(b"", "sha256:ab")


def test_pipelines_compress_only_when_asked():
    assert fanout.save_command("img:1") == ["docker", "save", "img:1"]
    assert fanout.compress_commands("none") == []
    assert fanout.compress_commands("zstd")[0][0] == "zstd"
    assert fanout.load_commands("zstd")[0][:2] == ["zstd", "-d"]
    assert fanout.load_commands("none") == [["docker", "load", "--quiet"]]


def test_the_hosts_after_one_down_its_chain():
    round_ = fanout.fanout_rounds(["node1", "node2", "node3", "node4"], ["node0", "node9"])[0]
    assert round_ == {"node1": "node0", "node2": "node9", "node3": "node1", "node4": "node2"}
    assert fanout.chain_after(round_, "node0") == ["node1", "node3"]
    assert fanout.chain_after(round_, "node1") == ["node3"]
    assert fanout.chain_after(round_, "node2") == ["node4"]
    assert fanout.chain_after(round_, "node4") == []
