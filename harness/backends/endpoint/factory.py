"""create(options, setup): the endpoint backend's factory (imports aiohttp; the options module does not)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.backends.endpoint.options import EndpointOptions
from harness.errors import EnvironmentProblem

if TYPE_CHECKING:
    from harness.backends.base import BackendSetup
    from harness.backends.endpoint.client import EndpointBackend
    from harness.backends.endpoint.pooled import PooledEndpointBackend

__all__ = ["create"]


def create(options: EndpointOptions, setup: BackendSetup) -> EndpointBackend | PooledEndpointBackend:
    """Build (not start) the backend: in process, or with HTTP and SSE in worker processes (backend.client_workers);
    EnvironmentProblem when aiohttp is missing."""
    try:
        from harness.backends.endpoint.client import EndpointBackend
        from harness.backends.endpoint.pooled import PooledEndpointBackend
    except ImportError as err:
        raise EnvironmentProblem(f"backend 'endpoint' needs {err.name or err}",
                                 hint="pip install 'aiohttp>=3.9'  (or ./scripts/install.sh)") from err
    if options.worker_count(setup.replicas) > 0:
        return PooledEndpointBackend(options, setup)
    return EndpointBackend(options, setup)
