"""create(options, setup): the endpoint backend's factory (imports aiohttp; the options module does not)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.backends.endpoint.options import EndpointOptions
from harness.errors import EnvironmentProblem

if TYPE_CHECKING:
    from harness.backends.base import BackendSetup
    from harness.backends.endpoint.client import EndpointBackend

__all__ = ["create"]


def create(options: EndpointOptions, setup: BackendSetup) -> EndpointBackend:
    """Build (not start) the backend; EnvironmentProblem when aiohttp is missing."""
    try:
        from harness.backends.endpoint.client import EndpointBackend
    except ImportError as err:
        raise EnvironmentProblem(f"backend 'endpoint' needs {err.name or err}",
                                 hint="pip install 'aiohttp>=3.9'  (or ./scripts/install.sh)") from err
    return EndpointBackend(options, setup)
