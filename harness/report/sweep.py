"""Concurrency-sweep metrics as MLPerf Endpoints defines them: throughput, TTFT/TPOT percentiles, Pareto front.

A sweep directory (written by `harness sweep`) holds `sweep.json` and one level directory per concurrency level
(`level.json` + `samples.jsonl`, the same per-sample record as a run's). Definitions (sources in docs/reporting.md):

- TTFT = first token received - request issued; TPOT = (completed - first token) / (output tokens - 1), samples
  with fewer than 2 tokens have none (mlcommons/endpoints `metrics_table.py` TtftTrigger, TpotTrigger).
- percentiles: numpy `method="lower"`, an observed value (mlcommons/endpoints `registry.py` `_exact_stat`).
- system output tokens/s = output tokens of completed requests / (last completion - first issue): endpoints'
  native window (`metrics_table.py` TrackedBlock, `report.py` `Report.from_snapshot`).
- tokens/s per user = 1000 / TPOT p90 in ms (issue 25; the "interactivity" axis of MLPerf Endpoints).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import InputError
from harness.report.data import Timing, read_timings

__all__ = ["LEVEL_FILE", "PERCENTILES", "SWEEP_FILE", "SWEEP_SCHEMA_VERSION", "LevelMetrics", "Sweep",
           "is_level_dir", "is_sweep_dir", "level_metrics", "load_sweep", "pareto_front", "percentile_lower",
           "read_level", "sweep_from_levels"]

SWEEP_FILE = "sweep.json"
LEVEL_FILE = "level.json"
SWEEP_SCHEMA_VERSION = 1
PERCENTILES = (50.0, 90.0, 99.0)


def percentile_lower(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile as numpy's method="lower" gives it (the largest observed value at or below the
    interpolation point); None for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q, method="lower"))


@dataclass(frozen=True)
class LevelMetrics:
    """One concurrency level of a sweep, as sweep.json records it (times in ms)."""

    concurrency: int
    in_flight: int
    status: str
    completed: int
    errors: int
    output_tokens: int
    duration_s: float
    system_tokens_per_s: float | None
    requests_per_s: float | None
    ttft_ms: dict[str, float | None]
    tpot_ms: dict[str, float | None]
    tokens_per_s_per_user: float | None
    directory: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> LevelMetrics:
        """From sweep.json (InputError naming the file and the key when malformed)."""
        try:
            return cls(int(data["concurrency"]), int(data["in_flight"]), str(data["status"]),
                       int(data["completed"]), int(data["errors"]), int(data["output_tokens"]),
                       float(data["duration_s"]), _optional(data["system_tokens_per_s"]),
                       _optional(data["requests_per_s"]), _percentiles(data["ttft_ms"]),
                       _percentiles(data["tpot_ms"]), _optional(data["tokens_per_s_per_user"]),
                       str(data["directory"]), None if data.get("error") is None else str(data["error"]))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InputError(f"{where}: a level entry is malformed ({type(err).__name__}: {err})",
                             hint="sweep.json is written by `harness sweep`; rerun the sweep") from None

    @property
    def plotted(self) -> bool:
        """A completed level with both axes of the Pareto figure."""
        return (self.status == "completed" and self.system_tokens_per_s is not None
                and self.tokens_per_s_per_user is not None)


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _percentiles(value: Any) -> dict[str, float | None]:
    return {str(key): _optional(item) for key, item in dict(value).items()}


def _key(q: float) -> str:
    return f"p{q:g}"


def level_metrics(concurrency: int, in_flight: int, timings: Sequence[Timing], errors: int, directory: str,
                  status: str = "completed", error: str | None = None) -> LevelMetrics:
    """The metrics of one level from its per-sample timings (only completed samples count)."""
    done = [t for t in timings if t.completed_ns is not None]
    ttft = [v for v in (t.ttft_ms for t in done) if v is not None]
    tpot = [v for v in (t.tpot_ms for t in done) if v is not None]
    tokens = sum(t.n_tokens for t in done)
    duration_s = 0.0
    if done:
        duration_s = (max(t.completed_ns for t in done if t.completed_ns is not None)
                      - min(t.issued_ns for t in timings)) / 1e9
    tps = tokens / duration_s if duration_s > 0 else None
    rps = len(done) / duration_s if duration_s > 0 else None
    ttft_p = {_key(q): percentile_lower(ttft, q) for q in PERCENTILES}
    tpot_p = {_key(q): percentile_lower(tpot, q) for q in PERCENTILES}
    p90 = tpot_p["p90"]
    per_user = 1000.0 / p90 if p90 else None
    return LevelMetrics(concurrency, in_flight, status, len(done), errors, tokens, duration_s, tps, rps, ttft_p,
                        tpot_p, per_user, directory, error)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points when both coordinates are to be maximised, by ascending x.

    A point is dominated when another is at least as good on both axes and better on one; equal points
    dominate neither each other, so all of them stay on the front.
    """
    front = []
    for i, (x, y) in enumerate(points):
        if not any((ox >= x and oy >= y) and (ox > x or oy > y) for j, (ox, oy) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1], i))


