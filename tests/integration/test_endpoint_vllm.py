"""The endpoint backend against REAL vLLM servers on the converted SmolLM2 checkpoint: ids equal the hf backend's;
each server's prefix-caching setting is recorded as it reports it, and provenance matches a system described as vLLM."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import BackendReport
from harness.backends.endpoint.factory import create
from harness.backends.endpoint.options import EndpointOptions
from harness.checkpoint import converted_checkpoint
from tests.integration import runs
from tests.integration.greedy import hf_greedy, load_float32, smoke_prompts
from tests.integration.runs import REPO
from tests.integration.vllm_server import VLLM_PYTHON, VllmServer, _free_port
from tests.unit.harness.backends.endpoint.support import RecordingSink, Setup, greedy_spec, requests_for

pytestmark = [pytest.mark.vllm, pytest.mark.model,
              pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is absent: run "
                                                                  "./scripts/install-vllm.sh")]
MAX_NEW = 24
NAME = "smollm2"


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    return smoke_prompts(3)


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return converted_checkpoint()


@pytest.fixture(scope="module")
def reference(checkpoint: Path, prompts: list[list[int]]) -> list[list[int]]:
    """The hf backend's decoding: transformers float32, greedy, on the same checkpoint."""
    return hf_greedy(load_float32(checkpoint), prompts, max_new=MAX_NEW)


@pytest.fixture(scope="module")
def servers(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[VllmServer]]:
    logs = tmp_path_factory.mktemp("vllm")
    started = [VllmServer(checkpoint, NAME, logs / f"server{i}.log") for i in range(2)]  # start together
    try:
        yield started
    finally:
        for server in started:
            server.stop()


class NoPrefixCachingServer(VllmServer):
    """The same server as VllmServer's, started with --no-enable-prefix-caching (as the closed division needs)."""

    def __init__(self, checkpoint: Path, name: str, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint),
                   "--served-model-name", name, "--host", "127.0.0.1", "--port", str(self.port), "--enforce-eager",
                   "--dtype", "float32", "--max-model-len", "2048", "--max-num-seqs", "16",
                   "--no-enable-prefix-caching"]
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)


