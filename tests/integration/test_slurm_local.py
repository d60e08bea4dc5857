"""Real Slurm on this host: sbatch of rendered stages, srun --mpi=pmix ranks, afterok pipelines, job status.

The session fixture starts munged + slurmctld + slurmd through scripts/slurm-local.sh (state in a temporary
folder, private munge socket, free ports) and stops them at the end. Jobs are polled with scontrol/squeue
(not `sbatch --wait`, which polls slowly). Pyxis cannot run here: its flags are tested in test_render.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import app
from harness.config import RunConfig, build_config, load_config
from harness.console import run_cli
from harness.errors import RunError
from harness.slurm import stages
from harness.slurm.render import render_job
from harness.slurm.stages import StageCommand, StageOptions, TasksLayout
from harness.slurm.submit import JobStatus, job_status, submit_pipeline, submit_stage

REPO = Path(__file__).resolve().parents[2]
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "squeue")
pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(any(shutil.which(d) is None for d in DAEMONS),
                                 reason="Slurm/munge are not installed (scripts/install-system.sh)")]


def free_port_block(count: int) -> int:
    """A base port with `count` consecutive ports free on 127.0.0.1, below the kernel's ephemeral range (so that no
    outgoing connection of another test takes one between this probe and the daemon's bind)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, max(10001, low - count))
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError(f"no {count} consecutive free ports below {low}")


def start_cluster(state: Path, env: dict[str, str]) -> str:
    """scripts/slurm-local.sh start; on failure, stop what did start (no daemon outlives a failed fixture) and fail
    with the script's output. Returns the SLURM_CONF path."""
    started = subprocess.run([SCRIPT, "start", str(state)], env=env, capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        subprocess.run([SCRIPT, "stop", str(state)], env=env, capture_output=True, timeout=120)
        raise AssertionError(started.stderr)
    return started.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")


SCRIPT = str(REPO / "scripts" / "slurm-local.sh")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running single-node cluster; yields its SLURM_CONF (also exported to this process)."""
    state = tmp_path_factory.mktemp("slurm-state")
    script = SCRIPT
    env = {**os.environ, "SLURM_LOCAL_PORT": str(free_port_block(2))}  # slurmctld, then slurmd
    conf = start_cluster(state, env)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield Path(conf)
    finally:
        subprocess.run([script, "stop", str(state)], env=env, capture_output=True, timeout=120)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def test_starting_again_is_a_no_op_and_status_shows_the_daemons(slurm_cluster: Path) -> None:
    state = str(slurm_cluster.parent)
    pids = (slurm_cluster.parent / "slurmctld.pid").read_text()
    again = subprocess.run([SCRIPT, "start", state], capture_output=True, text=True, timeout=60)
    assert (again.returncode, again.stdout.strip()) == (0, f"export SLURM_CONF={slurm_cluster}")
    assert (slurm_cluster.parent / "slurmctld.pid").read_text() == pids
    status = subprocess.run([SCRIPT, "status", state], capture_output=True, text=True, timeout=60).stdout
    assert [line.split(":")[1].split()[0] for line in status.splitlines()[:3]] == ["running"] * 3
    assert status.splitlines()[3] == "node localhost: idle"


def _wait(job_id: str, timeout_s: float = 600, until: str | None = None) -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = job_status(job_id)
        if status.finished or (until is not None and status.reason == until):
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {status.state} after {timeout_s} s")


def _job_log(tmp_path: Path, stage: str) -> str:
    """The job's output file; ranks write to it concurrently, so multi-byte characters may be split."""
    return next((tmp_path / "jobs").glob(f"{stage}-*.out")).read_text(errors="replace")


def _config(tmp_path: Path, *overrides: str) -> RunConfig:
    return load_config(None, [f"slurm.workdir={REPO}", f"slurm.python={sys.executable}",
                              f"output_dir={tmp_path / 'run'}", *overrides])


def _manifest(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "manifest.json").read_text()))


