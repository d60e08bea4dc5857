"""harness.run_record: the starting manifest, the input files, the model hash and its progress lines."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness import artifacts, run_record
from harness.artifacts import RunArtifacts
from harness.config import build_config
from harness.errors import ConfigError
from harness.model_files import embedded_model


def test_the_starting_manifest_redacts_the_command_and_names_the_embedded_model_swap() -> None:
    manifest = run_record.new_manifest(build_config({}), ["harness", "run", "--set", "backend.api_key=sk-secret1"])
    assert "sk-secret1" not in " ".join(manifest.command)
    assert "model: SmolLM2-135M-Instruct instead of Llama-2-70b-chat-hf" in manifest.deviations
    assert manifest.status.value == "running" and manifest.versions["python"]


def test_the_model_hash_is_the_loaded_files_sha256_and_none_for_a_backend_without_model_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    gguf = embedded_model()
    assert gguf.gguf_file is not None
    details = run_record.model_details(build_config({"backend": {"kind": "hf"}}), show_progress=False)
    assert details["model_sha256"] == hashlib.sha256((gguf.directory / gguf.gguf_file).read_bytes()).hexdigest()
    assert run_record.model_details(build_config({"backend": {"kind": "fake"}}), show_progress=False) == {}


def test_progress_lines_only_for_large_uncached_checkpoints(capsys: pytest.CaptureFixture[str]) -> None:
    run_record._hash_progress(0, run_record.HASH_NOTICE_BYTES - 1)
    assert capsys.readouterr().err == ""
    run_record._hash_progress(0, 3 << 30)
    run_record._hash_progress(1 << 30, 3 << 30)
    err = capsys.readouterr().err
    assert "hashing the model files once (3.0 GiB" in err and "1.0 of 3.0 GiB" in err


def test_inputs_are_written_and_an_offline_blowup_is_refused_before_loadgen(tmp_path: Path) -> None:
    run = RunArtifacts(artifacts.create_run_dir(tmp_path / "run", False))
    mlperf_conf, user_conf, _ = run_record.write_inputs(build_config({"round": "v4.0"}), run, 8)
    assert mlperf_conf is not None and mlperf_conf.is_file() and user_conf.is_file()
    assert run_record.write_inputs(build_config({}), RunArtifacts(artifacts.create_run_dir(tmp_path / "r1", False)),
                                   8)[0] is None  # v6.1: LoadGen carries the mlperf.conf
    assert (tmp_path / "run" / artifacts.CONFIG).is_file()
    blowup = build_config({"round": "v4.1", "scenario": "Offline", "mode": "performance"})  # mlperf.conf's QPS
    with pytest.raises(ConfigError, match="equal-issue padding bug"):
        run_record.write_inputs(blowup, RunArtifacts(artifacts.create_run_dir(tmp_path / "run2", False)), 24576)
