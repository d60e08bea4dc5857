"""The engine registry: backend kind -> its package; options models for the config, factories imported lazily.

Each engine lives in ``harness/backends/<engine>/`` with ``options.py`` (its pydantic options, cheap to
import) and ``factory.py`` (``create(options, setup) -> Backend``, which may import heavy packages).
Adding an engine means adding its folder and one line to ``ENGINES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from harness.backends.options import BackendOptions
from harness.errors import ConfigError, EnvironmentProblem

if TYPE_CHECKING:
    from harness.backends.base import Backend, BackendSetup

__all__ = ["ENGINES", "check_environment", "create", "options_models"]

ENGINES: dict[str, str] = {
    "fake": "harness.backends.fake",
    "hf": "harness.backends.hf",
    "trtllm": "harness.backends.trtllm",
    "endpoint": "harness.backends.endpoint",
    "vllm": "harness.backends.vllm",
}


def options_models() -> tuple[type[BackendOptions], ...]:
    """Every engine's options model, in registry order (the members of the run config's `backend` union)."""
    models = []
    for kind, package in ENGINES.items():
        module = importlib.import_module(f"{package}.options")
        found = [value for value in vars(module).values()
                 if isinstance(value, type) and issubclass(value, BackendOptions) and value is not BackendOptions
                 and value.model_fields["kind"].default == kind]
        if len(found) != 1:
            raise RuntimeError(f"{package}.options must define exactly one BackendOptions with kind {kind!r}")
        models.append(found[0])
    return tuple(models)


def _factory(kind: str) -> ModuleType:
    package = ENGINES.get(kind)
    if package is None:
        raise ConfigError(f"backend.kind is {kind!r}; expected one of {', '.join(sorted(ENGINES))}")
    try:
        return importlib.import_module(f"{package}.factory")
    except ImportError as err:
        raise EnvironmentProblem(
            f"backend {kind!r} needs a package that is not installed: {err.name or err}",
            hint=f"install the backend's dependencies (see README, backend '{kind}')",
        ) from err


def check_environment(kind: str) -> None:
    """EnvironmentProblem now when the engine cannot run here (a factory's optional `check_environment()`),
    before the composition point prepares anything for it (e.g. converts a checkpoint)."""
    check = getattr(_factory(kind), "check_environment", None)
    if check is not None:
        check()


def create(options: BackendOptions, setup: BackendSetup) -> Backend:
    """Build (not start) the backend of `options.kind`, importing its factory only now."""
    backend: Backend = _factory(options.kind).create(options, setup)
    return backend
