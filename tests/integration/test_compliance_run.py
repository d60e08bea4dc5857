"""`compliance run TEST06` end to end: real LoadGen, real audit.config, clean and deliberately broken SUTs.

The fake backend stands in for TensorRT-LLM (it cannot run here); LoadGen, the SUT, the run directory and
the verification are the real ones. The harness never emits broken responses, so each broken run rewrites
the responses at the seam where the SUT hands them to LoadGen (LoadGenCompleter.complete_buffer) to
reproduce a bug that real SUTs have shipped with: a doubled EOS, a dropped first token, n_tokens off by
one. Parity with the official v4.0 run_verification.py is checked on every run directory when the
MLCommons mirror is present (MLPERF_INFERENCE_GIT overrides its location).
"""

from __future__ import annotations

import array
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from compliance.results import read_test06
from compliance.run import Test06Run, audit_run_config, run_test06
from harness.artifacts import RunArtifacts
from harness.config import load_config
from harness.errors import ConfigError
from harness.loadgen import LoadGenCompleter

MIRROR = os.environ.get("MLPERF_INFERENCE_GIT", "/work/.mirror/mlcommons+inference/repo")
OFFICIAL = "v4.0:compliance/nvidia/TEST06/run_verification.py"
FAKE = ["backend.kind=fake", "generation.max_new_tokens=16", "loadgen.target_qps=200"]


def official_lines(run_dir: Path, scenario: str, work: Path) -> list[str] | None:
    """The verify_accuracy.txt lines of the official v4.0 script on run_dir (None: it wrote none)."""
    shown = subprocess.run(["git", "-C", MIRROR, "show", OFFICIAL], capture_output=True, text=True, check=True)
    script = work / "run_verification.py"
    script.write_text(shown.stdout)
    out = work / f"official-{run_dir.name}"
    subprocess.run([sys.executable, str(script), "-c", str(run_dir), "-o", str(out), "-s", scenario, "-d", "int32"],
                   capture_output=True, text=True, timeout=120)
    written = out / "TEST06" / "verify_accuracy.txt"
    return written.read_text().splitlines() if written.is_file() else None


def fake_test06(root: Path, name: str, scenario: str) -> Test06Run:
    config = audit_run_config(load_config(None, FAKE), scenario, root / name)
    return run_test06(config, command=["pytest", name], progress=False)


Transform = Callable[[list[int]], list[int]]


def rewriting(transform: Transform, n_tokens_extra: int = 0) -> Callable[..., None]:
    """A LoadGenCompleter.complete_buffer that changes every response (and n_tokens) on its way to LoadGen."""
    def complete_buffer(self: LoadGenCompleter, response_ids: Sequence[int], buffer: np.ndarray,
                        offsets: Sequence[int], lengths: Sequence[int]) -> None:
        import mlperf_loadgen as lg

        responses = [transform(buffer[o:o + n].tolist()) for o, n in zip(offsets, lengths, strict=True)]
        keep = [array.array("i", r) for r in responses]  # alive until LoadGen has read them
        self.send(lg.QuerySamplesComplete, [
            lg.QuerySampleResponse(rid, a.buffer_info()[0], len(a) * a.itemsize, len(a) + n_tokens_extra)
            for rid, a in zip(response_ids, keep, strict=True)], keep)
    return complete_buffer


def doubled_eos(tokens: list[int]) -> list[int]:
    return [*tokens, tokens[-1]]  # responses end with EOS: a second one follows


def first_token_dropped(tokens: list[int]) -> list[int]:
    return tokens[1:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Test06Run]]:
    """Five TEST06 runs with the fake backend: two clean, three broken (a few seconds in all)."""
    import harness.loadgen

    root = tmp_path_factory.mktemp("test06")
    done = {"clean Offline": fake_test06(root, "clean-offline", "Offline"),
            "clean Server": fake_test06(root, "clean-server", "Server")}
    seam = harness.loadgen.LoadGenCompleter
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seam, "complete_buffer", rewriting(doubled_eos))
        done["doubled EOS"] = fake_test06(root, "doubled-eos", "Server")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seam, "complete_buffer", rewriting(first_token_dropped))
        done["first token dropped"] = fake_test06(root, "first-token", "Server")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seam, "complete_buffer", rewriting(lambda tokens: tokens, n_tokens_extra=1))
        done["n_tokens off by one"] = fake_test06(root, "off-by-one", "Offline")
    yield done


