"""Filters for the job role; the logic lives in module_utils/_job.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._data_chain import version_dir
from ansible_collections.torchswarm.ddp.plugins.module_utils._job import status_table
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_checks import host_paths
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import data_host_dir
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._rank_speed import table


def training_status_table(rows):
    return status_table(rows or [])


def training_speed_table(records, ratio=1.5):
    return table(records or [], float(ratio))


def job_host_paths(variables):
    return host_paths(variables)


def job_data_host_dir(name, data_dir="", digest=""):
    root = data_host_dir(str(name), data_dir or "")
    return version_dir(root, digest) if digest else root


class FilterModule:
    def filters(self):
        return {
            "job_data_host_dir": job_data_host_dir,
            "training_status_table": training_status_table,
            "training_speed_table": training_speed_table,
            "job_host_paths": job_host_paths,
        }
