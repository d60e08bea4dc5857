"""Rendering: every stage's script passes `bash -n` and shellcheck, carries the #SBATCH and Pyxis flags."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.backends.trtllm.preparation import PREPARATION_STAGES
from harness.config import RunConfig, build_config
from harness.errors import ConfigError
from harness.slurm.render import quote_arg, render_job, render_text
from harness.slurm.stages import stage_names

SITE = {
    "partition": "batch", "account": "mlperf", "nodes": 2, "ntasks_per_node": 4, "gpus_per_node": 8,
    "cpus_per_task": 16, "time_limit": "04:00:00", "container_image": "nvcr.io#nvidia/pytorch:24.01-py3",
    "container_mounts": ["/lustre/models:/models:ro", "/scratch:/scratch"], "container_workdir": "/scratch/mlperf",
    "workdir": "/scratch/mlperf", "env": {"NCCL_IB_GID_INDEX": "3", "NCCL_SOCKET_IFNAME": "=eth0",
                                          "UCX_NET_DEVICES": "mlx5_0:1,mlx5_1:1", "NCCL_DEBUG": "INFO warn's"},
    "extra_args": ["--exclusive", "--qos=high"],
}
CONFIGS = {
    "default": build_config({}),
    "site": build_config({"backend": {"kind": "fake"}, "slurm": SITE}),
}


@pytest.mark.parametrize("stage", [s for s in stage_names()  # trtllm-only ones: test_preparation.py renders them;
                                   if s not in PREPARATION_STAGES and not s.startswith("serve")])  # test_serve.py
@pytest.mark.parametrize("variant", sorted(CONFIGS))
def test_every_stage_script_passes_bash_n_and_shellcheck(stage: str, variant: str, tmp_path: Path) -> None:
    job = render_job(stage, CONFIGS[variant], tmp_path / "jobs", source="site.yaml")
    syntax = subprocess.run(["bash", "-n", str(job.script_path)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/install-system.sh installs it)")
    lint = subprocess.run(["shellcheck", "--severity=style", str(job.script_path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def _sbatch_options(text: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_site_settings_become_sbatch_directives_in_a_fixed_order(tmp_path: Path) -> None:
    text = render_text("run", CONFIGS["site"], tmp_path)
    assert _sbatch_options(text) == [
        "--job-name=mlperf-llm-run", "--partition=batch", "--account=mlperf", "--nodes=2", "--ntasks-per-node=4",
        "--gpus-per-node=8", "--cpus-per-task=16", "--time=04:00:00", f"--output={tmp_path}/run-%j.out",
        "--chdir=/scratch/mlperf", "--exclusive", "--qos=high"]


def test_pyxis_flags_and_pmix_are_on_the_srun_line(tmp_path: Path) -> None:
    text = render_text("accuracy", CONFIGS["site"], tmp_path)
    launch = text[text.index("\nsrun "):]
    assert [line.strip(" \\") for line in launch.strip().splitlines()[:7]] == [
        "srun", "--ntasks=8", "--mpi=pmix", "--kill-on-bad-exit=1",
        "--container-image='nvcr.io#nvidia/pytorch:24.01-py3'",
        f"--container-mounts=/lustre/models:/models:ro,/scratch:/scratch,{tmp_path}:{tmp_path}",
        "--container-workdir=/scratch/mlperf"]


def test_fabric_environment_is_exported_quoted(tmp_path: Path) -> None:
    text = render_text("run", CONFIGS["site"], tmp_path)
    exports = [line for line in text.splitlines() if line.startswith("export NCCL_") or line.startswith("export UCX")]
    assert exports == ["export NCCL_DEBUG='INFO warn'\"'\"'s'", "export NCCL_IB_GID_INDEX='3'",
                       "export NCCL_SOCKET_IFNAME='=eth0'", "export UCX_NET_DEVICES='mlx5_0:1,mlx5_1:1'"]


def test_the_exported_environment_reaches_the_command(tmp_path: Path) -> None:
    """Run the rendered env block in bash and read the values back, quotes included."""
    text = render_text("run", CONFIGS["site"], tmp_path)
    exports = "\n".join(line for line in text.splitlines() if line.startswith("export "))
    out = subprocess.run(["bash", "-c", exports + '\nprintf "%s|%s" "$NCCL_DEBUG" "$NCCL_SOCKET_IFNAME"'],
                         capture_output=True, text=True, check=True).stdout
    assert out == "INFO warn's|=eth0"


def test_without_a_container_no_pyxis_flags_and_no_gpus_are_requested(tmp_path: Path) -> None:
    text = render_text("run", CONFIGS["default"], tmp_path)
    assert "--container" not in text
    assert "--gpus-per-node" not in text


def test_script_names_the_config_it_came_from_and_the_copy_loads_back(tmp_path: Path) -> None:
    job = render_job("run", CONFIGS["site"], tmp_path, source="/home/me/site.yaml")
    assert f"Run config: {job.config_path}" in job.text
    assert "written from /home/me/site.yaml" in job.text
    assert f"--config {job.config_path}" in job.text
    copy = RunConfig.model_validate(yaml.safe_load(job.config_path.read_text()))
    assert copy == CONFIGS["site"]


def test_existing_scripts_are_not_overwritten_unless_asked(tmp_path: Path) -> None:
    first = render_job("run", CONFIGS["default"], tmp_path)
    first.script_path.write_text("# my edits\n")
    with pytest.raises(ConfigError, match="already exists"):
        render_job("run", CONFIGS["default"], tmp_path)
    assert first.script_path.read_text() == "# my edits\n"
    assert render_job("run", CONFIGS["default"], tmp_path, overwrite=True).script_path.read_text() != "# my edits\n"


def test_a_job_dir_with_spaces_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="contains whitespace"):
        render_job("run", CONFIGS["default"], tmp_path / "my jobs")
    assert not (tmp_path / "my jobs").exists()


@pytest.mark.parametrize(("arg", "quoted"), [
    ("plain", "plain"), ("two words", "'two words'"), ("it's", "'it'\"'\"'s'"),
    ("runs/x-${SLURM_JOB_ID}", '"runs/x-${SLURM_JOB_ID}"'),
])
def test_arguments_are_quoted_with_only_the_job_id_expanded(arg: str, quoted: str) -> None:
    assert quote_arg(arg) == quoted


def test_job_id_next_to_shell_specials_is_refused() -> None:
    with pytest.raises(ConfigError, match="shell-special"):
        quote_arg("runs/$HOME-${SLURM_JOB_ID}")


def _exit_rule(text: str) -> str:
    """The script's check_run and job_status functions, as rendered."""
    return text[text.index("MANIFEST_SEEN=0"):text.index("\n}\n", text.index("job_status() {")) + 3]


