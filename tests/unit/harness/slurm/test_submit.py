"""Submission helpers that need no cluster: job ids, scontrol parsing, a missing sbatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import build_config
from harness.errors import ConfigError, EnvironmentProblem
from harness.slurm.submit import JobStatus, check_job_id, parse_scontrol, sbatch, submit_pipeline

SCONTROL = """JobId=7 JobName=mlperf-llm-run
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=4:0
   Command=/tmp/jobs/run.sbatch
"""


def test_scontrol_output_parses_into_its_key_value_pairs() -> None:
    fields = parse_scontrol(SCONTROL)
    assert (fields["JobId"], fields["JobState"], fields["Reason"], fields["ExitCode"]) == (
        "7", "FAILED", "NonZeroExitCode", "4:0")
    assert fields["Command"] == "/tmp/jobs/run.sbatch"


@pytest.mark.parametrize("job_id", ["1", "123456", "42_7"])
def test_valid_job_ids_pass(job_id: str) -> None:
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize("job_id", ["", "x1", "1;rm", "12 13", "-5"])
def test_invalid_job_ids_are_refused(job_id: str) -> None:
    with pytest.raises(ConfigError, match="is not a Slurm job id"):
        check_job_id(job_id)


@pytest.mark.parametrize(("state", "finished"), [("PENDING", False), ("RUNNING", False), ("COMPLETING", False),
                                                 ("COMPLETED", True), ("FAILED", True), ("TIMEOUT", True)])
def test_job_status_knows_when_a_job_has_finished(state: str, finished: bool) -> None:
    assert JobStatus("1", state).finished is finished


def test_missing_sbatch_is_an_environment_problem_naming_the_fix(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="sbatch is not on PATH") as caught:
        sbatch(tmp_path / "run.sbatch")
    assert "slurm-local.sh" in (caught.value.hint or "")


def test_pipeline_refuses_an_empty_or_repeated_stage_list(tmp_path: Path) -> None:
    config = build_config({})
    with pytest.raises(ConfigError, match="no stages"):
        submit_pipeline([], config, tmp_path)
    with pytest.raises(ConfigError, match="repeats a stage"):
        submit_pipeline(["run", "run"], config, tmp_path)
    assert not list(tmp_path.iterdir())
