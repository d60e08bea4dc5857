"""serve* jobs on a REAL two-node Slurm cluster on this host: servers per replica, then the harness as their client.

The cluster is scripts/slurm-local.sh with SLURM_LOCAL_NODES=2 (two slurmd, node1 and node2, on this host).
What cannot run here is replaced by stand-ins on PATH (tests/integration/standins/bin): `srun` in front of
the real srun plays Pyxis (checks that the command's paths lie under the mounts), `trtllm-llmapi-launch`
and `trtllm-serve` record their argv, which is parsed against TensorRT-LLM 1.2.1's CLI definitions, and
serve the OpenAI completions API with token ids on 127.0.0.1. The client is the real harness (endpoint
backend, real LoadGen) on the smoke set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.config import RunConfig, load_config
from harness.model_files import embedded_model
from harness.slurm.render import render_job
from harness.slurm.submit import submit_pipeline, submit_stage
from tests.integration.standins.cli_flags import parse_serve
from tests.integration.test_slurm_local import DAEMONS, SCRIPT, _wait, free_port_block, start_cluster

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests" / "integration" / "standins" / "bin"
pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(any(__import__("shutil").which(d) is None for d in DAEMONS),
                                 reason="Slurm/munge are not installed (scripts/install-system.sh)")]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """node1 + node2, 10 CPUs each (a TP8 server's 8 ranks + the client fit on one node)."""
    state = tmp_path_factory.mktemp("slurm-2nodes")
    env = {**os.environ, "SLURM_LOCAL_PORT": str(free_port_block(3)), "SLURM_LOCAL_NODES": "2",  # ctld, node1, node2
           "SLURM_LOCAL_CPUS": "10"}
    conf = start_cluster(state, env)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield Path(conf)
    finally:  # no job may outlive the cluster: its slurmstepd would be orphaned
        subprocess.run(["scancel", "--me"], capture_output=True, timeout=60)
        deadline = time.monotonic() + 60
        while subprocess.run(["squeue", "-h"], capture_output=True, text=True, timeout=60).stdout.strip():
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        subprocess.run([SCRIPT, "stop", str(state)], env=env, capture_output=True, timeout=120)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-ins first on PATH, records under tmp_path/records, a model dir and tokenizer under the mount."""
    (tmp_path / "records").mkdir()
    models = tmp_path / "models"
    (models / "engine").mkdir(parents=True)
    (models / "tokenizer.gguf").symlink_to(embedded_model().display)
    monkeypatch.setenv("PATH", f"{STANDINS}:{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("STANDIN_RECORD_DIR", str(tmp_path / "records"))
    return tmp_path


def _config(root: Path, *overrides: str) -> RunConfig:
    return load_config(None, [
        f"model.path={root / 'models' / 'engine'}", f"model.tokenizer={root / 'models' / 'tokenizer.gguf'}",
        "backend.kind=trtllm", "dataset.max_samples=4", "generation.max_new_tokens=8",
        "slurm.gpus_per_node=8", "slurm.request_gpus=false", f"slurm.workdir={root}",
        f"slurm.python={sys.executable}", "slurm.container_image=/images/trtllm-1.2.1.sqsh",
        f"slurm.container_mounts=[{root}:{root}]", f"slurm.container_workdir={root}",
        f"output_dir={root / 'run'}", f"slurm.servers.port={free_port_block(8)}", "slurm.servers.bind_host=127.0.0.1",
        "slurm.servers.address=nodeaddr", "slurm.servers.ready_timeout_s=120", *overrides])


def _log(root: Path, stage: str) -> str:
    """The job's own log, <stage>-<job id>.out (not a server step's <stage>-<job id>-server<i>.out)."""
    (path,) = [p for p in (root / "jobs").glob(f"{stage}-*.out") if p.stem.removeprefix(f"{stage}-").isdigit()]
    return path.read_text(errors="replace")


def _served(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((root / "records").glob("trtllm-serve-*.json"))]


def _launches(root: Path) -> list[list[str]]:
    """Per server step: its ranks' records (rank=, ntasks=, pmix_rank=, node=)."""
    return [p.read_text().splitlines() for p in sorted((root / "records").glob("launch-*.txt"))]


def _stopped(root: Path) -> dict[int, int]:
    """Port -> completions served, for every stand-in server that was stopped by SIGTERM."""
    return {int(p.stem.rsplit("-", 1)[1]): json.loads(p.read_text())["completions"]
            for p in (root / "records").glob("trtllm-serve-*.stopped")}


