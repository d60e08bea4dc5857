"""matplotlib figures of one run or one sweep (Agg canvas, no pyplot global state); tests read the Figure objects."""

from __future__ import annotations

import math
from collections import Counter

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.report.data import RunData
from harness.report.sweep import Sweep

_SIZE = (7.0, 4.0)


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=_SIZE, layout="constrained")
    return figure, figure.add_subplot()


def throughput_figure(run: RunData, bins: int = 30) -> Figure | None:
    """Output tokens/s over the run, from completion times in samples.jsonl."""
    done = [t for t in run.timings if t.completed_ns is not None]
    if not done:
        return None
    start = min(t.issued_ns for t in run.timings)
    end = max(t.completed_ns for t in done if t.completed_ns is not None)
    span_s = max((end - start) / 1e9, 1e-6)
    count = max(1, min(bins, len(done)))
    width = span_s / count
    tokens = [0.0] * count
    for timing in done:
        assert timing.completed_ns is not None
        slot = min(int((timing.completed_ns - start) / 1e9 / width), count - 1)
        tokens[slot] += timing.n_tokens
    figure, axes = _figure()
    edges = [i * width for i in range(count + 1)]
    axes.stairs([t / width for t in tokens], edges, fill=True, alpha=0.6, label="completed tokens/s")
    overall = sum(t.n_tokens for t in done) / span_s
    axes.axhline(overall, color="black", linestyle="--", label=f"mean {overall:,.1f} tokens/s")
    _labels(axes, f"Throughput over time: {run.name}", "time since first query (s)", "output tokens/s")
    return figure


def latency_cdf_figure(run: RunData, metric: str) -> Figure | None:
    """CDF of TTFT or TPOT (ms) with the round's p99 limit and LoadGen's p99; Server/Interactive only."""
    limits = run.limits_ms
    if limits is None:
        return None
    values = sorted(v for v in ((t.ttft_ms if metric == "ttft" else t.tpot_ms) for t in run.timings)
                    if v is not None)
    if not values:
        return None
    limit = limits[0] if metric == "ttft" else limits[1]
    key = ("result_first_token_99.00_percentile_latency_ns" if metric == "ttft"
           else "result_time_per_output_token_99.00_percentile_ns")
    figure, axes = _figure()
    fractions = [(i + 1) / len(values) for i in range(len(values))]
    axes.step(values, fractions, where="post", label=f"{len(values)} samples")
    axes.axvline(limit, color="red", label=f"{run.manifest.round} {run.scenario} limit: p99 < {limit:g} ms")
    axes.axhline(0.99, color="grey", linestyle=":", label="p99")
    loadgen_p99 = run.detail.get(key)
    if isinstance(loadgen_p99, (int, float)):
        axes.axvline(loadgen_p99 / 1e6, color="black", linestyle="--",
                     label=f"LoadGen p99 {loadgen_p99 / 1e6:,.1f} ms")
    axes.set_ylim(0, 1.02)
    name = "TTFT" if metric == "ttft" else "TPOT"
    _labels(axes, f"{name} CDF: {run.name}", f"{name} (ms)", "fraction of samples")
    return figure


def output_length_figure(run: RunData, reference: list[int] | None, note: str = "") -> Figure | None:
    """Histogram of generated tokens per sample against the reference answers' lengths."""
    lengths = [t.n_tokens for t in run.timings if t.completed_ns is not None]
    if not lengths:
        return None
    figure, axes = _figure()
    everything = lengths + (reference or [])
    low, high = min(everything), max(everything)
    step = max(1, math.ceil((high - low + 1) / 30))
    bins = list(range(low, high + step + 1, step))  # the last edge lies above the longest sample
    axes.hist(lengths, bins=bins, alpha=0.6, label=f"outputs (mean {sum(lengths) / len(lengths):.1f})")
    if reference:
        axes.hist(reference, bins=bins, alpha=0.5,
                  label=f"references (mean {sum(reference) / len(reference):.1f})")
    mean = run.reference_tokens_per_sample
    if mean is not None and 1.5 * high >= mean:  # not when it would squash a small model's lengths
        axes.axvline(mean, color="black", linestyle="--", label=f"{run.manifest.benchmark} reference mean {mean}")
    if note and not reference:
        axes.text(0.01, 0.98, note, transform=axes.transAxes, va="top", fontsize=7)
    _labels(axes, f"Output length: {run.name}", "tokens per sample", "samples")
    return figure


