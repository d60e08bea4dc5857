"""Stage fingerprints and the state file (harness/pipeline/fingerprint.py, state.py)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.config import apply_overrides, load_config
from harness.pipeline import fingerprint as fp
from harness.pipeline.state import StateFile


def test_file_hashes_are_memoised_until_size_or_mtime_changes(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "a.bin").write_bytes(b"weights")
    hashed: list[Path] = []
    hasher = fp.FileHasher({}, hashed.append)
    first = hasher.tree(model)
    assert hasher.tree(model) == first and len(hashed) == 1
    (model / "a.bin").write_bytes(b"WEIGHTS")
    os.utime(model / "a.bin", ns=(1, 1))
    assert hasher.tree(model) != first and len(hashed) == 2


def test_the_config_hash_ignores_where_a_run_is_written_but_not_what_it_runs() -> None:
    config = load_config(None, ["backend.kind=fake"])
    moved = apply_overrides(config, ["output_dir=/elsewhere", "overwrite=true", "cache=/c"])
    changed = apply_overrides(config, [f"generation.max_new_tokens={config.generation.max_new_tokens + 1}"])
    assert fp.config_hash(moved) == fp.config_hash(config) != fp.config_hash(changed)


def test_run_inputs_name_config_model_dataset_and_harness_version(tmp_path: Path) -> None:
    data = tmp_path / "orca.pkl"
    data.write_bytes(b"not really a pickle")
    config = load_config(None, ["backend.kind=fake", f"dataset.path={data}"])
    inputs = fp.run_inputs("accuracy", config, fp.FileHasher({}))
    assert set(inputs) == {"kind", "config", "model", "dataset", "harness"}
    assert inputs["dataset"] == fp.sha256_text("not really a pickle")
    data.write_bytes(b"another dataset")
    assert fp.run_inputs("accuracy", config, fp.FileHasher({}))["dataset"] != inputs["dataset"]


def test_the_state_file_is_rewritten_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "pipeline-state.json"
    state = StateFile(path)
    state.start("a/b/accuracy", "f1", {"config": "c"}, ["cmd"], "out")
    state.finish("a/b/accuracy", "completed", result="r1", verdict="pass", exit_code=0)
    again = StateFile(path).record("a/b/accuracy")
    assert again is not None and (again.status, again.fingerprint, again.result) == ("completed", "f1", "r1")
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline-state.json"]  # no temp files left
