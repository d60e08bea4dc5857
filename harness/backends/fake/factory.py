"""Builds a fake backend from its options and the setup (registry entry point)."""

from __future__ import annotations

from harness.backends.base import BackendSetup
from harness.backends.fake.backend import FakeBackend
from harness.backends.fake.options import FakeOptions

__all__ = ["create"]


def create(options: FakeOptions, setup: BackendSetup) -> FakeBackend:
    """The fake backend; "oracle" answers come from the setup's reference answers."""
    oracle = None
    if options.behaviour == "oracle":
        if setup.oracle_answers is None:
            raise ValueError("the oracle fake needs setup.oracle_answers (the reference answers as token ids)")
        oracle = setup.oracle_answers()
    return FakeBackend(options, setup.sampling.max_new_tokens, oracle)
