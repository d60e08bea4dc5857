"""The packager takes the hand-written measurements keys and notes from measurements/<system>/<bench>/<scenario>/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from submission.measurements import hand_kept
from submission.package import PackageRequest, package_submission
from tests.unit.submission import trees

BENCH = "llama2-70b-99.9"
KEYS = {"starting_weights_filename": "meta-llama/Llama-2-70b-chat-hf", "weight_transformations": "none",
        "weight_data_types": "fp32"}


def _system(root: Path, division: str, keys: dict[str, str] | None = KEYS, notes: str = "") -> Path:
    """A systems/ + measurements/ pair under root, as a submitter keeps them."""
    system = root / "systems" / trees.SYSTEM.name
    system.parent.mkdir(parents=True)
    system.write_text(json.dumps({**json.loads(trees.SYSTEM.read_text()), "division": division}))
    for scenario in ("Offline", "Server"):
        folder = root / "measurements" / trees.SYSTEM.stem / BENCH / scenario
        folder.mkdir(parents=True)
        if keys is not None:
            (folder / "measurements.json").write_text(json.dumps(keys))
        if notes:
            (folder / "README.md").write_text(notes)
    return system


def _package(tmp_path: Path, system: Path, division: str, measurements: Path | None = None) -> Path:
    out = tmp_path / "tree"
    package_submission(PackageRequest("v6.1", "MyOrg", system, list(trees.fake_runs().values()), out,
                                      allow_unsubmittable=True, division=division, measurements_file=measurements))
    return out / division / "MyOrg" / "results" / trees.SYSTEM.stem / BENCH


def test_the_folder_fills_the_measurements_json_and_the_readme(tmp_path: Path) -> None:
    system = _system(tmp_path / "kept", "closed", notes="Calibrated on the 1,000-sample calibration set.")
    results = _package(tmp_path, system, "closed")
    for scenario in ("Offline", "Server"):
        written = json.loads((results / scenario / "measurements.json").read_text())
        assert {k: written[k] for k in KEYS} == KEYS
        readme = (results / scenario / "README.md").read_text()
        assert "## Calibration and tuning notes" in readme and "1,000-sample calibration set" in readme
        assert "measurements JSON's starting_weights_filename" not in readme  # no closed reason for the keys


def test_measurements_flag_wins_and_a_missing_folder_gives_the_closed_reason(tmp_path: Path) -> None:
    flag = tmp_path / "m.json"
    flag.write_text(json.dumps({"weight_data_types": "bf16"}))
    results = _package(tmp_path, _system(tmp_path / "kept", "closed"), "closed", flag)
    assert json.loads((results / "Offline" / "measurements.json").read_text())["weight_data_types"] == "bf16"
    bare = _package(tmp_path / "bare", _system(tmp_path / "bare-kept", "closed", keys=None), "closed")
    assert "measurements JSON's starting_weights_filename" in (bare / "Offline" / "README.md").read_text()


def test_nothing_outside_the_systems_measurements_folder_is_read(tmp_path: Path) -> None:
    system = _system(tmp_path / "kept", "closed", keys=None)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(KEYS))
    (tmp_path / "kept/measurements" / trees.SYSTEM.stem / BENCH / "Offline/measurements.json").symlink_to(secret)
    with pytest.raises(InputError, match="leads outside"):
        hand_kept(system, BENCH, "Offline")


@pytest.mark.parametrize(("content", "message"), [
    ('{"weight_data_type": "fp8"}', "unknown keys ['weight_data_type']"),
    ('{"weight_data_types": "TBD"}', 'weight_data_types is "TBD"; expected a meaningful string'),
    ("not json", "cannot be read as JSON"),
])
def test_bad_hand_written_keys_are_one_line(tmp_path: Path, content: str, message: str) -> None:
    system = _system(tmp_path / "kept", "closed", keys=None)
    (tmp_path / "kept/measurements" / trees.SYSTEM.stem / BENCH / "Server/measurements.json").write_text(content)
    with pytest.raises(InputError) as caught:
        hand_kept(system, BENCH, "Server")
    assert message in caught.value.message and "\n" not in caught.value.message


def test_the_shipped_folders_hold_complete_hand_written_keys() -> None:
    from submission.measurements import HAND_WRITTEN, MeasurementsInfo

    for folder in sorted((trees.REPO / "measurements").glob("*/*/*")):
        system = trees.REPO / "systems" / f"{folder.parents[1].name}.json"
        kept = hand_kept(system, folder.parent.name, folder.name)
        assert set(HAND_WRITTEN) <= set(kept.keys) and kept.notes
        MeasurementsInfo.model_validate(kept.keys)