EXPECTED = {
    "clean Offline": ("Skipped", True, True),
    "clean Server": ("True", True, True),
    "doubled EOS": ("True", False, True),
    "first token dropped": ("False", True, True),
    "n_tokens off by one": ("Skipped", True, False),
}


def _lines(first: str, eos: bool, length: bool) -> list[str]:
    ok = first != "False" and eos and length
    return [f"First token check pass: {first}", f"EOS check pass: {eos}", f"Sample length check pass: {length}",
            "TEST06 verification complete" if ok else "TEST06 verification failed"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_exactly_the_matching_check_fails(runs: dict[str, Test06Run], name: str) -> None:
    """Clean runs pass; each broken SUT fails only its own check, naming the failing samples."""
    run = runs[name]
    result = run.verification.result
    assert result.verdict.lines() == _lines(*EXPECTED[name])
    assert result.sample_count >= 90  # the audit settings log about 100 responses
    assert read_test06(run.run_dir).lines == tuple(_lines(*EXPECTED[name]))
    if result.passed:
        assert not result.findings
    else:
        assert len(result.findings) == result.sample_count  # every logged response carries the bug
        assert {f.check for f in result.findings} == set(result.causes)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_official_script_agrees(runs: dict[str, Test06Run], name: str, tmp_path: Path) -> None:
    if not Path(MIRROR).exists():
        pytest.skip(f"no MLCommons inference git mirror at {MIRROR}")
    run = runs[name]
    scenario = RunArtifacts(run.run_dir).read_manifest().scenario
    assert official_lines(run.run_dir, scenario, tmp_path) == run.verification.result.verdict.lines()


def test_doubled_eos_findings_show_the_padding(runs: dict[str, Test06Run]) -> None:
    """A SUT that appends a second EOS (pads answers) - what the EOS check exists to catch."""
    finding = runs["doubled EOS"].verification.result.findings[0]
    assert finding.tokens[-2:] == (2, 2) and "2 trailing EOS" in finding.reason


def test_first_token_findings_show_both_tokens(runs: dict[str, Test06Run]) -> None:
    """The v4.0 reference SUTServer bug: the final response omits the token sent via FirstTokenComplete."""
    finding = runs["first token dropped"].verification.result.findings[0]
    assert "differs from the final answer at element 0" in finding.reason


def test_off_by_one_findings_show_both_counts(runs: dict[str, Test06Run]) -> None:
    """A SUT that reports n_tokens one higher than the buffer (e.g. counts a token it trimmed)."""
    finding = runs["n_tokens off by one"].verification.result.findings[0]
    assert "token_count 17 but the buffer holds 16 int32 elements" in finding.reason  # 16 = max_new_tokens


def test_audit_run_is_recorded_and_not_a_performance_result(runs: dict[str, Test06Run]) -> None:
    run = runs["clean Server"]
    manifest = RunArtifacts(run.run_dir).read_manifest()
    assert manifest.compliance_test == "TEST06" and manifest.mode == "performance"
    assert manifest.submittable is False
    assert any(reason.code == "compliance-run" and "audit run" in reason.text
               for reason in manifest.not_submittable_reasons)
    assert manifest.details["test06"]["passed"] is True
    detail = (run.run_dir / "mlperf_log_detail.txt").read_text()
    assert "Found Audit Config file" in detail
    samples = [json.loads(line) for line in (run.run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) >= 90


def test_audit_config_never_left_behind(runs: dict[str, Test06Run]) -> None:
    assert not (Path.cwd() / "audit.config").exists()
    assert not list(runs["clean Offline"].run_dir.rglob("audit.config"))


def test_stray_audit_config_in_cwd_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.config").write_text("*.*.mode = 2\n")
    with pytest.raises(ConfigError, match=r"audit\.config exists"):
        fake_test06(tmp_path, "stray", "Offline")
