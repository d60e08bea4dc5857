"""create(options, setup): the vLLM backend's factory; refuses at once (exit 3) when vllm cannot be imported."""

from __future__ import annotations

from harness.backends.base import BackendSetup
from harness.backends.vllm.adapter import VllmBackend, import_vllm
from harness.backends.vllm.options import VllmOptions

__all__ = ["check_environment", "create"]


def check_environment() -> None:
    """EnvironmentProblem (exit 3) when vllm cannot be imported here."""
    import_vllm()


def create(options: VllmOptions, setup: BackendSetup) -> VllmBackend:
    """The vLLM backend (the engine starts in start()); EnvironmentProblem when vLLM is not installed."""
    import_vllm()
    return VllmBackend(options, setup)
