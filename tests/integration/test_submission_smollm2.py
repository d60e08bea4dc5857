"""Package real embedded-default runs (SmolLM2-135M on the CPU, shortened) for several rounds and check them."""

from __future__ import annotations

from pathlib import Path

import pytest

from submission.cli import main
from submission.rules import check_tree
from tests.unit.submission import trees

# Slow: three real SmolLM2 runs; the packaging logic is covered with fake-backend runs in the default suite.
pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def smollm2_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    base = tmp_path_factory.mktemp("smollm2")
    found = {}
    for mode in ("performance", "accuracy"):
        out = base / f"Offline-{mode}"
        proc = trees.harness_run(out, "Offline", mode, "dataset.max_samples=2", "generation.max_new_tokens=16",
                                 fake=False)
        assert (out / "manifest.json").is_file(), proc.stderr[-2000:]
        assert (out / "mlperf_log_detail.txt").is_file(), proc.stderr[-2000:]
        found[("Offline", mode)] = out
    return found


@pytest.mark.parametrize("round_name", ["v4.0", "v5.1", "v6.0"])
def test_shortened_smollm2_runs_package_and_fail_check_for_their_length(
        smollm2_runs: dict[tuple[str, str], Path], tmp_path: Path, round_name: str) -> None:
    out = tmp_path / "sub"
    with pytest.raises(SystemExit) as exit_:
        main(trees.package_args(smollm2_runs, out, round_name))
    assert exit_.value.code == 0
    readme = next(p for p in out.rglob("README.md") if "## Performance run" in p.read_text()).read_text()
    report = check_tree(out, round_name, expected_results=1)
    failed = {c.name for c in report.failures}
    assert "performance-sample-count" in failed
    assert report.results == 0
    measurements = next(p for p in out.rglob("*.json") if p.name in ("measurements.json",
                                                                      f"{trees.SYSTEM.stem}_mlperf-llm-harness_Offline.json"))
    assert '"weight_data_types": "fp32"' in measurements.read_text()
    assert "NOT A VALID SUBMISSION" in readme
    assert "generation.max_new_tokens: 1024 -> 16" in readme
