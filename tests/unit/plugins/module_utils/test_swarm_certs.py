"""When a node's swarm certificate expires: real certificates, made here with the cryptography
library (as swarmkit makes them: ECDSA P-256), read by the hand-written DER reader."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.torchswarm.ddp.plugins.filter import swarm as swarm_filter
from ansible_collections.torchswarm.ddp.plugins.module_utils import _swarm_certs as swarm_certs

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def certificate(not_after: datetime, with_version: bool = True) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-node")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-ca")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=90))
        .not_valid_after(not_after)
    )
    cert = builder.sign(key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    # swarmkit writes the node's certificate, then its issuer's, into the one file.
    return pem + (certificate(not_after + timedelta(days=3000), False) if with_version else "")


@pytest.mark.parametrize(
    "end",
    [
        datetime(2027, 3, 6, 11, 59, 30, tzinfo=UTC),  # UTCTime
        datetime(2051, 1, 2, 3, 4, 5, tzinfo=UTC),  # GeneralizedTime (2050 on)
        datetime(1999, 12, 31, 23, 0, 0, tzinfo=UTC),  # a 19xx UTCTime
    ],
)
def test_the_end_of_validity_is_read_from_the_first_certificate(end):
    assert swarm_certs.not_after(certificate(end)) == end


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----", "bad base64"),
        ("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----", "not an X.509"),
    ],
)
def test_what_is_not_a_certificate_is_refused_with_the_reason(text, reason):
    with pytest.raises(swarm_certs.CertificateError, match=reason):
        swarm_certs.not_after(text)


def test_a_cut_short_certificate_is_refused_not_misread():
    pem = certificate(NOW + timedelta(days=80), with_version=False)
    der = base64.b64decode("".join(pem.splitlines()[1:-1]))
    cut = base64.b64encode(der[:60]).decode()
    with pytest.raises(swarm_certs.CertificateError):
        swarm_certs.not_after(f"-----BEGIN CERTIFICATE-----\n{cut}\n-----END CERTIFICATE-----")


def test_ninety_days_left_is_a_line_without_a_warning():
    row = swarm_certs.expiry("node1", certificate(NOW + timedelta(days=89, hours=23)), NOW)
    assert row["days"] == 89
    assert not row["warning"]
    assert row["line"] == f"host node1: swarm certificate valid until {row['expires']}, 89 days from now"


def test_under_thirty_days_and_expired_warn_naming_the_host():
    soon = swarm_certs.expiry("node2", certificate(NOW + timedelta(days=12, hours=1)), NOW)
    assert soon["days"] == 12
    assert soon["warning"].startswith("WARNING: host node2: its swarm certificate expires in 12 day(s)")
    assert "cannot rejoin" in soon["warning"] and soon["line"] == soon["warning"]
    gone = swarm_certs.expiry("node3", certificate(NOW - timedelta(days=2)), NOW)
    assert gone["days"] < 0 and "node3: its swarm certificate has expired" in gone["warning"]
    assert swarm_certs.expiry("node4", certificate(NOW + timedelta(days=40)), NOW, warn_days=45)["warning"]


def test_the_filter_reads_slurp_results_and_names_nodes_it_could_not_read():
    content = base64.b64encode(certificate(NOW + timedelta(days=60)).encode()).decode()
    rows = swarm_filter.swarm_cert_report(
        {
            "node0": {"content": content, "encoding": "base64"},
            "node5": {"unreachable": True, "msg": "Failed to connect to the host via ssh"},
            "node6": {"skipped": True, "false_condition": "swarm_node_state == 'present'"},
        },
        NOW.replace(tzinfo=None),  # as Jinja's now(utc=true) gives it
    )
    assert [r["days"] for r in rows] == [60, None]
    assert rows[1]["warning"] == (
        "WARNING: host node5: its swarm certificate (/var/lib/docker/swarm/certificates/swarm-node.crt)"
        " could not be read: Failed to connect to the host via ssh"
    )
