"""Core `harness` commands: run, config show, dataset info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from harness.cli._app import config_app
from harness.config import load_config
from harness.console import stdout

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="run config YAML")]  # noqa: UP007
SetOption = Annotated[Optional[list[str]], typer.Option("--set", help="override: key.path=value")]  # noqa: UP007


@config_app.command("show")
def config_show(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Print the effective run configuration (embedded default when --config is absent)."""
    run_config = load_config(config, set_ or [])
    stdout.print(yaml.safe_dump(run_config.model_dump(mode="json"), sort_keys=False), end="", markup=False)
