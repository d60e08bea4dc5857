"""The `harness` Typer application object that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="harness",
    help="Run MLPerf Inference Llama 2 70B through LoadGen: runs, accuracy, Slurm, preflight.",
    no_args_is_help=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect run configurations.", pretty_exceptions_show_locals=False)
dataset_app = typer.Typer(help="Inspect QSL datasets.", pretty_exceptions_show_locals=False)
app.add_typer(config_app, name="config")
app.add_typer(dataset_app, name="dataset")
