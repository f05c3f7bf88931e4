"""Pick the network interface that holds an address in a given subnet.

In a swarm task the overlay and the gateway bridge are both ``ethN``, in no guaranteed order,
so the guide's fixed ``eth0`` can put NCCL/gloo traffic on the wrong network. The choice is a
pure function over (interface, address) pairs; reading the pairs is the only system call.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, MutableMapping

SIOCGIFADDR = 0x8915
SOCKET_IFNAME_VARS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")


def choose_interface(subnet: str, addresses: Iterable[tuple[str, str]]) -> str | None:
    """The first interface (in the order given) with an address inside ``subnet``."""
    network = ipaddress.ip_network(subnet, strict=False)
    for name, addr in addresses:
        try:
            if ipaddress.ip_address(addr) in network:
                return name
        except ValueError:
            continue
    return None


def ipv4_addresses() -> list[tuple[str, str]]:
    """(interface, IPv4 address) for every interface that has one."""
    pairs = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _unused, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on this interface
            pairs.append((name, socket.inet_ntoa(packed[20:24])))
    return pairs


def configure_socket_ifname(
    subnet: str | None,
    env: MutableMapping[str, str] | None = None,
    addresses: Iterable[tuple[str, str]] | None = None,
) -> str | None:
    """Set NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME from ``subnet`` unless the user set them.

    Returns the interface chosen, or None when nothing was set. Raises ValueError when a subnet
    is given but no interface holds an address in it (a silent fallback would pick eth0).
    """
    env = os.environ if env is None else env
    if not subnet or any(env.get(var) for var in SOCKET_IFNAME_VARS):
        return None
    pairs = list(ipv4_addresses() if addresses is None else addresses)
    name = choose_interface(subnet, pairs)
    if name is None:
        found = ", ".join(f"{n}={a}" for n, a in pairs) or "none"
        raise ValueError(f"no network interface has an address in {subnet} (interfaces: {found})")
    for var in SOCKET_IFNAME_VARS:
        env[var] = name
    return name