def replica_load_figure(run: RunData) -> Figure | None:
    """Samples completed per backend replica (samples.jsonl `replica`)."""
    done = [t for t in run.timings if t.completed_ns is not None]
    if not done:
        return None
    counts = Counter(t.replica for t in done)
    names = (run.manifest.details.get("replicas") or {}).get("names") or []
    keys = sorted(counts, key=lambda k: (k is None, k if k is not None else 0))
    labels = [("single backend" if k is None else (names[k] if k < len(names) else f"replica {k}")) for k in keys]
    figure, axes = _figure()
    axes.bar(labels, [counts[k] for k in keys])
    _labels(axes, f"Per-replica load: {run.name}", "replica", "samples completed")
    return figure


def endpoint_load_figure(run: RunData) -> Figure | None:
    """Requests (and failed ones) and output tokens per serving unit (manifest details.load: one bar per URL)."""
    load = run.load
    if not load:
        return None
    figure, axes = _figure()
    labels = [unit.name for unit in load]
    axes.bar(labels, [unit.requests - unit.errors for unit in load], label="requests served")
    axes.bar(labels, [unit.errors for unit in load], bottom=[unit.requests - unit.errors for unit in load],
             color="red", label="requests failed")
    for index, unit in enumerate(load):
        axes.annotate(f"{unit.tokens:,} tokens", (index, unit.requests), ha="center", va="bottom", fontsize=8)
    axes.tick_params(axis="x", labelrotation=15, labelsize=8)
    _labels(axes, f"Per-endpoint load: {run.name}", "endpoint", "requests")
    return figure


def _labels(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)


def run_figures(run: RunData, reference: list[int] | None, note: str = "") -> dict[str, Figure]:
    """Every figure that applies to a run, by file stem."""
    candidates = {
        "throughput": throughput_figure(run),
        "ttft_cdf": latency_cdf_figure(run, "ttft"),
        "tpot_cdf": latency_cdf_figure(run, "tpot"),
        "output_lengths": output_length_figure(run, reference, note),
        "replica_load": replica_load_figure(run),
        "endpoint_load": endpoint_load_figure(run),
    }
    return {name: figure for name, figure in candidates.items() if figure is not None}


def pareto_figure(sweep: Sweep) -> Figure | None:
    """A sweep's levels: system output tokens/s against tokens/s per user, the Pareto front joined and marked,
    each point labelled with its concurrency; beside it TTFT p90 by concurrency. None without a plotted level."""
    levels = sweep.plotted
    if not levels:
        return None
    figure = Figure(figsize=(11.0, 4.0), layout="constrained")
    pareto, ttft = figure.subplots(1, 2, width_ratios=[3, 2])
    xs = [float(level.tokens_per_s_per_user or 0.0) for level in levels]
    ys = [float(level.system_tokens_per_s or 0.0) for level in levels]
    pareto.scatter(xs, ys, color="grey", zorder=2, label="concurrency levels")
    front = sweep.front()
    pareto.plot([level.tokens_per_s_per_user for level in front], [level.system_tokens_per_s for level in front],
                color="tab:red", marker="o", markersize=9, markerfacecolor="none", zorder=3,
                label=f"Pareto front ({len(front)} of {len(levels)})")
    for level, x, y in zip(levels, xs, ys, strict=True):
        pareto.annotate(f"c={level.concurrency}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    pareto.margins(0.12)  # room for the labels at the edges
    _labels(pareto, f"Throughput vs interactivity: {sweep.name}", "tokens/s per user (1000 / TPOT p90 ms)",
            "system output tokens/s")
    concurrencies = [level.concurrency for level in levels]
    ttft.plot(concurrencies, [level.ttft_ms.get("p90") for level in levels], marker="o", label="TTFT p90")
    if len(concurrencies) > 1 and max(concurrencies) >= 4 * min(concurrencies):
        ttft.set_xscale("log", base=2)
    ttft.set_xticks(concurrencies, [str(c) for c in concurrencies])
    _labels(ttft, "TTFT p90 by concurrency", "concurrency (requests in flight per URL)", "TTFT p90 (ms)")
    return figure
