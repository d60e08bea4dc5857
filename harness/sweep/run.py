"""The sweep: one closed-loop level per concurrency, each in its own directory, summarised in sweep.json.

DIR/config.yaml (the effective run config, secrets redacted), DIR/concurrency-<N>/level.json (what ran: the level,
its URLs, the backend, per-URL load, status) and samples.jsonl (per sample: issue, first token, completion, output
tokens; a run directory's format), DIR/sweep.json (every level's metrics, rewritten after each level). A failed
level stops the sweep: it is recorded `failed` with its reason and the levels before it stay.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.artifacts import config_text, redacted_command, utc_now, write_json_atomic, write_text_atomic
from harness.config import RunConfig, with_updates
from harness.console import Progress, stderr
from harness.dataset import load_dataset
from harness.distributed import replicas
from harness.errors import ConfigError, HarnessError, Interrupted, RunError
from harness.redact import redact_text
from harness.report.data import read_timings
from harness.report.sweep import LEVEL_FILE, SWEEP_FILE, LevelMetrics, Sweep, level_metrics
from harness.safe_paths import from_os_error
from harness.sweep.level import run_level
from harness.tokenizer import eos_token_id, load_tokenizer

__all__ = ["in_flight", "level_config", "level_dir_name", "level_line", "parse_levels", "run_sweep", "say",
           "sweep_config"]

SAMPLES = "samples.jsonl"


def parse_levels(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8] (ConfigError naming the bad part: not a positive integer, or repeated)."""
    levels: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise ConfigError(f"--concurrency {text!r}: {part!r} is not a positive integer; expected a comma-"
                              "separated list of requests in flight per URL", hint="e.g. --concurrency 1,2,4,8")
        if int(part) in levels:
            raise ConfigError(f"--concurrency {text!r}: {part} is given twice; expected each level once",
                              hint="e.g. --concurrency 1,2,4,8")
        levels.append(int(part))
    return levels


def sweep_config(config: RunConfig, urls: Sequence[str] | None) -> RunConfig:
    """The run config with --urls applied: the endpoint backend against those URLs (its other keys kept when the
    config already is an endpoint one)."""
    if not urls:
        return config
    if config.backend.kind == "endpoint":
        return with_updates(config, {"backend.urls": list(urls)})
    return with_updates(config, {"backend": {"kind": "endpoint", "urls": list(urls)}})


def _urls(config: RunConfig) -> list[str]:
    return list(getattr(config.backend, "urls", ()) or ())


def level_config(config: RunConfig, level: int) -> RunConfig:
    """The config of one level: an endpoint backend admits `level` requests per URL and streams (first tokens)."""
    if config.backend.kind != "endpoint":
        return config
    return with_updates(config, {"backend.concurrency": level, "backend.stream": True})


def in_flight(config: RunConfig, level: int) -> int:
    """Requests outstanding at a level: level per URL for the endpoint backend, level for any other."""
    return level * max(1, len(_urls(config))) if config.backend.kind == "endpoint" else level


def level_dir_name(level: int) -> str:
    """concurrency-<level>."""
    return f"concurrency-{level}"


def _prepare(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} exists and is a file; expected a directory path for the sweep",
                          hint="choose a new --output")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise ConfigError(f"sweep directory {output} already exists and is not empty; a sweep never replaces "
                              "another", hint="choose a new --output, or pass --overwrite to replace it")
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)


def _write_level(path: Path, run_config: RunConfig, level: int, flight: int, status: str, error: str | None,
                 records: list[dict[str, object]], facts: dict[str, object]) -> None:
    write_text_atomic(path / SAMPLES, "".join(json.dumps(r) + "\n" for r in records))
    write_json_atomic(path / LEVEL_FILE, {
        "concurrency": level, "in_flight": flight, "urls": [redact_text(u) for u in _urls(run_config)],
        "backend_kind": run_config.backend.kind, "status": status, "error": error,
        "errors": sum(1 for r in records if "error" in r), "samples": len(records), **facts})


