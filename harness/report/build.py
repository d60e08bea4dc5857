"""write_report(): figures (PNG), index.html and runs.md for run and sweep directories, written atomically."""

from __future__ import annotations

import html
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from matplotlib.figure import Figure

from harness.errors import ConfigError, InputError
from harness.report.data import RunData, load_run, reference_lengths, unique_names
from harness.report.figures import pareto_figure, run_figures
from harness.report.sweep import Sweep, is_level_dir, is_sweep_dir, load_sweep, sweep_from_levels
from harness.report.tables import (
    COLUMNS,
    LOAD_COLUMNS,
    SWEEP_COLUMNS,
    load_rows,
    markdown_load_table,
    markdown_sweep_table,
    markdown_table,
    row,
    sweep_rows,
)

INDEX = "index.html"
TABLE = "runs.md"


@dataclass
class Report:
    """What was written, and the figure objects (tests inspect them)."""

    output: Path
    runs: list[RunData]
    names: list[str]
    figures: dict[str, dict[str, Figure]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    sweep_figures: dict[str, dict[str, Figure]] = field(default_factory=dict)

    @property
    def figure_count(self) -> int:
        """Figures of every run and sweep."""
        return sum(len(f) for f in self.figures.values()) + sum(len(f) for f in self.sweep_figures.values())


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _references(runs: list[RunData]) -> dict[int, tuple[list[int] | None, str]]:
    found: dict[tuple[object, ...], tuple[list[int] | None, str]] = {}
    by_run = {}
    for index, run in enumerate(runs):
        dataset, model = run.config.get("dataset") or {}, run.config.get("model") or {}
        key = (dataset.get("path"), dataset.get("max_samples"), model.get("tokenizer") or model.get("path"))
        if key not in found:
            found[key] = reference_lengths(run)
        by_run[index] = found[key]
    return by_run


def _sweeps(paths: list[Path], taken: set[str]) -> list[Sweep]:
    """Sweep directories, and level directories grouped by their parent, as sweeps with distinct names."""
    found: list[Sweep] = []
    levels: dict[Path, list[Path]] = {}
    for path in paths:
        if is_sweep_dir(path):
            found.append(load_sweep(path))
        else:
            levels.setdefault(path.resolve().parent, []).append(path)
    found.extend(sweep_from_levels(group) for group in levels.values())
    named = []
    for sweep in found:
        name, n = sweep.name, 1
        while name in taken:
            n += 1
            name = f"{sweep.name}-sweep" + (str(n) if n > 2 else "")
        taken.add(name)
        named.append(replace(sweep, name=name))
    return named


def build_report(run_dirs: list[Path]) -> Report:
    """Read the runs and sweeps and build every figure in memory."""
    if not run_dirs:
        raise InputError("no run directories given", hint="harness report RUN_DIR|SWEEP_DIR... [--output DIR]")
    sweep_paths = [p for p in run_dirs if p.is_dir() and (is_sweep_dir(p) or is_level_dir(p))]
    loaded = [load_run(path) for path in run_dirs if path not in sweep_paths]
    names = unique_names(loaded)
    runs = [replace(run, name=name) for run, name in zip(loaded, names, strict=True)]
    report = Report(Path(), runs, names, sweeps=_sweeps(sweep_paths, set(names)))
    for sweep in report.sweeps:
        figure = pareto_figure(sweep)
        report.sweep_figures[sweep.name] = {"pareto": figure} if figure is not None else {}
    references = _references(runs)
    for index, (run, name) in enumerate(zip(runs, names, strict=True)):
        lengths, note = references[index]
        report.figures[name] = run_figures(run, lengths, note)
    return report


def _html(report: Report) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row(run, name)) + "</tr>"
                   for run, name in zip(report.runs, report.names, strict=True))
    sections = []
    for run, name in zip(report.runs, report.names, strict=True):
        images = "".join(f'<figure><img src="{_slug(name)}/{stem}.png" alt="{html.escape(stem)}"></figure>'
                         for stem in report.figures[name])
        facts = (f"{html.escape(run.manifest.benchmark)} {html.escape(run.scenario)} {html.escape(run.manifest.mode)}"
                 f", {html.escape(run.manifest.backend_name or run.manifest.backend)}, {len(run.timings)} samples"
                 f", <code>{html.escape(str(run.path))}</code>")
        load = load_rows(run, name)
        load_table = ("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in LOAD_COLUMNS[1:]) + "</tr>"
                      + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells[1:]) + "</tr>"
                                for cells in load) + "</table>") if load else ""
        sections.append(f"<section><h2>{html.escape(name)}</h2><p>{facts}</p>{load_table}"
                        f"{images or '<p>no samples</p>'}</section>")
    for sweep in report.sweeps:
        head_cells = "".join(f"<th>{html.escape(c)}</th>" for c in SWEEP_COLUMNS)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                       for cells in sweep_rows(sweep))
        images = "".join(f'<figure><img src="{_slug(sweep.name)}/{stem}.png" alt="{html.escape(stem)}"></figure>'
                         for stem in report.sweep_figures.get(sweep.name, {}))
        urls = html.escape(", ".join(sweep.urls) or "the configured backend")
        sections.append(f"<section><h2>Concurrency sweep: {html.escape(sweep.name)}</h2><p>against {urls}, "
                        f"<code>{html.escape(str(sweep.path))}</code>; tokens/s per user = 1000 / TPOT p90 (ms)</p>"
                        f"<table><tr>{head_cells}</tr>{rows}</table>{images}</section>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:640px}figure{display:inline-block}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>MLPerf run report</title>"
            f"<style>{style}</style></head><body><h1>MLPerf run report</h1>"
            f"{f'<table><tr>{head}</tr>{body}</table>' if report.runs else ''}{''.join(sections)}</body></html>\n")


def write_report(run_dirs: list[Path], output: Path, overwrite: bool = False) -> Report:
    """Build the report and write it to output (a new directory unless overwrite)."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise ConfigError(f"report directory {output} already exists and is not empty",
                          hint="choose a new --output, or pass --overwrite")
    report = build_report(run_dirs)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for name, figures in [*report.figures.items(), *report.sweep_figures.items()]:
            for stem, figure in figures.items():
                path = staging / _slug(name) / f"{stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                figure.savefig(path, dpi=100)
        (staging / INDEX).write_text(_html(report))
        (staging / TABLE).write_text((markdown_table(report.runs, report.names) if report.runs else "")
                                     + markdown_load_table(report.runs, report.names)
                                     + "".join(markdown_sweep_table(sweep) for sweep in report.sweeps))
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.output = output
    report.files = sorted(p for p in output.rglob("*") if p.is_file())
    return report
