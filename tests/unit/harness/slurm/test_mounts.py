"""Container paths: every path a job uses must be under a mount; the job folder is mounted; host paths back."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import build_config
from harness.errors import ConfigError
from harness.sections.slurm import SlurmConfig
from harness.slurm.mounts import check_visible, host_path, job_mounts
from harness.slurm.render import render_text

PYXIS = {"container_image": "/images/t.sqsh", "container_mounts": ["/lustre/models:/models:ro",
                                                                   "/lustre/mlperf:/lustre/mlperf"]}


def test_the_job_folder_is_added_unless_a_mount_shows_it_under_its_own_name() -> None:
    slurm = SlurmConfig(**PYXIS)
    assert job_mounts(slurm, "/home/me/jobs") == (*PYXIS["container_mounts"], "/home/me/jobs:/home/me/jobs")
    assert job_mounts(slurm, "/lustre/mlperf/jobs") == tuple(PYXIS["container_mounts"])


def test_a_path_outside_every_mount_is_refused_naming_it() -> None:
    """Risk 1 of issue 16: the documented example mounted only the models folder."""
    slurm = SlurmConfig(**PYXIS, container_workdir="/workspace")
    check_visible([("model.path", "/models/engine"), ("the run directory", "/lustre/mlperf/runs/x")], slurm, "/j")
    with pytest.raises(ConfigError, match=r"the run directory /workspace/runs/x is not under any container mount"):
        check_visible([("the run directory", "runs/x")], slurm, "/j")
    with pytest.raises(ConfigError, match="relative, but inside the container"):
        check_visible([("dataset.path", "data/orca.pkl")], SlurmConfig(**PYXIS), "/j")


def test_without_a_container_nothing_is_checked_or_mapped() -> None:
    check_visible([("model.path", "relative/model")], SlurmConfig(), "/j")
    assert host_path("runs/x", SlurmConfig(), "/j") == "runs/x"


def test_host_paths_follow_the_most_specific_mount() -> None:
    slurm = SlurmConfig(container_image="/i.sqsh", container_mounts=["/lustre:/data", "/lustre/runs-ssd:/data/runs"])
    run = "/data/runs/performance-${SLURM_JOB_ID}"
    assert host_path(run, slurm, "/j") == "/lustre/runs-ssd/performance-${SLURM_JOB_ID}"
    assert host_path("/data/x", slurm, "/j") == "/lustre/x"


def test_rendering_refuses_the_old_documented_example(tmp_path: Path) -> None:
    """Only the models folder mounted, runs/ relative: the run directory would be lost with the container."""
    config = build_config({"backend": {"kind": "fake"}, "slurm": {"container_image": "/i.sqsh",
                                                                  "container_mounts": ["/lustre/models:/models"]}})
    with pytest.raises(ConfigError, match="relative, but inside the container"):
        render_text("run", config, tmp_path)
    mounted = build_config({"backend": {"kind": "fake"}, "slurm": {**PYXIS, "container_workdir": "/lustre/mlperf"}})
    text = render_text("run", mounted, tmp_path)
    assert '--output-dir "/lustre/mlperf/runs/performance-${SLURM_JOB_ID}"' in text
    assert f"{tmp_path}:{tmp_path}" in text  # the config copy is visible at its host path
