"""Core `harness` commands: run, config show, dataset info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from harness import runner
from harness.benchmarks.registry import DEFAULT_BENCHMARK
from harness.cli._app import app, config_app, dataset_app
from harness.config import load_config, with_updates
from harness.console import stdout
from harness.dataset import load_dataset, token_length_stats
from harness.reporting import summary_table
from harness.slurm.calibration import CALIBRATION_FILE, write_calibration_dir
from harness.tokenizer import load_tokenizer
from harness.types import Scenario, TestMode

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="run config YAML")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="override: key.path=value")]


@config_app.command("show")
def config_show(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Print the effective run configuration (embedded default when --config is absent)."""
    run_config = load_config(config, set_ or [])
    stdout.print(yaml.safe_dump(run_config.model_dump(mode="json"), sort_keys=False), end="", markup=False)


def run_flag_updates(*, mode: TestMode | None = None, scenario: Scenario | None = None,
                     output_dir: Path | None = None, overwrite: bool = False,
                     replicas: int | None = None) -> dict[str, Any]:
    """The typed config updates that `harness run`'s flags stand for (flags left out change nothing)."""
    updates: dict[str, Any] = {"mode": mode, "scenario": scenario,
                               "output_dir": None if output_dir is None else str(output_dir),
                               "overwrite": True if overwrite else None, "distributed.replicas": replicas}
    return {key: value for key, value in updates.items() if value is not None}


@app.command("run")
def run_command(
    config: ConfigOption = None,
    mode: Annotated[TestMode | None, typer.Option(help="performance or accuracy")] = None,
    scenario: Annotated[Scenario | None, typer.Option(help="Offline, Server or Interactive")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="run directory (must not exist)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run directory")] = False,
    replicas: Annotated[int | None, typer.Option(help="data-parallel backend replicas")] = None,
    set_: SetOption = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress display")] = False,
) -> None:
    """Run one LoadGen test (the embedded CPU default when --config is absent)."""
    run_config = with_updates(load_config(config, set_ or []), run_flag_updates(
        mode=mode, scenario=scenario, output_dir=output_dir, overwrite=overwrite, replicas=replicas))
    outcome = runner.run(run_config, progress=not no_progress)
    if outcome is None:  # a worker rank of a distributed run: rank 0 reports
        raise typer.Exit(0)
    stdout.print(summary_table(outcome.manifest, str(outcome.run_dir)))
    raise typer.Exit(outcome.exit_code)


@dataset_app.command("calibration")
def dataset_calibration(
    pickle_path: Annotated[Path, typer.Argument(help="the benchmark's MLCommons calibration file: "
                                                     "open_orca_gpt4_tokenized_llama.calibration_1000.pkl (Llama 2 "
                                                     "70B) or cnn_dailymail_calibration.json (Llama 3.1 8B)")],
    output_dir: Annotated[Path, typer.Argument(help="directory for quantize.py --calib_dataset (train.jsonl)")],
) -> None:
    """Write the TensorRT-LLM quantize stage's local calibration set from the MLCommons calibration file."""
    count = write_calibration_dir(pickle_path, output_dir)
    stdout.print(f"wrote {output_dir / CALIBRATION_FILE}: {count} calibration prompts", markup=False)


@dataset_app.command("info")
def dataset_info(
    path: Annotated[Path | None, typer.Argument(help="the benchmark's dataset file; omit for its smoke set")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="tokenizer for the smoke set")] = None,
    benchmark: Annotated[str, typer.Option(help="whose dataset format and smoke set")] = DEFAULT_BENCHMARK,
) -> None:
    """Summarise a QSL dataset: sample count and token-length percentiles."""
    run_config = with_updates(load_config(None), {"benchmark": benchmark, "dataset.path": str(path) if path else None})
    data = load_dataset(run_config, load_tokenizer(tokenizer))
    stats = token_length_stats([len(s.input_ids) for s in data.samples])
    stdout.print(f"dataset: {data.source}\nsha256: {data.sha256}\nsamples: {len(data)}", markup=False)
    stdout.print("input tokens: " + ", ".join(f"{k} {v:g}" for k, v in stats.items()), markup=False)
