"""write_report(): figures (PNG), index.html and runs.md for a set of run directories, written atomically."""

from __future__ import annotations

import html
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from matplotlib.figure import Figure

from harness.errors import ConfigError, InputError
from harness.report.data import RunData, load_run, reference_lengths, unique_names
from harness.report.figures import run_figures
from harness.report.tables import COLUMNS, LOAD_COLUMNS, load_rows, markdown_load_table, markdown_table, row

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


def build_report(run_dirs: list[Path]) -> Report:
    """Read the runs and build every figure in memory."""
    if not run_dirs:
        raise InputError("no run directories given", hint="harness report RUN_DIR... [--output DIR]")
    loaded = [load_run(path) for path in run_dirs]
    names = unique_names(loaded)
    runs = [replace(run, name=name) for run, name in zip(loaded, names, strict=True)]
    report = Report(Path(), runs, names)
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
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:640px}figure{display:inline-block}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>MLPerf run report</title>"
            f"<style>{style}</style></head><body><h1>MLPerf run report</h1>"
            f"<table><tr>{head}</tr>{body}</table>{''.join(sections)}</body></html>\n")


def write_report(run_dirs: list[Path], output: Path, overwrite: bool = False) -> Report:
    """Build the report and write it to output (a new directory unless overwrite)."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise ConfigError(f"report directory {output} already exists and is not empty",
                          hint="choose a new --output, or pass --overwrite")
    report = build_report(run_dirs)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for name, figures in report.figures.items():
            for stem, figure in figures.items():
                path = staging / _slug(name) / f"{stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                figure.savefig(path, dpi=100)
        (staging / INDEX).write_text(_html(report))
        (staging / TABLE).write_text(markdown_table(report.runs, report.names)
                                     + markdown_load_table(report.runs, report.names))
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.output = output
    report.files = sorted(p for p in output.rglob("*") if p.is_file())
    return report
