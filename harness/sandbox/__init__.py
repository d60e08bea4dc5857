"""Sandboxed execution of untrusted, model-written Python programs (bubblewrap + resource limits)."""

from __future__ import annotations

from harness.sandbox.limits import SandboxLimits, SandboxResult, sandbox_workers
from harness.sandbox.runner import Sandbox

__all__ = ["Sandbox", "SandboxLimits", "SandboxResult", "sandbox_workers"]
