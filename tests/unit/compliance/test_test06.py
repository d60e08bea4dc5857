"""compliance.test06: the three TEST06 checks on hand-built logs, each quirk of run_verification.py.

Every case carries a hand-computed expectation (CI runs these); test_official_script_agrees runs the
official v4.0 script on the same logs when the MLCommons mirror is present and demands the same lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compliance.results import EOS, FIRST_TOKEN, SAMPLE_LENGTH
from compliance.test06 import AUDIT_CONFIG, VerifySettings, load_entries, trailing_eos, verify_entries, verify_log
from harness.errors import InputError
from tests.unit.compliance.compliance_logs import entry, hexed


def lines(first: str, eos: bool, length: bool) -> list[str]:
    """The four lines the official script writes for these verdicts (computed by hand, not by our code)."""
    ok = first in ("True", "Skipped") and eos and length
    return [f"First token check pass: {first}", f"EOS check pass: {eos}", f"Sample length check pass: {length}",
            "TEST06 verification complete" if ok else "TEST06 verification failed"]


CRASH = None  # the official script raises in the sample-length check and writes nothing

# name, scenario, dtype, JSON value of mlperf_log_accuracy.json, expected lines (or CRASH)
CASES: list[tuple[str, str, str, Any, list[str] | None]] = [
    ("clean offline", "Offline", "int32", [entry(0, [5, 6, 2]), entry(1, [7, 8, 9])], lines("Skipped", True, True)),
    ("clean server", "Server", "int32", [entry(0, [5, 6, 2], first=[5])], lines("True", True, True)),
    ("doubled trailing EOS", "Offline", "int32", [entry(0, [5, 6, 2]), entry(1, [5, 6, 2, 2])],
     lines("Skipped", False, True)),
    ("EOS as the only element", "Server", "int32", [entry(0, [2], first=[2])], lines("True", True, True)),
    ("two EOS only: element 0 is never examined", "Offline", "int32", [entry(0, [2, 2])],
     lines("Skipped", True, True)),
    ("three EOS only", "Offline", "int32", [entry(0, [2, 2, 2])], lines("Skipped", False, True)),
    ("EOS inside, one at the end", "Offline", "int32", [entry(0, [2, 2, 7, 2])], lines("Skipped", True, True)),
    ("single-element buffer", "Server", "int32", [entry(0, [7], first=[7])], lines("True", True, True)),
    ("single-element buffer, other first token", "Server", "int32", [entry(0, [7], first=[8])],
     lines("False", True, True)),
    ("missing token_data in Server", "Server", "int32", [entry(0, [5, 6, 2])], lines("False", True, True)),
    ("missing token_data in Offline", "Offline", "int32", [entry(0, [5, 6, 2])], lines("Skipped", True, True)),
    ("empty token_data", "Server", "int32", [entry(0, [5, 6, 2], first=[])], lines("True", True, True)),
    ("token_data longer than data: zip stops early", "Server", "int32", [entry(0, [5, 6], first=[5, 6, 7])],
     lines("True", True, True)),
    ("first token differs from the final buffer", "Server", "int32",
     [entry(0, [5, 6, 2], first=[5]), entry(1, [6, 7, 2], first=[5])], lines("False", True, True)),
    ("n_tokens off by one", "Offline", "int32", [entry(0, [5, 6, 2]), entry(1, [5, 6, 2], count=4)],
     lines("Skipped", True, False)),
    ("length mismatch before a sample without token_count: no crash", "Offline", "int32",
     [entry(0, [5, 6, 2], count=2), {"seq_id": 1, "qsl_idx": 1, "data": hexed([5, 2])}],
     lines("Skipped", True, False)),
    ("no token_count in the first sample", "Offline", "int32",
     [{"seq_id": 0, "qsl_idx": 0, "data": hexed([5, 2])}], CRASH),
    ("data not a whole number of int32", "Offline", "int32", [{"seq_id": 0, "qsl_idx": 0, "data": "AABBCC",
                                                               "token_count": 1}], CRASH),
    ("int64 buffers read as int32", "Offline", "int32", [entry(0, [5, 6, 2], dtype="int64")],
     lines("Skipped", True, False)),
    ("int64 buffers read as int64", "Server", "int64", [entry(0, [5, 6, 2, 2], first=[5], dtype="int64")],
     lines("True", False, True)),
    ("float32 buffers", "Server", "float32", [entry(0, [5, 6, 2, 2], first=[5], dtype="float32")],
     lines("True", False, True)),
    ("int16 buffers", "Offline", "int16", [entry(0, [5, 6, 2], dtype="int16")], lines("Skipped", True, True)),
    ("empty log", "Server", "int32", [], lines("True", True, True)),
    ("empty buffers", "Server", "int32", [entry(0, [], first=[])], lines("True", True, True)),
    ("token_count as a string", "Offline", "int32", [entry(0, [5, 2]) | {"token_count": "2"}],
     lines("Skipped", True, True)),
    ("lower-case hex", "Offline", "int32", [entry(0, [5, 2]) | {"data": hexed([5, 2]).lower()}],
     lines("Skipped", True, True)),
    ("an empty JSON object instead of a list", "Offline", "int32", {}, lines("Skipped", True, True)),
    ("entries that are not objects", "Server", "int32", ["x"], CRASH),
    ("undecodable first-token report only", "Server", "int32",
     [entry(0, [5, 2]) | {"token_data": "ABC"}], lines("False", True, True)),
]
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize(("name", "scenario", "dtype", "log", "expected"), CASES, ids=IDS)
def test_verdicts_match_hand_computed_lines(name: str, scenario: str, dtype: str, log: Any,
                                            expected: list[str] | None) -> None:
    settings = VerifySettings(scenario, dtype)
    if expected is CRASH:
        with pytest.raises(InputError, match="crashes on this log"):
            verify_entries(list(log), settings)
    else:
        assert verify_entries(list(log), settings).verdict.lines() == expected


@pytest.mark.parametrize(("name", "scenario", "dtype", "log", "expected"), CASES, ids=IDS)
def test_official_script_agrees(name: str, scenario: str, dtype: str, log: Any, expected: list[str] | None,
                                official: Any, write_log: Any) -> None:
    directory = write_log(log)
    assert official(directory, scenario, dtype) == expected


@pytest.mark.parametrize(("tokens", "count"), [([], 0), ([2], 0), ([2, 2], 1), ([5, 2], 1), ([5, 2, 2], 2),
                                               ([2, 2, 2], 2), ([5, 2, 7], 0), ([5, 2, 2, 2, 2], 4)])
def test_trailing_eos_never_counts_element_zero(tokens: list[int], count: int) -> None:
    assert trailing_eos(tokens, 2) == count


def test_findings_name_the_failing_samples_and_their_tokens() -> None:
    log = [entry(0, [5, 6, 2]), entry(17, [9, 8, 2, 2], first=[9]), entry(4, [3, 2], first=[4]),
           entry(9, [3, 4, 2], count=2, first=[3])]
    result = verify_entries(log, VerifySettings("Server"))
    found = {(f.check, f.qsl_idx) for f in result.findings}
    assert found == {(FIRST_TOKEN, 0), (EOS, 17), (FIRST_TOKEN, 4), (SAMPLE_LENGTH, 9)}
    eos = next(f for f in result.findings if f.check == EOS)
    assert eos.tokens == (9, 8, 2, 2) and "2 trailing EOS" in eos.reason
    first = next(f for f in result.findings if f.qsl_idx == 4)
    assert "(4 vs 3)" in first.reason and first.tokens[0] == 3
    missing = next(f for f in result.findings if f.qsl_idx == 0)
    assert "no token_data field" in missing.reason
    assert set(result.causes) == {FIRST_TOKEN, EOS, SAMPLE_LENGTH}


def test_eos_override_changes_which_token_is_padding() -> None:
    log = [entry(0, [5, 0, 0])]
    assert verify_entries(log, VerifySettings("Offline", eos_token_id=0)).verdict.eos is False
    assert verify_entries(log, VerifySettings("Offline")).verdict.eos is True


def test_wrong_dtype_cause_names_the_real_element_size() -> None:
    result = verify_entries([entry(0, [5, 6, 2], dtype="int64"), entry(1, [5, 2], dtype="int64")],
                            VerifySettings("Offline", "int32"))
    assert not result.verdict.sample_length
    assert "8-byte elements" in result.causes[SAMPLE_LENGTH]


def test_empty_log_passes_with_a_warning() -> None:
    result = verify_entries([], VerifySettings("Offline"))
    assert result.passed and result.warnings and "no entries" in result.warnings[0]


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(InputError, match="float64"):
        verify_entries([], VerifySettings("Offline", "float64"))


def test_load_entries_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_entries(tmp_path / "mlperf_log_accuracy.json")
    truncated = tmp_path / "t.json"
    truncated.write_text('[{"seq_id": 0, "qsl_idx": 0, "da')
    with pytest.raises(InputError, match="not valid JSON"):
        load_entries(truncated)
    number = tmp_path / "n.json"
    number.write_text("5")
    with pytest.raises(InputError, match="JSON int"):
        load_entries(number)


def test_verify_log_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mlperf_log_accuracy.json"
    path.write_text(json.dumps([entry(3, [5, 6, 2, 2])]))
    result = verify_log(path, VerifySettings("Offline"))
    assert result.verdict.lines()[1] == "EOS check pass: False" and result.findings[0].qsl_idx == 3


def test_audit_config_carries_the_official_values() -> None:
    values = dict(line.split(" = ") for line in AUDIT_CONFIG.splitlines() if line and not line.startswith("#"))
    assert values == {"*.*.mode": "2", "*.*.accuracy_log_rng_seed": "720381539243781796",
                      "*.*.accuracy_log_sampling_target": "100", "*.*.min_query_count": "100",
                      "*.*.min_duration": "0", "*.*.sample_concatenate_permutation": "0"}


def test_hex_helper_matches_loadgen_layout() -> None:
    assert hexed([5, 2]) == "0500000002000000"
    assert np.frombuffer(bytes.fromhex(hexed([5, 2], "int64")), dtype=np.int64).tolist() == [5, 2]