def test_run_stage_under_sbatch_with_three_pmix_ranks_completes(slurm_cluster: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "backend.kind=fake", "slurm.ntasks_per_node=3")
    job = render_job("run", config, tmp_path / "jobs", source="test")
    submitted = submit_stage(job)
    status = _wait(submitted.job_id)
    log = _job_log(tmp_path, "run")
    assert (status.state, status.exit_code) == ("COMPLETED", "0:0"), log
    manifest = _manifest(tmp_path / "run")
    assert manifest["status"] == "completed"
    assert manifest["details"]["launch"]["world_size"] == 3
    assert manifest["environment"]["SLURM_JOB_ID"] == submitted.job_id
    replicas = {json.loads(line)["replica"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()}
    assert len(replicas) == 3
    assert f"job {submitted.job_id} on " in log


def _task_pid(job_id: str, procid: int) -> int:
    """The pid of the harness process that srun started as task `procid` of the job."""
    wanted = (f"SLURM_JOB_ID={job_id}".encode(), f"SLURM_PROCID={procid}".encode())
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if all(w in environ for w in wanted) and b"harness" in cmdline:
            return pid
    raise AssertionError(f"no task {procid} of job {job_id} found")


def test_a_killed_worker_rank_fails_the_job_and_the_run_quickly(slurm_cluster: Path, tmp_path: Path) -> None:
    """Acceptance of issue 6: a dead worker ends the run within 30 s, run dir marked failed (srun path)."""
    config = _config(tmp_path, "backend.kind=fake", "backend.delay_ms=120000", "slurm.ntasks_per_node=3")
    submitted = submit_stage(render_job("run", config, tmp_path / "jobs"))
    deadline = time.monotonic() + 300
    while not (tmp_path / "run" / "mlperf_log_detail.txt").exists():
        assert time.monotonic() < deadline, "LoadGen never started"
        time.sleep(0.5)
    os.kill(_task_pid(submitted.job_id, 2), signal.SIGKILL)
    killed_at = time.monotonic()
    status = _wait(submitted.job_id, timeout_s=120)
    ended_after = time.monotonic() - killed_at
    log = _job_log(tmp_path, "run")
    assert status.state == "FAILED", log
    assert ended_after < 30, log  # the limit for a dead worker, not a performance figure
    assert "localhost: task 2: Killed" in log  # srun names the rank (task) and host that died
    manifest = _manifest(tmp_path / "run")
    assert (manifest["status"], manifest["submittable"]) == ("failed", False)
    assert manifest["error"]


def test_preflight_stage_submitted_from_the_cli_measures_two_pmix_ranks(
        slurm_cluster: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # sbatch passes the environment on; the job runs in tmp_path
    code = run_cli(app, ["slurm", "submit", "preflight", "--job-dir", str(tmp_path / "jobs"),
                         "--set", "slurm.ntasks_per_node=2", "--set", f"slurm.workdir={tmp_path}",
                         "--set", f"slurm.python={sys.executable}", "--set", "preflight.mpi_message_bytes=65536"])
    assert code == 0
    job_id = re.search(r"preflight\s*│\s*(\d+)", capsys.readouterr().out)
    assert job_id is not None
    status = _wait(job_id.group(1), timeout_s=300)
    log = _job_log(tmp_path, "preflight")
    assert (status.state, status.exit_code) == ("COMPLETED", "0:0"), log
    report = json.loads((tmp_path / f"preflight-{job_id.group(1)}.json").read_text())
    assert report["world_size"] == 2
    assert [(p["rank_a"], p["rank_b"]) for p in report["mpi_pairs"]] == [(0, 1)]


def _probe_stage(code: str) -> stages.StageBuilder:
    def build(config: RunConfig, options: StageOptions) -> StageCommand:
        return StageCommand((sys.executable, "-c", code), "test probe", False, TasksLayout())
    return build


def test_pipeline_runs_stages_in_order_and_holds_back_after_a_failure(
        slurm_cluster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stages registered like the TensorRT-LLM ones; afterok must order them and stop after a failure."""
    monkeypatch.setattr(stages, "_REGISTRY", dict(stages._REGISTRY))
    marks = tmp_path / "marks.txt"
    append = f"import os, time; open({str(marks)!r}, 'a').write(os.environ['SLURM_JOB_ID'] + chr(10))"
    stages.register("first", _probe_stage(f"import time; time.sleep(1); {append}"))
    stages.register("second", _probe_stage(append))
    stages.register("broken", _probe_stage("raise SystemExit(3)"))
    stages.register("never", _probe_stage(append))
    jobs = submit_pipeline(["first", "second", "broken", "never"], build_config({}), tmp_path / "jobs")
    assert [j.depends_on for j in jobs] == [None, jobs[0].job_id, jobs[1].job_id, jobs[2].job_id]
    assert _wait(jobs[2].job_id).exit_code == "3:0"
    held = _wait(jobs[3].job_id, until="DependencyNeverSatisfied")
    subprocess.run(["scancel", jobs[3].job_id], check=False)
    assert [(s.state, s.exit_code) for s in map(job_status, (jobs[0].job_id, jobs[1].job_id))] == [
        ("COMPLETED", "0:0"), ("COMPLETED", "0:0")]
    assert (held.state, held.reason) == ("PENDING", "DependencyNeverSatisfied")
    assert marks.read_text().split() == [jobs[0].job_id, jobs[1].job_id]


def test_status_command_exits_1_for_a_failed_job_and_0_for_a_completed_one(
        slurm_cluster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(stages, "_REGISTRY", dict(stages._REGISTRY))
    stages.register("ok", _probe_stage("pass"))
    stages.register("fails", _probe_stage("raise SystemExit(5)"))
    ok, fails = (submit_stage(render_job(name, build_config({}), tmp_path)) for name in ("ok", "fails"))
    _wait(ok.job_id), _wait(fails.job_id)
    assert run_cli(app, ["slurm", "status", ok.job_id]) == 0
    assert run_cli(app, ["slurm", "status", fails.job_id]) == 1
    assert f"job {fails.job_id} ended FAILED (exit 5:0)" in capsys.readouterr().err


def test_sbatch_refusal_is_reported_with_its_reason(slurm_cluster: Path, tmp_path: Path) -> None:
    config = build_config({"slurm": {"partition": "nosuchpartition"}})
    with pytest.raises(RunError, match="Invalid partition name specified"):
        submit_stage(render_job("run", config, tmp_path))


def test_compliance_stage_runs_test06_and_its_verification_under_sbatch(slurm_cluster: Path,
                                                                       tmp_path: Path) -> None:
    config = _config(tmp_path, "backend.kind=fake")
    status = _wait(submit_stage(render_job("compliance", config, tmp_path / "jobs")).job_id)
    log = _job_log(tmp_path, "compliance")
    assert (status.state, status.exit_code) == ("COMPLETED", "0:0"), log
    assert (tmp_path / "run" / "TEST06" / "verify_accuracy.txt").exists()
    assert _manifest(tmp_path / "run")["compliance_test"] == "TEST06"


def _accuracy_tokens(run_dir: Path) -> dict[int, str]:
    entries = json.loads((run_dir / "mlperf_log_accuracy.json").read_text())
    return {entry["qsl_idx"]: entry["data"] for entry in entries}


@pytest.mark.model
def test_hf_accuracy_under_srun_pmix_matches_a_single_process_run(slurm_cluster: Path, tmp_path: Path) -> None:
    """Acceptance of issue 6: srun -n 3 --mpi=pmix inside a real sbatch gives the single-process token ids."""
    common = ["mode=accuracy", "dataset.max_samples=4", "generation.max_new_tokens=8", "backend.max_batch_size=2"]
    single = subprocess.run([sys.executable, "-m", "harness", "run", "--no-progress", "--output-dir",
                             str(tmp_path / "single"), *(f"--set={o}" for o in common)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    job = render_job("accuracy", _config(tmp_path, *common[1:], "slurm.ntasks_per_node=3"), tmp_path / "jobs")
    status = _wait(submit_stage(job).job_id)
    log = _job_log(tmp_path, "accuracy")
    assert (status.state, status.exit_code) == ("COMPLETED", "0:0"), log
    assert _accuracy_tokens(tmp_path / "run") == _accuracy_tokens(tmp_path / "single")
    assert _manifest(tmp_path / "run")["details"]["launch"]["world_size"] == 3
