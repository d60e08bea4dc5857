"""The measurements README: a run's deviations (here the endpoint backend's retokenize opt-in) are printed."""

from __future__ import annotations

from pathlib import Path

from harness import runner
from harness.config import load_config
from submission.measurements import derive_info_all, render_readme, run_config
from submission.provenance import run_facts
from submission.system import load_system
from tests.conftest import REPO
from tests.unit.harness.backends.endpoint.standin import StandIn


def test_a_retokenized_endpoint_run_records_the_deviation_in_manifest_and_measurements_readme(tmp_path: Path) -> None:
    with StandIn() as server:  # answers text as well as ids; the generic flavour reads only the text
        overrides = ["backend.kind=endpoint", f"backend.urls={server.url}", "backend.flavour=generic",
                     "backend.retokenize=true", "dataset.max_samples=4", "generation.max_new_tokens=8",
                     f"output_dir={tmp_path / 'run'}"]
        outcome = runner.run(load_config(None, overrides), progress=False)
    assert outcome is not None and outcome.manifest.status.value == "completed", outcome.manifest.error
    retokenized = [d for d in outcome.manifest.deviations if d.startswith("backend.retokenize")]
    assert len(retokenized) == 1 and "generic server" in retokenized[0], outcome.manifest.deviations
    system = load_system(REPO / "systems" / "2xH100-SXM-80GBx8_RoCE_TRT.json")
    facts = [run_facts("performance", outcome.run_dir, outcome.manifest, run_config(outcome.run_dir))]
    readme = render_readme([("performance", outcome.manifest)], system, "v4.0", ([], []), facts,
                           derive_info_all(facts, {}))
    assert f"- {retokenized[0]}" in readme.splitlines()


def test_exact_id_flavours_record_no_retokenize_deviation() -> None:
    config = load_config(None, ["backend.kind=endpoint", "backend.urls=http://127.0.0.1:9"])
    assert not [d for d in config.deviations() if "retokenize" in d]