def _urls(manifest: dict[str, Any]) -> list[str]:
    """The servers the client talked to (the endpoint backend records each one's version)."""
    return sorted(key.split("@", 1)[1] for key in manifest["versions"] if key.startswith("trtllm-serve@"))


def _run_serve(root: Path, config: RunConfig, stage: str = "serve") -> tuple[dict[str, Any], str]:
    job = render_job(stage, config, root / "jobs", source="test")
    for check in (["bash", "-n", str(job.script_path)], ["shellcheck", "--severity=style", str(job.script_path)]):
        done = subprocess.run(check, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    status = _wait(submit_stage(job).job_id, timeout_s=300)
    log = _log(root, stage)
    assert (status.state, status.exit_code) == ("COMPLETED", "0:0"), log
    return json.loads((root / "run" / "manifest.json").read_text()), log


def _check_serve_argv(record: dict[str, Any], tp: int, pp: int, root: Path) -> None:
    args = parse_serve(record["argv"])  # raises on a flag the 1.2.1 CLI does not define
    assert (args.tensor_parallel_size, args.pipeline_parallel_size) == (tp, pp)
    assert args.model == str(root / "models" / "engine")
    assert args.extra_llm_api_options.startswith(str(root / "jobs"))
    assert record["leaked_env"] == []  # the launcher hid the MPI/Slurm/UCX variables from the server process
    assert record["tllm_mpi_size"] == str(tp * pp)


def test_seed_layout_one_tp8_pp2_server_across_two_nodes(two_nodes: Path, site: Path) -> None:
    config = _config(site, "backend.tensor_parallel_size=8", "backend.pipeline_parallel_size=2", "slurm.nodes=2")
    manifest, log = _run_serve(site, config)
    assert manifest["status"] == "completed"
    (record,) = _served(site)
    _check_serve_argv(record, 8, 2, site)
    (ranks,) = _launches(site)
    assert sorted(line.split()[3] for line in ranks) == ["node=node1"] * 8 + ["node=node2"] * 8
    assert all("pmix_rank=none" not in line for line in ranks)  # srun --mpi=pmix reached every rank
    assert "servers stopped" in log
    port = record["args"]["port"]
    assert _urls(manifest) == [f"http://127.0.0.1:{port}"]
    assert _stopped(site)[port] >= 4  # the warm-up + the 4 samples, then SIGTERM stopped it


def test_two_tp8_servers_one_per_node_share_the_samples(two_nodes: Path, site: Path) -> None:
    config = _config(site, "backend.tensor_parallel_size=8", "distributed.replicas=2", "slurm.nodes=2")
    manifest, _ = _run_serve(site, config)
    served = _served(site)
    assert len(served) == 2
    for record in served:
        _check_serve_argv(record, 8, 1, site)
    nodes = [{line.split()[3] for line in ranks} for ranks in _launches(site)]
    assert sorted(map(sorted, nodes)) == [["node=node1"], ["node=node2"]]
    assert len(_urls(manifest)) == 2
    served_by = _stopped(site)
    assert len(served_by) == 2 and all(count >= 2 for count in served_by.values())  # warm-up + samples, each


def test_eight_tp1_servers_on_one_node(two_nodes: Path, site: Path) -> None:
    config = _config(site, "distributed.replicas=8", "slurm.nodes=1")
    manifest, _ = _run_serve(site, config)
    served = _served(site)
    assert len(served) == 8
    for record in served:
        _check_serve_argv(record, 1, 1, site)
    assert len({r["args"]["port"] for r in served}) == 8
    assert len(_urls(manifest)) == 8
    assert len(_stopped(site)) == 8
    pyxis = (site / "records" / "pyxis.txt").read_text().splitlines()
    assert len(pyxis) == 9 and all(f"mounts={site}:{site}" in line for line in pyxis)  # 8 servers + the client


def _manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "run" / "manifest.json").read_text())


