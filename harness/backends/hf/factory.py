"""Builds the PyTorch/transformers backend from its options and the setup (registry entry point)."""

from __future__ import annotations

from harness.backends.base import BackendSetup
from harness.backends.hf.backend import HfBackend
from harness.backends.hf.options import HfOptions

__all__ = ["create"]


def create(options: HfOptions, setup: BackendSetup) -> HfBackend:
    """The hf backend (loads nothing until start)."""
    return HfBackend(options, setup)
