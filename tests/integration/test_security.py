"""Issue #14 end to end with real LoadGen (fake backend): links out of a run, secrets in every writer, OS faults,
TEST06 verify on a non-TEST06 run, retry after a dataset error, stale packager staging. One line, exit code, no
traceback, nothing copied, no secret on disk."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.artifacts import RunArtifacts
from harness.types import RunStatus
from tests.unit.submission import trees

SECRET = "TopSecretValue-4242"


def _cli(tool: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
         preexec: object = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(trees.REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=300, preexec_fn=preexec)  # type: ignore[arg-type]


def _one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def _no_secret_under(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert SECRET not in path.read_text(errors="replace"), path


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], Path]:
    return trees.fake_runs(("Offline",))


def _copy_runs(runs: dict[tuple[str, str], Path], root: Path) -> dict[tuple[str, str], Path]:
    copies = {}
    for key, path in runs.items():
        copies[key] = root / path.name
        shutil.copytree(path, copies[key], symlinks=True)
    return copies


@pytest.mark.parametrize("name", ["user.conf", "mlperf_log_summary.txt", "mlperf_log_accuracy.json", "manifest.json"])
def test_packager_refuses_a_run_file_linked_outside(runs: dict[tuple[str, str], Path], tmp_path: Path,
                                                     name: str) -> None:
    copies = _copy_runs(runs, tmp_path)
    victim = copies[("Offline", "performance" if name == "user.conf" else "accuracy")] / name
    victim.unlink()
    victim.symlink_to("/etc/passwd")
    out = tmp_path / "tree"
    done = _cli("submission", *trees.package_args(copies, out, trees.installed_round()), cwd=tmp_path)
    line = _one_line_error(done, 2)
    assert name in line and "outside" in line
    assert not out.exists() and not list(tmp_path.glob(".tree.*"))


def test_packager_removes_stale_staging_of_a_killed_packager(runs: dict[tuple[str, str], Path],
                                                             tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".tree.staging-{dead.pid}-abc"
    (stale / "tree").mkdir(parents=True)
    (stale / "tree" / "big.bin").write_bytes(b"x" * 1024)
    live = tmp_path / f".tree.staging-{os.getpid()}-def"  # a packager still running: left alone
    live.mkdir()
    done = _cli("submission", *trees.package_args(runs, tmp_path / "tree", trees.installed_round()), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and live.exists()


def test_secrets_never_reach_the_run_dir_or_the_packaged_tree(tmp_path: Path) -> None:
    made = {}
    env = {"HARNESS_DB_PASS": SECRET, "NCCL_SOME_PASSPHRASE": SECRET, "SLURM_X_TOKEN": SECRET}
    for mode in ("performance", "accuracy"):
        out = tmp_path / f"Offline-{mode}"
        done = _cli("harness", "run", "--mode", mode, "--output-dir", str(out), "--no-progress",
                    "--set", "backend.kind=fake", "--set", "loadgen.target_qps=50",
                    "--set", f"slurm.env.WANDB_API_KEY={SECRET}", "--set", f"slurm.env.MY_PASS={SECRET}",
                    "--set", "backend.max_batch_size=64", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        made[("Offline", mode)] = out
        manifest = RunArtifacts(out).read_manifest()
        assert manifest.environment["HARNESS_DB_PASS"] == "<redacted>"
        assert any("WANDB_API_KEY=<redacted>" in part for part in manifest.command)
    tree = tmp_path / "tree"
    done = _cli("submission", *trees.package_args(made, tree, trees.installed_round()), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _no_secret_under(*made.values(), tree)
    # the scenario's README: measurements/<sys>/<bench>/<scenario>/ before v6.0, results/... from v6.0
    readme = next(p for p in tree.rglob("README.md") if p.parent.name == "Offline").read_text()
    assert "WANDB_API_KEY=<redacted>" in readme


def test_slurm_script_and_config_copy_hold_no_secret(tmp_path: Path) -> None:
    done = _cli("harness", "slurm", "render", "run", "--job-dir", str(tmp_path / "jobs"),
                "--set", f"slurm.env.WANDB_API_KEY={SECRET}", "--set", "slurm.env.NCCL_IB_HCA=mlx5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _no_secret_under(tmp_path / "jobs")
    script = next((tmp_path / "jobs").rglob("*.sbatch")).read_text()
    assert "export WANDB_API_KEY\n" in script and "export NCCL_IB_HCA='mlx5'" in script


def test_the_slurm_script_exporting_a_secret_is_shellcheck_clean(tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/install-system.sh installs it)")
    done = _cli("harness", "slurm", "render", "run", "--job-dir", str(tmp_path / "jobs"),
                "--set", f"slurm.env.WANDB_API_KEY={SECRET}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = next((tmp_path / "jobs").rglob("*.sbatch"))
    checked = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_verify_test06_refuses_a_run_that_is_no_audit(runs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    run = _copy_runs(runs, tmp_path)[("Offline", "accuracy")]
    done = _cli("compliance", "verify", "TEST06", str(run), cwd=tmp_path)
    assert "not a TEST06 run" in _one_line_error(done, 2)
    assert not (run / "TEST06").exists()


def test_dataset_error_leaves_no_directory_that_blocks_the_retry(tmp_path: Path) -> None:
    bad = tmp_path / "orca.pkl"
    pd.DataFrame({"tok_input": [[1, 2], [3]], "output": ["fine.", None]}).to_pickle(bad)
    out = tmp_path / "run"
    args = ("run", "--output-dir", str(out), "--no-progress", "--set", "backend.kind=fake",
            "--set", f"dataset.path={bad}", "--set", "loadgen.target_qps=50")
    line = _one_line_error(_cli("harness", *args, cwd=tmp_path), 2)
    assert "sample 1" in line and not out.exists()
    pd.DataFrame({"tok_input": [[1, 2], [3]], "output": ["fine.", "also fine."]}).to_pickle(bad)
    done = _cli("harness", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_a_full_disk_fails_the_run_with_one_line_and_a_failed_record(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk: every write past the limit fails with EFBIG."""
    out = tmp_path / "run"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    done = _cli("harness", "run", "--mode", "accuracy", "--output-dir", str(out), "--no-progress", "--set",
                "backend.kind=fake", "--set", "loadgen.target_qps=50", cwd=tmp_path, preexec=limit)
    line = _one_line_error(done, 3)
    assert "File too large" in line or "EFBIG" in line
    assert RunArtifacts(out).read_manifest().status is RunStatus.FAILED


@pytest.mark.parametrize("case", ["output_under_file", "config_is_dir", "target_qps_inf", "replicas_zero_in_config"])
def test_bad_paths_and_values_are_one_line(tmp_path: Path, case: str) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "zero.yaml").write_text("distributed:\n  replicas: 0\n")
    args = {"output_under_file": ["--output-dir", str(tmp_path / "afile" / "run")],
            "config_is_dir": ["--config", str(tmp_path)],
            "target_qps_inf": ["--set", "loadgen.target_qps=.inf"],
            "replicas_zero_in_config": ["--config", str(tmp_path / "zero.yaml")]}[case]
    done = _cli("harness", "run", "--no-progress", "--set", "backend.kind=fake", *args, cwd=tmp_path)
    _one_line_error(done, 2)