def test_a_server_that_never_gets_ready_fails_the_job_and_holds_the_chain(
        two_nodes: Path, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server whose model load never ends (TensorRT-LLM #8961's hang): the client's bounded readiness wait
    fails the run, the job ends FAILED with the run's exit code, the server is stopped, the next stage never runs."""
    monkeypatch.setenv("STANDIN_SERVE_LOAD_S", "3600")
    config = _config(site, "backend.tensor_parallel_size=8", "slurm.nodes=1", "slurm.servers.ready_timeout_s=10")
    jobs = submit_pipeline(["serve", "serve_accuracy"], config, site / "jobs")
    first = _wait(jobs[0].job_id, timeout_s=300)
    held = _wait(jobs[1].job_id, until="DependencyNeverSatisfied")
    subprocess.run(["scancel", jobs[1].job_id], check=False)
    log = _log(site, "serve")
    assert (first.state, first.exit_code) == ("FAILED", "4:0"), log
    assert "not ready" in log and "servers stopped" in log, log
    manifest = _manifest(site)
    assert manifest["status"] == "failed" and "not ready" in manifest["error"], manifest
    assert (held.state, held.reason) == ("PENDING", "DependencyNeverSatisfied")
    assert [json.loads(p.read_text()) for p in (site / "records").glob("trtllm-serve-*.stopped")] == [
        {"completions": 0, "loaded": False}]  # SIGTERM ended the load


@pytest.mark.parametrize("cause", ["bad flag", "load fails"])
def test_a_server_that_dies_stops_the_client_and_fails_the_job(
        two_nodes: Path, site: Path, monkeypatch: pytest.MonkeyPatch, cause: str) -> None:
    """A server step that ends while the client waits for it (a flag its CLI refuses, at once; or a model load
    that fails after 8 s): the job sees the step end, stops the client with SIGTERM within the grace time, and
    ends FAILED; the chain holds. A client that had started marks its run, not leaving it 'running'."""
    args = "[--no_such_flag]" if cause == "bad flag" else "[]"
    if cause == "load fails":
        monkeypatch.setenv("STANDIN_SERVE_LOAD_S", "8")
        monkeypatch.setenv("STANDIN_SERVE_LOAD_FAILS", "1")
    config = _config(site, "backend.tensor_parallel_size=8", "slurm.nodes=1", "slurm.servers.ready_timeout_s=120",
                     f"slurm.servers.args={args}")
    jobs = submit_pipeline(["serve", "serve_accuracy"], config, site / "jobs")
    first = _wait(jobs[0].job_id, timeout_s=300)
    held = _wait(jobs[1].job_id, until="DependencyNeverSatisfied")
    subprocess.run(["scancel", jobs[1].job_id], check=False)
    log = _log(site, "serve")
    assert (first.state, first.exit_code) == ("FAILED", "4:0"), log
    assert "server 0 ended before the client finished" in log, log
    assert "killing it" not in log, log  # the client left on its SIGTERM, within the grace time
    assert (held.state, held.reason) == ("PENDING", "DependencyNeverSatisfied")
    server_log = next((site / "jobs").glob("serve-*-server0.out")).read_text()
    assert ("no_such_flag" if cause == "bad flag" else "model load failed") in server_log
    if cause == "load fails":  # the client was 8 s into its readiness wait
        manifest = _manifest(site)
        assert manifest["status"] in ("failed", "aborted") and "signal 15" in manifest["error"], manifest


def test_a_run_whose_launcher_exits_0_after_a_failure_fails_the_job(two_nodes: Path, site: Path) -> None:
    """trtllm-llmapi-launch exits with its leader's status: the harness fails (no tensorrt_llm here), and the job
    fails whatever the launcher's status, so that an afterok chain stops. The missing engine is found before a run
    directory exists (the same job can be resubmitted once the image has it), so the manifest check reports the
    manifest missing and the job ends with the step's status (srun's 143 when a rank's exit 3 ends the step)."""
    config = _config(site, "backend.tensor_parallel_size=2", "slurm.nodes=1", "slurm.ntasks_per_node=2")
    jobs = submit_pipeline(["run", "accuracy"], config, site / "jobs")
    first = _wait(jobs[0].job_id, timeout_s=300)
    held = _wait(jobs[1].job_id, until="DependencyNeverSatisfied")
    subprocess.run(["scancel", jobs[1].job_id], check=False)
    assert (held.state, held.reason) == ("PENDING", "DependencyNeverSatisfied")
    log = _log(site, "run")
    assert first.state == "FAILED" and first.exit_code in ("4:0", "3:0", "143:0"), log
    assert "needs the tensorrt_llm package" in log and "run directory" in log and "removed" in log, log
    assert "[run] " in log and ("is missing" in log or "not completed" in log), log