@pytest.mark.parametrize(("status", "validity", "errors", "step_rc", "job_rc"), [
    ("failed", "", 0, 143, 4),  # the launcher stopped its own step after the failure
    ("failed", "", 0, 0, 4),  # the launcher exited with its leader's 0
    ("completed", "", 0, 0, 0),
    ("completed", "INVALID", 0, 0, 1),  # a performance run that is not VALID
    ("completed", "", 3, 0, 1),  # LoadGen errors
    ("completed", "", 0, 143, 143),  # a completed run in a killed step still fails the job
    (None, "", 0, 2, 2),  # no run directory: the harness refused the config
    (None, "", 0, 0, 4),  # the step claims success but no run was written
])
def test_the_job_exit_code_is_the_manifest_verdict_when_there_is_one(
        status: str | None, validity: str, errors: int, step_rc: int, job_rc: int, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if status is not None:
        manifest = {"status": status, "mode": "performance" if validity else "accuracy",
                    "result": {"result_validity": validity or "VALID", "loadgen_errors": errors}, "notes": []}
        (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    script = (_exit_rule(render_text("accuracy", CONFIGS["default"], tmp_path / "jobs"))
              + f'verdict=0\ncheck_run "$1" || verdict=$?\nexit "$(job_status {step_rc} "$verdict")"\n')
    done = subprocess.run(["bash", "-c", script, "job", str(run_dir)], capture_output=True, text=True)
    assert done.returncode == job_rc, done.stderr


def test_the_smoke_step_lets_every_rank_finish_its_checks() -> None:
    from harness.slurm.commands import StageCommand, TasksLayout
    from harness.slurm.render import srun_flags

    config = RunConfig()
    layout = TasksLayout(2, 1, 0, mpi=True)
    assert "--kill-on-bad-exit=1" in srun_flags(config.slurm, StageCommand(("true",), "x", False, layout))
    smoke = StageCommand(("true",), "x", False, layout, fail_fast=False)
    assert "--kill-on-bad-exit=0" in srun_flags(config.slurm, smoke)
