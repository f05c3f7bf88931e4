"""When each node's swarm certificate expires, and whether that is soon: pure, from the PEM text
of ``/var/lib/docker/swarm/certificates/swarm-node.crt`` as each node holds it.

A node renews its certificate by itself while it is in the swarm; one that is offline past the
expiry cannot rejoin (moby#42660), so status.yml warns ahead of it. The one field needed, the
validity's end, is read from the DER by hand: no cryptography library on the nodes or here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

CERT_PATH = "/var/lib/docker/swarm/certificates/swarm-node.crt"
WARN_DAYS = 30
PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
SEQUENCE, EXPLICIT_0, UTC_TIME, GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18


class CertificateError(ValueError):
    pass


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``at``."""
    if at + 2 > len(der):
        raise CertificateError("truncated")
    tag, length, start = der[at], der[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or start + count > len(der):
            raise CertificateError("bad length")
        length, start = int.from_bytes(der[start : start + count], "big"), start + count
    if start + length > len(der):
        raise CertificateError("truncated")
    return tag, start, start + length


def _time(tag: int, text: str) -> datetime:
    if tag == UTC_TIME:  # YYMMDDHHMMSSZ; years 50-99 are 19xx (RFC 5280)
        stamp = datetime.strptime(text, "%y%m%d%H%M%SZ")
    elif tag == GENERALIZED_TIME:
        stamp = datetime.strptime(text, "%Y%m%d%H%M%SZ")
    else:
        raise CertificateError(f"tag {tag:#x} is not a time")
    return stamp.replace(tzinfo=UTC)


def not_after(pem: str) -> datetime:
    """The end of the first certificate's validity in ``pem``."""
    match = PEM.search(pem)
    if not match:
        raise CertificateError("no PEM certificate")
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except binascii.Error as e:
        raise CertificateError(f"bad base64: {e}") from e
    tag, at, _unused = _tlv(der, 0)  # Certificate
    tag2, at, end = _tlv(der, at)  # tbsCertificate
    if tag != SEQUENCE or tag2 != SEQUENCE:
        raise CertificateError("not an X.509 certificate")
    if der[at] == EXPLICIT_0:  # version
        at = _tlv(der, at)[2]
    for _unused in range(3):  # serialNumber, signature, issuer
        at = _tlv(der, at)[2]
    tag, at, _unused = _tlv(der, at)  # validity
    if tag != SEQUENCE or at >= end:
        raise CertificateError("no validity")
    at = _tlv(der, at)[2]  # notBefore
    tag, start, stop = _tlv(der, at)
    try:
        return _time(tag, der[start:stop].decode("ascii"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CertificateError(f"bad notAfter: {e}") from e


def expiry(
    host: str, pem: str | None, now: datetime, warn_days: int = WARN_DAYS, why: str = ""
) -> dict[str, Any]:
    """One node's row: when its certificate expires, in how many whole days, a warning when that
    is under ``warn_days`` or the certificate could not be read (``pem`` None, ``why`` says why),
    and the ``line`` status.yml prints (the warning, if any)."""
    row: dict[str, Any] = {"host": host, "expires": "", "days": None, "warning": ""}
    try:
        if pem is None:
            raise CertificateError(why or "no answer")
        end = not_after(pem)
    except CertificateError as e:
        row["warning"] = f"WARNING: host {host}: its swarm certificate ({CERT_PATH}) could not be read: {e}"
        return {**row, "line": row["warning"]}
    row.update(expires=f"{end:%Y-%m-%d %H:%M} UTC", days=(end - now).days)
    line = f"host {host}: swarm certificate valid until {row['expires']}, {row['days']} days from now"
    if row["days"] < warn_days:
        when = "has expired" if end <= now else f"expires in {row['days']} day(s)"
        row["warning"] = (
            f"WARNING: host {host}: its swarm certificate {when} ({row['expires']}). A node renews it "
            "while it is in the swarm; one offline past then cannot rejoin. Bring it online, or run "
            "site.yml with swarm_ca_rotate: true to issue new certificates now"
        )
    return {**row, "line": row["warning"] or line}


def report(
    reads: Mapping[str, Mapping[str, Any]], now: datetime, warn_days: int = WARN_DAYS
) -> list[dict[str, Any]]:
    """A row per node from each host's read as slurp returns it (``content`` base64; left out
    where the read failed, and ``msg`` then says why); a host whose read was skipped (marked
    absent) has no row."""
    if now.tzinfo is None:  # Jinja's now(utc=true) is naive
        now = now.replace(tzinfo=UTC)
    rows = []
    for host, read in reads.items():
        if read.get("skipped"):
            continue
        content = read.get("content")
        pem = base64.b64decode(content).decode("ascii", "replace") if content else None
        rows.append(expiry(str(host), pem, now, warn_days, str(read.get("msg") or "")))
    return rows
