"""Filters for the network role; the logic lives in module_utils/_network.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._network import (
    recreate_reasons,
    services_using,
    wanted_driver_options,
)


def network_recreate_reasons(current, subnet=None, mtu=None, encrypted=False):
    return recreate_reasons(current, subnet or None, int(mtu or 0) or None, bool(encrypted))


def network_driver_options(mtu=None, encrypted=False):
    return wanted_driver_options(int(mtu or 0) or None, bool(encrypted))


def network_services_using(services, network_id, network_name):
    return services_using(services or [], network_id, network_name)


class FilterModule:
    def filters(self):
        return {
            "network_recreate_reasons": network_recreate_reasons,
            "network_driver_options": network_driver_options,
            "network_services_using": network_services_using,
        }