@dataclass(frozen=True)
class Sweep:
    """A sweep directory, read: what it ran against and every level recorded so far."""

    path: Path
    name: str
    urls: list[str]
    created: str
    command: list[str]
    levels: list[LevelMetrics]

    @property
    def plotted(self) -> list[LevelMetrics]:
        """The completed levels with both Pareto axes, by concurrency."""
        return sorted((level for level in self.levels if level.plotted), key=lambda level: level.concurrency)

    def front(self) -> list[LevelMetrics]:
        """The Pareto-optimal levels (system tokens/s against tokens/s per user), by tokens/s per user."""
        plotted = self.plotted
        points = [(float(level.tokens_per_s_per_user or 0.0), float(level.system_tokens_per_s or 0.0))
                  for level in plotted]
        return [plotted[i] for i in pareto_front(points)]

    def to_json(self) -> dict[str, Any]:
        """sweep.json's content."""
        return {"schema_version": SWEEP_SCHEMA_VERSION, "created": self.created, "command": self.command,
                "urls": self.urls, "levels": [level.to_json() for level in self.levels]}


def is_sweep_dir(path: Path) -> bool:
    """A directory written by `harness sweep` (it holds sweep.json)."""
    return (path / SWEEP_FILE).is_file()


def is_level_dir(path: Path) -> bool:
    """One level directory of a sweep (it holds level.json)."""
    return (path / LEVEL_FILE).is_file()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not readable JSON ({type(err).__name__}: {err})",
                         hint="it is written by `harness sweep`; rerun the sweep") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: holds {type(data).__name__}; expected a JSON object",
                         hint="it is written by `harness sweep`; rerun the sweep")
    return data


def load_sweep(path: Path) -> Sweep:
    """Read a sweep directory's sweep.json (InputError when it is missing, newer or malformed)."""
    file = path / SWEEP_FILE
    if not file.is_file():
        raise InputError(f"{path} holds no {SWEEP_FILE}; expected a directory written by `harness sweep`")
    data = _read_json(file)
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SWEEP_SCHEMA_VERSION:
        raise InputError(f"{file}: schema_version {version!r}; this harness reads up to {SWEEP_SCHEMA_VERSION}",
                         hint="read it with the harness that wrote it, or upgrade")
    levels = data.get("levels")
    if not isinstance(levels, list):
        raise InputError(f"{file}: 'levels' is {type(levels).__name__}; expected a list of levels",
                         hint="sweep.json is written by `harness sweep`; rerun the sweep")
    return Sweep(path, path.name or str(path), [str(u) for u in data.get("urls") or []], str(data.get("created", "")),
                 [str(a) for a in data.get("command") or []],
                 [LevelMetrics.from_json(item, str(file)) for item in levels])


def read_level(path: Path) -> LevelMetrics:
    """One level directory: its metrics recomputed from samples.jsonl and level.json's facts."""
    data = _read_json(path / LEVEL_FILE)
    try:
        concurrency, in_flight = int(data["concurrency"]), int(data["in_flight"])
        errors, status = int(data.get("errors", 0)), str(data.get("status", "completed"))
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path / LEVEL_FILE}: {type(err).__name__}: {err}; expected concurrency and in_flight",
                         hint="level.json is written by `harness sweep`; rerun the sweep") from None
    return level_metrics(concurrency, in_flight, read_timings(path / "samples.jsonl"), errors, path.name, status,
                         data.get("error"))


def sweep_from_levels(paths: Sequence[Path]) -> Sweep:
    """A sweep made of level directories given one by one (their parent names it)."""
    levels = [read_level(path) for path in paths]
    parent = paths[0].resolve().parent if paths else Path()
    urls: list[str] = []
    for path in paths:
        for url in _read_json(path / LEVEL_FILE).get("urls") or []:
            if str(url) not in urls:
                urls.append(str(url))
    return Sweep(parent, parent.name or "sweep", urls, "", [], levels)
