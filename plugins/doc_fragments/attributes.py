"""Attribute docs shared by this collection's modules."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  idempotent:
    description:
      - When run twice with the same arguments, the second run reports no change.
    support: full
"""
