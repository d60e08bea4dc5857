"""The in-image smoke stage on a REAL two-node Slurm cluster on this host (scripts/slurm-local.sh, node1 + node2).

Pyxis, trtllm-build, trtllm-llmapi-launch, trtllm-serve, ucx_info and the release's quantize.py are the
stand-ins of tests/integration/standins (their --help behaves like the real argparse/click one); PMIx is the
real srun --mpi=pmix of the local cluster. The smoke job passes when all is there and the next stage runs
(trtllm-build, whose argv the stand-in parses against the 1.2.1 option table); with trtllm-build missing
from the image it fails with one line naming it, exit 3, and the afterok chain holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import RunConfig, load_config
from harness.slurm.submit import submit_pipeline
from tests.integration.standins.cli_flags import parse_build
from tests.integration.test_slurm_local import _wait
from tests.integration.test_slurm_serve import STANDINS, pytestmark, site, two_nodes  # noqa: F401 (fixtures)

ENV = ["slurm.env.UCX_NET_DEVICES=mlx5_0:1", "slurm.env.UCX_IB_GID_INDEX='3'", "slurm.env.NCCL_IB_HCA=mlx5_0",
       "slurm.env.NCCL_SOCKET_IFNAME=lo"]


def _config(root: Path) -> RunConfig:
    engine = root / "models" / "trtllm" / "engine_2gpu_tp2_pp1"
    return load_config(None, [
        f"model.path={engine}", f"model.tokenizer={root / 'models' / 'tokenizer.gguf'}", "backend.kind=trtllm",
        "backend.backend=tensorrt", "backend.tensor_parallel_size=2", "backend.kv_cache_dtype=auto",
        f"backend.stages.trtllm_examples={STANDINS.parent / 'examples'}", "slurm.nodes=2", "slurm.ntasks_per_node=1",
        "slurm.gpus_per_node=8", "slurm.request_gpus=false", f"slurm.workdir={root}", f"slurm.python={sys.executable}",
        "slurm.container_image=/images/trtllm-1.2.1.sqsh", f"slurm.container_mounts=[{root}:{root}]",
        f"slurm.container_workdir={root}", f"output_dir={root / 'run'}", *ENV])


def _log(root: Path, stage: str) -> str:
    return next((root / "jobs").glob(f"{stage}-*[0-9].out")).read_text(errors="replace")


def test_the_smoke_stage_passes_on_every_rank_and_the_chain_goes_on(two_nodes: Path, site: Path) -> None:  # noqa: F811
    jobs = submit_pipeline(["build"], _config(site), site / "jobs", smoke=True)
    assert [job.stage for job in jobs] == ["smoke", "build"]
    for script in (site / "jobs" / "smoke.sbatch", site / "jobs" / "smoke.probe.sh"):
        for check in (["bash", "-n", str(script)], ["shellcheck", "--severity=style", str(script)]):
            done = subprocess.run(check, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
    smoke = _wait(jobs[0].job_id, timeout_s=300)
    log = _log(site, "smoke")
    assert (smoke.state, smoke.exit_code) == ("COMPLETED", "0:0"), log
    for rank in (0, 1):
        assert f"ok   rank {rank}/2 on " in log and f"PMIx reaches this rank (PMIX_RANK={rank})" in log
        assert f"rank {rank}/2 on " in log
    assert log.count("all checks passed") == 2
    assert log.count("UCX device mlx5_0:1 (UCX_NET_DEVICES) is listed by ucx_info -d") == 2
    assert log.count("NCCL_IB_HCA=mlx5_0 as configured") == 2
    assert "'trtllm-build --help' works" in log and " FAIL " not in log
    build = _wait(jobs[1].job_id, timeout_s=300)
    assert (build.state, build.exit_code) == ("COMPLETED", "0:0"), _log(site, "build")
    record = json.loads((site / "records" / "trtllm-build.json").read_text())
    args = parse_build(record["argv"])  # raises on a flag the 1.2.1 trtllm-build does not define
    assert args.output_dir == str(site / "models" / "trtllm" / "engine_2gpu_tp2_pp1")


def test_a_missing_entry_point_fails_the_smoke_job_and_holds_the_chain(two_nodes: Path, site: Path,  # noqa: F811
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    image_bin = site / "image-bin"  # the image's PATH without trtllm-build
    image_bin.mkdir()
    for tool in STANDINS.iterdir():
        if tool.name != "trtllm-build":
            (image_bin / tool.name).symlink_to(tool)
    monkeypatch.setenv("PATH", f"{image_bin}:{os.environ['PATH'].replace(str(STANDINS) + ':', '')}")
    jobs = submit_pipeline(["build"], _config(site), site / "jobs", smoke=True)
    smoke = _wait(jobs[0].job_id, timeout_s=300)
    held = _wait(jobs[1].job_id, until="DependencyNeverSatisfied")
    subprocess.run(["scancel", jobs[1].job_id], check=False)
    log = _log(site, "smoke")
    assert (smoke.state, smoke.exit_code) == ("FAILED", "3:0"), log
    fails = [line for line in log.splitlines() if " FAIL " in line]
    assert len(fails) == 1 and fails[0].startswith("[smoke] FAIL rank 0/2 on "), log
    assert "'trtllm-build --help' exited 127" in fails[0]
    assert (held.state, held.reason) == ("PENDING", "DependencyNeverSatisfied")
    assert not (site / "records" / "trtllm-build.json").exists()
