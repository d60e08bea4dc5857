"""Run inputs: an INVALID performance result is a reason the tree is not submittable, naming the run."""

from __future__ import annotations

from pathlib import Path

from harness.artifacts import Manifest
from harness.types import RunStatus
from submission.inputs import RunInput, _reasons


def _run(validity: str, mode: str = "performance") -> RunInput:
    manifest = Manifest.model_validate({"round": "v4.0", "benchmark": "llama2-70b-99", "scenario": "Server",
                                        "mode": mode, "backend": "trtllm", "submittable": True,
                                        "status": RunStatus.COMPLETED.value,
                                        "result": {"result_validity": validity}})
    return RunInput(Path("runs/server-perf"), manifest)


def test_an_invalid_server_run_is_not_submittable_and_named() -> None:
    reasons = _reasons(_run("INVALID"), "performance")
    assert reasons == ["runs/server-perf: LoadGen result is INVALID (result_validity INVALID): an INVALID result"]


def test_a_valid_run_and_an_accuracy_run_give_no_reason() -> None:
    assert _reasons(_run("VALID"), "performance") == []
    assert _reasons(_run("INVALID", mode="accuracy"), "accuracy") == []
