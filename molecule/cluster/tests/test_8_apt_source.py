"""The apt_source role (Docker's and NVIDIA's repositories go on with it) against Debian's own
archive: check mode, apply, apply again, check mode again, and apt trusts the key it was given."""

from __future__ import annotations

from harness import node, run_playbook

LIST = "/etc/apt/sources.list.d/torchswarm-test.list"
KEYRING = "/etc/apt/keyrings/torchswarm-test.gpg"


def test_a_repository_trusted_for_one_key_goes_on_once_and_apt_reads_it(inventory, tmp_path):
    host = node("node0")

    def changed(*extra: str) -> int:
        run = run_playbook("apt-source.yml", inventory, tmp_path, *extra)
        assert run.rc == 0
        return run.recap["node0"]["changed"]

    try:
        assert changed("--check") > 0
        assert not host.file(LIST).exists and not host.file(KEYRING).exists
        assert changed() > 0
        assert changed() == 0
        assert changed("--check") == 0

        line = host.file(LIST).content_string.strip()
        assert (
            line
            == f"deb [arch=amd64 signed-by={KEYRING}] http://deb.debian.org/debian bookworm-backports main"
        )
        update = host.run("apt-get update")
        assert update.rc == 0 and "NO_PUBKEY" not in update.stderr, update.stderr
        assert "bookworm-backports" in host.check_output("apt-cache policy")
    finally:
        host.run(f"rm -f {LIST} {KEYRING} && apt-get update -qq")
