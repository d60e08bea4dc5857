"""`submission package` and `submission check` on trees built from real fake-backend runs (LoadGen 4.0.1)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from submission.cli import main
from submission.rules import check_tree
from tests.unit.submission import trees

SYS = trees.SYSTEM.stem


def _main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return int(exit_.value.code or 0)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], Path]:
    return trees.fake_runs()


def test_v40_tree_has_exactly_the_official_layout(runs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    out = tmp_path / "sub"
    assert _main(trees.package_args(runs, out, "v4.0")) == 0
    org = "open/MyOrg"
    expected = [f"{org}/code/llama2-70b-99.9/mlperf-llm-harness/README.md"]
    for sc in ("Offline", "Server"):
        meas = f"{org}/measurements/{SYS}/llama2-70b-99.9/{sc}"
        res = f"{org}/results/{SYS}/llama2-70b-99.9/{sc}"
        expected += [f"{meas}/{SYS}_mlperf-llm-harness_{sc}.json", f"{meas}/README.md", f"{meas}/mlperf.conf",
                     f"{meas}/user.conf"]
        expected += [f"{res}/accuracy/{n}" for n in ("accuracy.txt", "mlperf_log_accuracy.json",
                                                      "mlperf_log_detail.txt", "mlperf_log_summary.txt")]
        expected += [f"{res}/performance/run_1/mlperf_log_detail.txt",
                     f"{res}/performance/run_1/mlperf_log_summary.txt"]
    expected.append(f"{org}/systems/{SYS}.json")
    code = f"{org}/code/llama2-70b-99.9/mlperf-llm-harness/"
    assert [f for f in _files(out) if not f.startswith(code) or f.endswith("/README.md")] == sorted(expected)
    assert f"{code}SHA256SUMS" in _files(out) and f"{code}harness/runner.py" in _files(out)
    perf_run = runs[("Offline", "performance")]
    meas = out / org / "measurements" / SYS / "llama2-70b-99.9" / "Offline"
    assert (meas / "user.conf").read_bytes() == (perf_run / "user.conf").read_bytes()
    assert (meas / "mlperf.conf").read_bytes() == (perf_run / "mlperf.conf").read_bytes()
    assert not list(tmp_path.glob(".sub.*")), "staging directory left behind"


def test_accuracy_txt_gets_the_hash_of_the_kept_original(runs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    out = tmp_path / "sub"
    assert _main(trees.package_args(runs, out, "v4.0")) == 0
    acc = out / "open/MyOrg/results" / SYS / "llama2-70b-99.9/Offline/accuracy"
    original = tmp_path / "sub-originals" / SYS / "llama2-70b-99.9/Offline/accuracy/mlperf_log_accuracy.json"
    source = runs[("Offline", "accuracy")] / "mlperf_log_accuracy.json"
    assert original.read_bytes() == source.read_bytes()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    lines = (acc / "accuracy.txt").read_text().splitlines()
    assert lines[-1] == f"hash={digest}"
    assert lines[:-1] == (runs[("Offline", "accuracy")] / "accuracy.txt").read_text().rstrip("\n").splitlines()


def test_readme_states_commands_deviations_and_unsubmittability(runs: dict[tuple[str, str], Path],
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "sub"
    assert _main(trees.package_args(runs, out, "v4.0")) == 0
    readme = (out / "open/MyOrg/measurements" / SYS / "llama2-70b-99.9/Server/README.md").read_text()
    manifest = json.loads((runs[("Server", "performance")] / "manifest.json").read_text())
    assert "## NOT A VALID SUBMISSION" in readme
    assert "is a test fake" in readme
    # Re-runnable from RUN_ROOT (the directory the run started in): `python -m`, relative paths, no /work/...
    assert ("python -m harness run --scenario Server --mode performance --output-dir Server-performance --set "
            "loadgen.target_qps=50 --set backend.kind=fake") in readme
    assert manifest["command"][0] not in readme
    # Deviations from what ran: a fake run swapped no model; the data set is named with its hash.
    assert "is a test fake: no model ran" in readme and "SmolLM2-135M-Instruct instead" not in readme
    assert "(sha256 none: the test fake loads no model)" in readme and "model_sha256" not in manifest["details"]
    assert "generation.max_new_tokens: 1024 -> 64" in readme
    assert f"sha256 {manifest['details']['dataset_sha256']}" in readme
    assert "## PROVENANCE CONTRADICTIONS" in readme.split("## NOT A VALID SUBMISSION")[0]
    assert f"mlcommons-loadgen {manifest['versions']['mlcommons-loadgen']}" in readme


def test_unsubmittable_runs_are_refused_and_nothing_is_written(runs: dict[tuple[str, str], Path],
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    out = tmp_path / "sub"
    args = [a for a in trees.package_args(runs, out, "v4.0") if a != "--allow-unsubmittable"]
    assert _main(args) == 2
    err = capsys.readouterr().err
    assert "error: provenance contradiction: llama2-70b-99.9 Offline: " in err  # H100/TensorRT-LLM vs a fake run
    assert "ran backend fake (fixed)" in err and err.count("\n") <= 3
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_never_replaced(runs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    out = tmp_path / "sub"
    out.mkdir()
    (out / "keep.md").write_text("mine\n")
    assert _main(trees.package_args(runs, out, "v4.0")) == 2
    assert _files(out) == ["keep.md"]


def test_a_run_without_accuracy_txt_leaves_no_partial_tree(runs: dict[tuple[str, str], Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "acc"
    shutil.copytree(runs[("Offline", "accuracy")], broken)
    (broken / "accuracy.txt").unlink()
    chosen = dict(runs) | {("Offline", "accuracy"): broken}
    out = tmp_path / "sub"
    assert _main(trees.package_args(chosen, out, "v4.0")) == 2
    assert "lacks accuracy.txt" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc"]


def test_v51_tree_has_no_mlperf_conf_and_v60_uses_results_and_src(runs: dict[tuple[str, str], Path],
                                                                  tmp_path: Path) -> None:
    assert _main(trees.package_args(runs, tmp_path / "v51", "v5.1")) == 0
    assert not list((tmp_path / "v51").rglob("mlperf.conf"))
    assert _main(trees.package_args(runs, tmp_path / "v60", "v6.0")) == 0
    org = tmp_path / "v60/open/MyOrg"
    scenario = org / "results" / SYS / "llama2-70b-99.9/Offline"
    assert sorted(p.name for p in scenario.iterdir()) == ["README.md", "accuracy", "measurements.json",
                                                          "performance", "user.conf"]
    assert sorted(p.name for p in org.iterdir()) == ["results", "src", "systems"]


@pytest.mark.parametrize("round_name", ["v4.0", "v5.1", "v6.0"])
def test_shortened_runs_fail_check_with_the_reasons_named(runs: dict[tuple[str, str], Path], tmp_path: Path,
                                                          round_name: str) -> None:
    out = tmp_path / "sub"
    assert _main(trees.package_args(runs, out, round_name)) == 0
    report = check_tree(out, round_name, expected_results=2)
    names = {c.name for c in report.failures}
    assert "performance-sample-count" in names
    assert "result-count" in names
    assert report.results == 0


def test_check_cli_exit_codes(runs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    out = tmp_path / "sub"
    assert _main(trees.package_args(runs, out, "v4.0")) == 0
    assert _main(["check", str(out), "--round", "v4.0"]) == 1
    trees.lift_to_full_length(out, "v4.0")
    assert _main(["check", str(out), "--round", "v4.0", "--expected", "2"]) == 0
    assert _main(["check", str(tmp_path / "missing"), "--round", "v4.0"]) == 2


def test_check_with_official_checker_requires_the_packaged_result_count(runs: dict[tuple[str, str], Path],
                                                                        tmp_path: Path) -> None:
    checker = trees.export_checker("v4.0")
    if checker is None:
        pytest.skip("mirror of mlcommons/inference absent (set MLPERF_INFERENCE_GIT)")
    out = tmp_path / "sub"
    assert _main(trees.package_args(runs, out, "v4.0")) == 0
    trees.lift_to_full_length(out, "v4.0")
    assert _main(["check", str(out), "--round", "v4.0", "--official", str(checker)]) == 0


def _retag(run: Path, target: Path, **changes: object) -> Path:
    shutil.copytree(run, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(changes)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_a_999_run_fills_both_benchmarks(runs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    """The copies retagged as llama2-70b-99.9 stand in for `harness run --set benchmark=llama2-70b-99.9`."""
    chosen = {key: _retag(path, tmp_path / "in" / f"{key[0]}-{key[1]}", benchmark="llama2-70b-99.9")
              for key, path in runs.items()}
    out = tmp_path / "sub"
    assert _main(trees.package_args(chosen, out, "v4.0", "--both-benchmarks")) == 0
    results = out / "open/MyOrg/results" / SYS
    assert sorted(p.name for p in results.iterdir()) == ["llama2-70b-99", "llama2-70b-99.9"]
    assert sorted(p.name for p in (out / "open/MyOrg/code").iterdir()) == ["llama2-70b-99", "llama2-70b-99.9"]
    trees.lift_to_full_length(out, "v4.0")
    assert check_tree(out, "v4.0", expected_results=4).passed


@pytest.mark.parametrize(("round_name", "where"), [("v4.0", "compliance/{sys}/llama2-70b-99.9/Server/TEST06"),
                                                   ("v6.0", "results/{sys}/llama2-70b-99.9/Server/TEST06")])
def test_test06_run_goes_to_the_rounds_compliance_dir(runs: dict[tuple[str, str], Path], tmp_path: Path,
                                                      round_name: str, where: str) -> None:
    """A real `compliance run TEST06` (fake backend) lands where the round's checker looks for it."""
    test06 = trees.compliance_run(trees.scratch("test06") / "Server", "Server")
    out = tmp_path / "sub"
    assert _main([*trees.package_args(runs, out, round_name), str(test06)]) == 0
    target = out / "open/MyOrg" / where.format(sys=SYS)
    assert sorted(_files(target)) == ["accuracy/mlperf_log_accuracy.json", "verify_accuracy.txt"]
    trees.lift_to_full_length(out, round_name)
    assert check_tree(out, round_name, expected_results=2).passed