def run_sweep(config: RunConfig, levels: Sequence[int], output: Path, *, overwrite: bool = False,
              command: Sequence[str] = (), progress: bool = True,
              on_level: Callable[[LevelMetrics], None] | None = None) -> Sweep:
    """Run every level in order against the configured backend; sweep.json after each. RunError (exit 4) names
    a failed level; Interrupted (130) after Ctrl-C; either way the levels done stay in `output`."""
    if not levels:
        raise ConfigError("no concurrency levels given", hint="e.g. --concurrency 1,2,4,8")
    replicas.check_engine(config)
    tokenizer = load_tokenizer(config.model.tokenizer or config.model.path)
    dataset = load_dataset(config, tokenizer)
    stops = replicas.stop_ids(config, tokenizer, eos_token_id(tokenizer, config.model.eos_token_id))
    try:
        _prepare(output, overwrite)
        write_text_atomic(output / "config.yaml", config_text(config.model_dump(mode="json")))
    except OSError as err:
        raise from_os_error(err, "write the sweep directory") from None
    sweep = Sweep(output, output.name, [redact_text(u) for u in _urls(config)], utc_now(),
                  redacted_command(list(command)), [])
    for number, level in enumerate(levels, start=1):
        run_config = level_config(config, level)
        flight = in_flight(config, level)
        path = output / level_dir_name(level)
        path.mkdir()
        failure: HarnessError | None = None
        started = utc_now()
        with Progress(len(dataset.samples), f"concurrency {level} ({number}/{len(levels)})", enabled=progress) as bar:
            try:
                run = run_level(replicas.create_backend(run_config, tokenizer), dataset, flight, stops, bar)
            except KeyboardInterrupt:
                failure = Interrupted(f"interrupted at concurrency level {level}; levels done stay in {output}")
            except HarnessError as err:
                failure = RunError(f"concurrency level {level} failed: {err.message}; levels done stay in {output} "
                                   f"({SWEEP_FILE})", hint=err.hint)
        if failure is not None:
            _write_level(path, run_config, level, flight, "failed", failure.message, [], {"started_at": started})
            sweep.levels.append(level_metrics(level, flight, [], 0, path.name, "failed", failure.message))
            write_json_atomic(output / SWEEP_FILE, sweep.to_json())
            raise failure
        reason = run.first_failure
        status = "failed" if reason else "completed"
        facts: dict[str, object] = {
            "started_at": started, "ended_at": utc_now(),
            "backend": run.info.name if run.info else None, "versions": run.info.versions if run.info else {},
            "load": [{"name": redact_text(u.name), "requests": u.requests, "tokens": u.tokens, "errors": u.errors,
                      "version": u.version} for u in run.report.load]}
        records = run.records()
        _write_level(path, run_config, level, flight, status, reason, records, facts)
        metrics = level_metrics(level, flight, read_timings(path / SAMPLES), len(run.recorder.failures), path.name,
                                status, reason)
        sweep.levels.append(metrics)
        write_json_atomic(output / SWEEP_FILE, sweep.to_json())
        if reason:
            raise RunError(f"concurrency level {level} failed: {reason}; levels done stay in {output} ({SWEEP_FILE})",
                           hint="check the server named above, then rerun the sweep (--overwrite)")
        if on_level is not None:
            on_level(metrics)
    return sweep


def level_line(metrics: LevelMetrics) -> str:
    """One line per finished level for the console."""
    def number(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:,.1f} {unit}"

    return (f"sweep: concurrency {metrics.concurrency} ({metrics.in_flight} in flight): "
            f"{number(metrics.system_tokens_per_s, 'tokens/s')}, "
            f"{number(metrics.tokens_per_s_per_user, 'tokens/s per user')}, "
            f"TTFT p90 {number(metrics.ttft_ms.get('p90'), 'ms')}, {metrics.completed} completed")


def say(line: str) -> None:
    """Print a progress line on stderr."""
    stderr.print(line, markup=False, soft_wrap=True)
