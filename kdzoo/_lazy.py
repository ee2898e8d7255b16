"""Lazy package attributes (PEP 562), shared by the packages whose ``__init__`` maps public
names to the submodules that define them, so that importing a package does not import them
all (``kdzoo --help`` stays fast; a run's code fingerprint covers only what it used)."""

from __future__ import annotations

import importlib


def attributes(package: str, mapping: dict):
    """``(__getattr__, __dir__)`` for ``package``, resolving each name of ``mapping`` from
    its module on first use and keeping it in the package's namespace."""
    import sys

    def __getattr__(name):
        if name in mapping:
            value = getattr(importlib.import_module(mapping[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*vars(sys.modules[package]), *mapping})

    return __getattr__, __dir__