@pytest.fixture(scope="module")
def uncached(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    server = NoPrefixCachingServer(checkpoint, NAME, tmp_path_factory.mktemp("vllm-uncached") / "server.log")
    try:
        yield server
    finally:
        server.stop()


def run(urls: list[str], prompts: list[list[int]], streams: bool,
        workers: int | str = "auto") -> tuple[RecordingSink, BackendReport]:
    backend = create(EndpointOptions(urls=urls, ready_timeout_s=300, read_timeout_s=120, client_workers=workers),
                     Setup(sampling=greedy_spec(MAX_NEW), streams_first_token=streams))
    sink = RecordingSink()
    try:
        info = backend.start(sink)
        assert info.versions and all(v not in ("", "unknown") for v in info.versions.values())
        backend.submit(requests_for(prompts, want_first=streams))
        sink.wait(len(prompts), timeout_s=180)
        return sink, backend.report()
    finally:
        backend.stop()


@pytest.mark.parametrize("streams", [False, True])
def test_vllm_ids_equal_the_hf_backends_greedy_ids(servers: list[VllmServer], prompts: list[list[int]],
                                                  reference: list[list[int]], streams: bool) -> None:
    sink, report = run([servers[0].url], prompts, streams)
    assert sink.failed == {}, {k: str(v) for k, v in sink.failed.items()}
    assert [sink.completed[i] for i in range(len(prompts))] == reference, servers[0].tail()
    assert report.sections["endpoint"]["model"] == NAME and report.load[0].tokens == sum(map(len, reference))
    if streams:
        assert {i: [t for t, _ in f] for i, f in sink.firsts.items()} == {i: [r[0]] for i, r in enumerate(reference)}


def test_two_servers_through_worker_processes_give_the_same_ids_as_one_through_the_in_process_client(
        servers: list[VllmServer], prompts: list[list[int]], reference: list[list[int]]) -> None:
    doubled = prompts * 2
    one, _ = run([servers[0].url], doubled, streams=True, workers=0)
    two, report = run([s.url for s in servers], doubled, streams=True, workers=2)
    for sink in (one, two):
        assert sink.failed == {}, {k: str(v) for k, v in sink.failed.items()}
    assert [two.completed[i] for i in range(len(doubled))] == [one.completed[i] for i in range(len(doubled))]
    assert [one.completed[i] for i in range(len(doubled))] == reference * 2
    assert {i: [t for t, _ in f] for i, f in two.firsts.items()} == {i: [r[0]] for i, r in enumerate(reference * 2)}
    assert all(unit.requests > 0 for unit in report.load), report


@pytest.mark.parametrize(("which", "state"), [("default", "on"), ("no-enable-prefix-caching", "off")])
def test_each_servers_prefix_caching_is_recorded_as_it_reports_it(servers: list[VllmServer], uncached: VllmServer,
                                                                  prompts: list[list[int]], which: str,
                                                                  state: str) -> None:
    """vLLM 0.32 serves with prefix caching on by default; --no-enable-prefix-caching turns it off (/metrics)."""
    server = servers[0] if which == "default" else uncached
    _, report = run([server.url], prompts[:1], streams=False)
    [row] = report.sections["engines"]
    assert (row["url"], row["engine"], row["version"], row["model"]) == (server.url, "vllm", "0.32.0", NAME)
    assert row["model_root"] == str(converted_checkpoint()) and row["prefix_caching"] == state, row
    assert row["settings"]["enable_prefix_caching"] == str(state == "on")


# ---- end to end: `harness run` / `compliance run` / `submission` against the same two real servers ----

SAMPLES = 8
SHORT = ["--set", "backend.kind=endpoint", "--set", f"dataset.max_samples={SAMPLES}", "--set",
         "generation.max_new_tokens=16", "--set", "loadgen.target_qps=4", "--set", "backend.ready_timeout_s=300",
         "--scenario", "Server", "--no-progress"]
ACC_PATTERN = {  # inference@v4.0 submission_checker.py ACC_PATTERN for llama2-70b
    "rouge1": r".*'rouge1':\s([\d.]+).*", "rouge2": r".*'rouge2':\s([\d.]+).*",
    "rougeL": r".*'rougeL':\s([\d.]+).*", "tokens_per_sample": r".*'tokens_per_sample':\s([\d.]+).*",
}


def _urls(servers: list[VllmServer], count: int) -> list[str]:
    return ["--set", f"backend.urls=[{','.join(s.url for s in servers[:count])}]"]


@pytest.fixture(scope="module")
def cli_runs(servers: list[VllmServer], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """accuracy (1 URL, the client in process), accuracy (2 URLs, data parallel, worker processes: the default),
    performance (1 URL), TEST06 (1 URL), all Server.

    The performance run uses one server: two vLLM CPU servers busy at once on this 2-core machine delay some
    first tokens by ~2 s (measured: 80-150 ms with one), past the Server TTFT limit the check applies.
    """
    root = tmp_path_factory.mktemp("endpoint-runs")
    plan = {"accuracy": ("harness", ["run", "--mode", "accuracy", "--set", "backend.client_workers=0"], 1),
            "accuracy-dp": ("harness", ["run", "--mode", "accuracy"], 2),
            "performance": ("harness", ["run", "--mode", "performance"], 1),
            "test06": ("compliance", ["run", "TEST06"], 1)}
    found = {}
    for name, (tool, args, urls) in plan.items():
        out = root / name
        argv = [sys.executable, "-m", tool, *args, *SHORT, *_urls(servers, urls), "--output-dir", str(out)]
        process = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600,
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
        # exit 1 only for a performance run LoadGen judges INVALID: 8 queries can never meet Server's p99
        # early-stopping bound (it needs hundreds), whatever the latencies
        allowed = (0, 1) if name == "performance" else (0,)
        assert process.returncode in allowed, f"{name}: {process.stderr[-3000:]}\n{servers[0].tail()}"
        found[name] = out
    return found


def test_accuracy_run_writes_an_accuracy_txt_the_checker_parses(cli_runs: dict[str, Path]) -> None:
    text = (cli_runs["accuracy"] / "accuracy.txt").read_text()
    scores = {key: float(re.match(pattern, text, re.DOTALL).group(1))  # type: ignore[union-attr]
              for key, pattern in ACC_PATTERN.items()}
    assert scores["rouge1"] > 0 and 1 < scores["tokens_per_sample"] <= 16, scores
    manifest = runs.manifest(cli_runs["accuracy"])
    assert manifest["status"] == "completed" and manifest["result"]["loadgen_errors"] == 0
    assert manifest["backend_name"].startswith("endpoint (vllm, smollm2, 1 URL")
    [load] = manifest["details"]["load"]
    assert load["requests"] == SAMPLES and load["errors"] == 0 and load["version"] == "0.32.0"
    assert load["tokens"] == sum(sample["n_tokens"] for sample in _samples(cli_runs["accuracy"]))


def test_two_servers_in_data_parallel_give_the_same_ids_per_sample_as_one(cli_runs: dict[str, Path]) -> None:
    """Two servers through the worker processes (the default) vs one server through the in-process client."""
    one, two = (runs.accuracy_tokens(cli_runs[name]) for name in ("accuracy", "accuracy-dp"))
    assert sorted(one) == list(range(SAMPLES)) and one == two
    notes = {name: " ".join(runs.manifest(cli_runs[name])["details"].get("backend_notes", []))
             for name in ("accuracy", "accuracy-dp")}
    assert "worker process" not in notes["accuracy"], notes
    assert re.search(r"HTTP and SSE in \d+ worker process", notes["accuracy-dp"]), notes
    load = runs.manifest(cli_runs["accuracy-dp"])["details"]["load"]
    assert len(load) == 2 and all(unit["requests"] > 0 for unit in load), load
    assert sum(unit["requests"] for unit in load) == SAMPLES


def test_server_performance_run_has_first_tokens_and_no_loadgen_errors(cli_runs: dict[str, Path]) -> None:
    manifest = runs.manifest(cli_runs["performance"])
    result = manifest["result"]
    assert manifest["status"] == "completed" and result["loadgen_errors"] == 0
    assert runs.detail(cli_runs["performance"])["__errors__"] == []
    assert result["result_validity"] == "VALID" or result["early_stopping_met"] is False, result
    samples = _samples(cli_runs["performance"])
    assert samples and all(s["first_token_ns"] is not None and s["issued_ns"] < s["first_token_ns"]
                           <= s["completed_ns"] for s in samples)
    assert manifest["result"]["result_first_token_99.00_percentile_latency_ns"] > 0


def test_test06_passes(cli_runs: dict[str, Path]) -> None:
    verdict = (cli_runs["test06"] / "TEST06" / "verify_accuracy.txt").read_text().splitlines()
    assert verdict == ["First token check pass: True", "EOS check pass: True", "Sample length check pass: True",
                       "TEST06 verification complete"]


def test_submission_package_and_check_accept_the_runs(cli_runs: dict[str, Path], tmp_path: Path) -> None:
    from submission.cli import main
    from tests.unit.submission import trees

    chosen = {("Server", mode): cli_runs[mode] for mode in ("performance", "accuracy")}
    out = tmp_path / "sub"
    with pytest.raises(SystemExit) as packaged:  # unsubmittable only for what truly is: 135M model, short set
        main([*trees.package_args(chosen, out, trees.installed_round()), str(cli_runs["test06"])])
    assert packaged.value.code == 0
    readme = next(p for p in out.rglob("README.md") if "## Performance run" in p.read_text()).read_text()
    assert "backend: endpoint (vllm, smollm2, 1 URL)" in readme
    assert "vllm@http://127.0.0.1:" in readme and "0.32.0" in readme
    with pytest.raises(SystemExit) as short:
        main(["check", str(out), "--round", trees.installed_round(), "--expected", "1"])
    assert short.value.code == 1  # the short run is named (performance-sample-count)
    # stands in for the 24,576-sample, 600 s runs (see its docstring)
    trees.lift_to_full_length(out, trees.installed_round())
    with pytest.raises(SystemExit) as checked:
        main(["check", str(out), "--round", trees.installed_round(), "--expected", "1"])
    assert checked.value.code == 0


CPU_VLLM = {"accelerators_per_node": "0", "accelerator_model_name": "N/A", "accelerator_memory_capacity": "N/A",
            "accelerator_memory_configuration": "N/A", "accelerator_host_interconnect": "N/A",
            "accelerator_interconnect": "N/A", "number_of_nodes": 1, "framework": "vLLM 0.32.0 (CPU)"}


def test_provenance_matches_a_system_described_as_vllm_and_names_the_servers_prefix_caching(
        cli_runs: dict[str, Path], tmp_path: Path) -> None:
    """No contradiction when the system description says what served the tokens (vLLM 0.32.0 on a CPU-only
    system); the servers ran vLLM's default prefix caching, which caching_problems names with the fix."""
    import yaml

    from harness.artifacts import Manifest
    from submission.provenance import caching_problems, contradictions, run_facts
    from submission.system import load_system
    from tests.unit.submission import trees

    system_file = tmp_path / "cpu_vllm.json"
    system_file.write_text(json.dumps(json.loads(trees.SYSTEM.read_text()) | CPU_VLLM))
    facts = []
    for role in ("performance", "accuracy", "test06"):
        run_dir = cli_runs[role]
        manifest = Manifest.model_validate_json((run_dir / "manifest.json").read_text())
        facts.append(run_facts(role, run_dir, manifest, yaml.safe_load((run_dir / "config.yaml").read_text())))
    assert contradictions(facts, load_system(system_file), str(system_file)) == []
    assert {fact.served_engine for fact in facts} == {"vllm 0.32.0"}
    problems = caching_problems(facts)
    assert len(problems) == 3 and all("vLLM --enable-prefix-caching is on at http://127.0.0.1:" in line
                                      and line.endswith("start it with --no-enable-prefix-caching")
                                      for line in problems), problems


def _samples(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines() if line]


def test_closed_packager_refuses_the_servers_prefix_caching_and_open_names_only_the_short_run(
        cli_runs: dict[str, Path], tmp_path: Path) -> None:
    """vLLM's default prefix caching is a closed refusal naming the setting, the URL and the fix (first in each
    README); in open the same runs, on a system described as what served them, are refused only for being short."""
    from harness.errors import InputError
    from submission.package import PackageRequest, package_submission
    from tests.unit.submission import trees

    chosen = [cli_runs[name] for name in ("performance", "accuracy", "test06")]
    url = runs.manifest(cli_runs["performance"])["details"]["engines"][0]["url"]
    results = {}
    for division in ("open", "closed"):
        system_file = tmp_path / division / "systems" / "cpu_vllm.json"
        system_file.parent.mkdir(parents=True)
        system_file.write_text(json.dumps(json.loads(trees.SYSTEM.read_text()) | CPU_VLLM | {"division": division}))
        for allow in (False, True):
            request = PackageRequest(trees.installed_round(), "MyOrg", system_file, chosen,
                                     tmp_path / division / "tree", allow_unsubmittable=allow, division=division)
            if not allow:  # a provenance contradiction would be named first
                with pytest.raises(InputError, match="^not submittable: "):
                    package_submission(request)
            else:
                results[division] = package_submission(request)
    short = [f"{path}: {reason['text']}" for path in chosen[:2]
             for reason in runs.manifest(path)["not_submittable_reasons"] if reason["code"] == "short-run"]
    invalid = f"{cli_runs['performance']}: LoadGen result is INVALID (result_validity INVALID): an INVALID result"
    assert sorted(results["open"].unsubmittable) == sorted([*short, invalid]), results["open"].unsubmittable
    assert runs.detail(cli_runs["performance"])["early_stopping_met"] is False  # INVALID: too few queries only
    caching = [r for r in results["closed"].unsubmittable if r.startswith("closed forbids cross-query caching: ")]
    assert len(caching) == 3 and all(f"vLLM --enable-prefix-caching is on at {url}; start it with "
                                     "--no-enable-prefix-caching" in line for line in caching), caching
    readme = next(p for p in (tmp_path / "closed/tree").rglob("README.md") if "## Hardware" in p.read_text())
    assert caching[0] in readme.read_text().split("## Hardware")[0]
