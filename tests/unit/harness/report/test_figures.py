"""Report figures and tables from real run directories (harness/report/).

The run directories come from real `harness.runner.run` calls with real LoadGen and the fake backend
(which stands in for a model), so samples.jsonl and the detail log are the real formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from harness import runner
from harness.config import load_config
from harness.errors import ConfigError
from harness.report.build import build_report, write_report
from harness.report.data import load_run

FAKE = ["backend.kind=fake", "backend.output_tokens=40"]


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    wanted = {
        "offline": [*FAKE],
        "server": [*FAKE, "scenario=Server", "loadgen.target_qps=50", "backend.first_token_delay_ms=3",
                   "backend.delay_ms=2", "distributed.replicas=2"],
    }
    for name, overrides in wanted.items():
        outcome = runner.run(load_config(None, [*overrides, f"output_dir={root / name}"]), progress=False)
        assert outcome is not None and outcome.manifest.status.value == "completed"
    return {name: root / name for name in wanted}


def _samples(run_dir: Path) -> list[dict[str, int]]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_server_run_gets_all_five_figures_and_offline_no_latency_cdfs(run_dirs: dict[str, Path]) -> None:
    report = build_report([run_dirs["offline"], run_dirs["server"]])
    assert sorted(report.figures["offline"]) == ["output_lengths", "replica_load", "throughput"]
    assert sorted(report.figures["server"]) == ["output_lengths", "replica_load", "throughput", "tpot_cdf",
                                                "ttft_cdf"]


def test_ttft_cdf_shows_every_sample_and_the_round_limit(run_dirs: dict[str, Path]) -> None:
    figure: Figure = build_report([run_dirs["server"]]).figures["server"]["ttft_cdf"]
    axes = figure.axes[0]
    assert axes.get_title() == "TTFT CDF: server"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("TTFT (ms)", "fraction of samples")
    samples = _samples(run_dirs["server"])
    ttfts = sorted((s["first_token_ns"] - s["issued_ns"]) / 1e6 for s in samples)
    cdf = axes.lines[0]
    assert list(cdf.get_xdata()) == pytest.approx(ttfts)
    assert list(cdf.get_ydata())[-1] == pytest.approx(1.0)
    limit = [line for line in axes.lines if "limit" in str(line.get_label())]
    assert [line.get_xdata()[0] for line in limit] == [2000.0]
    assert "v6.1 Server limit" in str(limit[0].get_label())


def test_tpot_cdf_uses_tokens_after_the_first(run_dirs: dict[str, Path]) -> None:
    axes = build_report([run_dirs["server"]]).figures["server"]["tpot_cdf"].axes[0]
    samples = _samples(run_dirs["server"])
    tpots = sorted((s["completed_ns"] - s["first_token_ns"]) / (s["n_tokens"] - 1) / 1e6 for s in samples)
    assert list(axes.lines[0].get_xdata()) == pytest.approx(tpots)
    assert [line.get_xdata()[0] for line in axes.lines if "limit" in str(line.get_label())] == [200.0]


def test_throughput_over_time_accounts_for_every_generated_token(run_dirs: dict[str, Path]) -> None:
    axes = build_report([run_dirs["offline"]]).figures["offline"]["throughput"].axes[0]
    assert axes.get_title() == "Throughput over time: offline"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("time since first query (s)", "output tokens/s")
    stairs = axes.patches[0]
    rates, edges = stairs.get_data().values, stairs.get_data().edges  # type: ignore[attr-defined]
    total = sum(rate * (edges[i + 1] - edges[i]) for i, rate in enumerate(rates))
    assert total == pytest.approx(sum(s["n_tokens"] for s in _samples(run_dirs["offline"])))


def test_output_lengths_are_drawn_against_the_reference_lengths(run_dirs: dict[str, Path]) -> None:
    axes = build_report([run_dirs["offline"]]).figures["offline"]["output_lengths"].axes[0]
    samples = _samples(run_dirs["offline"])
    legend = axes.get_legend()
    assert legend is not None
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels[0] == "outputs (mean 40.0)" and labels[1].startswith("references (mean")
    outputs, references = ([patch.get_height() for patch in container] for container in axes.containers)
    assert sum(outputs) == len(samples)
    assert sum(references) == load_run(run_dirs["offline"]).manifest.sample_count
    assert axes.get_xlabel() == "tokens per sample"


def test_per_replica_load_counts_the_samples_each_replica_completed(run_dirs: dict[str, Path]) -> None:
    axes = build_report([run_dirs["server"]]).figures["server"]["replica_load"].axes[0]
    samples = _samples(run_dirs["server"])
    heights = [patch.get_height() for patch in axes.patches]
    assert heights == [sum(1 for s in samples if s["replica"] == r) for r in (0, 1)]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["local 0", "local 1"]


def test_write_report_writes_pngs_html_and_a_markdown_row_per_run(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "report"
    report = write_report([run_dirs["offline"], run_dirs["server"]], output)
    pngs = sorted(str(p.relative_to(output)) for p in output.rglob("*.png"))
    assert len(pngs) == 8 and all((output / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    html = (output / "index.html").read_text()
    assert all(f'src="{p}"' in html for p in pngs)
    rows = (output / "runs.md").read_text().splitlines()
    assert rows[0].startswith("| run | scenario | mode | validity | tokens/s | TTFT p99 (ms)")
    server = load_run(run_dirs["server"]).manifest.result
    assert rows[3].startswith(f"| server | Server | performance | {server.result_validity} |")
    assert f"{(server.first_token_p99_ns or 0) / 1e6:,.1f}" in rows[3]
    assert report.files and not list(tmp_path.glob(".report.*"))
    with pytest.raises(ConfigError, match="already exists"):
        write_report([run_dirs["offline"]], output)


def test_an_endpoint_run_records_per_endpoint_load_and_the_report_shows_it(tmp_path: Path) -> None:
    """A real runner + LoadGen Server run through the endpoint backend against two stand-in servers."""
    from tests.unit.harness.backends.endpoint.standin import StandIn

    with StandIn(delay_s=0.002) as first, StandIn(delay_s=0.002) as second:
        overrides = ["backend.kind=endpoint", f"backend.urls=[{first.url},{second.url}]", "backend.concurrency=2",
                     "scenario=Server", "loadgen.target_qps=40", "dataset.max_samples=24",
                     "generation.max_new_tokens=8", f"output_dir={tmp_path / 'run'}"]
        outcome = runner.run(load_config(None, overrides), progress=False)
    assert outcome is not None and outcome.manifest.status.value == "completed", outcome.manifest.error
    details = outcome.manifest.details
    load = details["load"]
    assert [row["name"] for row in load] == [first.url, second.url]
    assert all(row["version"] == "standin-0.32" and row["errors"] == 0 and row["requests"] > 0 for row in load)
    issued = sum(row["requests"] for row in load)
    assert issued == first.completions + second.completions - 2  # every request but the two warm-ups
    assert sum(row["tokens"] for row in load) == 8 * issued
    assert details["endpoint"] == {"flavour": "vllm", "model": "standin", "stream": True, "retokenize": False}
    assert outcome.manifest.versions[f"vllm@{first.url}"] == "standin-0.32"

    report = write_report([tmp_path / "run"], tmp_path / "report")
    axes = report.figures["run"]["endpoint_load"].axes[0]
    served = [patch.get_height() for patch in axes.patches][:2]
    assert served == [row["requests"] for row in load]
    assert [t.get_text() for t in axes.get_xticklabels()] == [first.url, second.url]
    markdown = (tmp_path / "report" / "runs.md").read_text()
    assert "## Per-endpoint load" in markdown
    assert f"| run | {first.url} | standin-0.32 | {load[0]['requests']:,} | 0 | {load[0]['tokens']:,} |" in markdown
    assert first.url in (tmp_path / "report" / "index.html").read_text()
