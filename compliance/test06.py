"""TEST06: the audit settings and the three checks of run_verification.py over an accuracy log.

The checks follow inference@v4.0 ``compliance/nvidia/TEST06/run_verification.py`` verdict for verdict,
quirks included (shared/docs/mlperf-rules.md §4.4), but record every failing sample instead of stopping
at the first one:

- EOS check: walk back from the last element while it equals EOS, never looking at element 0; two or
  more trailing EOS fail. A sample whose buffer cannot be decoded fails the check.
- First-token check (every scenario but Offline): ``token_data`` and ``data`` agree on their common
  prefix. A missing or undecodable ``token_data`` fails the check.
- Sample-length check: ``len(data) == int(token_count)``. The official script does not guard this
  check: when the first sample that does not pass it cannot be read at all, the script crashes and
  writes nothing. ``verify_log`` raises InputError there, so it writes nothing either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compliance.results import (
    EOS,
    FIRST_TOKEN,
    SAMPLE_LENGTH,
    TEST06,
    ComplianceResult,
    SampleFinding,
    Test06Verdict,
)
from harness.errors import InputError

# inference@v4.0:compliance/nvidia/TEST06/audit.config (identical at v5.1 and HEAD).
AUDIT_CONFIG = """\
# TEST06 audit settings written by `compliance run TEST06` (MLCommons compliance/nvidia/TEST06).
*.*.mode = 2
*.*.accuracy_log_rng_seed = 720381539243781796
*.*.accuracy_log_sampling_target = 100
*.*.min_query_count = 100
*.*.min_duration = 0
*.*.sample_concatenate_permutation = 0
"""

DTYPES: dict[str, Any] = {"int64": np.int64, "int32": np.int32, "int16": np.int16, "float32": np.float32}
LLAMA2_EOS = 2
SHOWN_TOKENS = 8

CAUSES = {
    FIRST_TOKEN: "the final response does not start with the token sent through FirstTokenComplete: "
                 "report the whole generated sequence (first token included) in the final buffer, in the "
                 "same dtype as the first-token buffer (the v4.0 reference SUTServer gets both wrong)",
    EOS: "the SUT pads or repeats EOS at the end of answers: trim the output at the first EOS and keep "
         "exactly one before calling QuerySamplesComplete",
    SAMPLE_LENGTH: "the n_tokens reported in QuerySampleResponse differs from the number of elements in "
                   "the buffer: count the tokens of the buffer actually sent (after trimming, in its dtype)",
}


@dataclass(frozen=True)
class VerifySettings:
    """How to read a log: scenario (decides the first-token check), buffer dtype and EOS id."""

    scenario: str
    dtype: str = "int32"
    eos_token_id: int = LLAMA2_EOS

    @property
    def first_token_checked(self) -> bool:
        """Every scenario except Offline reports a first token."""
        return self.scenario != "Offline"

    def describe(self) -> str:
        """e.g. 'scenario=Server dtype=int32 eos=2'."""
        return f"scenario={self.scenario} dtype={self.dtype} eos={self.eos_token_id}"


class _Unreadable(Exception):
    """A sample's fields cannot be read the way the official script reads them."""


def _decode(sample: Any, key: str, dtype: Any) -> list[Any]:
    """A hex field of a log entry as a list of dtype elements (native byte order, like numpy)."""
    try:
        return np.frombuffer(bytes.fromhex(sample[key]), dtype=dtype).tolist()  # type: ignore[no-any-return]
    except Exception as err:  # the official script fails the check on any exception
        raise _Unreadable(_why_unreadable(sample, key, err)) from None


def _why_unreadable(sample: Any, key: str, err: Exception) -> str:
    if not isinstance(sample, dict):
        return f"entry is a {type(sample).__name__}, not a JSON object"
    if key not in sample:
        return f"no {key} field"
    return f"{key} cannot be decoded ({err})"


def trailing_eos(tokens: list[Any], eos: int) -> int:
    """EOS elements at the end of the buffer; element 0 is never counted (the official walk stops at 1)."""
    count = 0
    for token in reversed(tokens[1:]):
        if token != eos:
            break
        count += 1
    return count


def _eos_problem(sample: Any, settings: VerifySettings, dtype: Any) -> tuple[str, list[Any]] | None:
    tokens = _decode(sample, "data", dtype)
    count = trailing_eos(tokens, settings.eos_token_id)
    if count < 2:
        return None
    return f"{count} trailing EOS ({settings.eos_token_id}) at the end of a {len(tokens)}-token answer", \
        tokens[-SHOWN_TOKENS:]


def _first_token_problem(sample: Any, settings: VerifySettings, dtype: Any) -> tuple[str, list[Any]] | None:
    tokens = _decode(sample, "data", dtype)
    reported = _decode(sample, "token_data", dtype)
    for position, (final, first) in enumerate(zip(tokens, reported, strict=False)):
        if final != first:
            return (f"first-token report {reported[:SHOWN_TOKENS]} differs from the final answer at "
                    f"element {position} ({first} vs {final})", tokens[:SHOWN_TOKENS])
    return None


def _length_problem(sample: Any, settings: VerifySettings, dtype: Any) -> tuple[str, list[Any]] | None:
    tokens = _decode(sample, "data", dtype)
    try:
        count = int(sample["token_count"])
    except Exception as err:
        raise _Unreadable("no token_count field" if isinstance(err, KeyError)
                          else f"token_count {sample['token_count']!r} is not an integer") from None
    if len(tokens) == count:
        return None
    return f"token_count {count} but the buffer holds {len(tokens)} {settings.dtype} elements", \
        tokens[-SHOWN_TOKENS:]


Problem = Callable[[Any, VerifySettings, Any], "tuple[str, list[Any]] | None"]


def _scan(samples: list[Any], check: str, problem: Problem, settings: VerifySettings
          ) -> tuple[list[SampleFinding], int | None]:
    """Findings of one check over all samples, and the position of the first unreadable sample."""
    dtype = DTYPES[settings.dtype]
    findings: list[SampleFinding] = []
    first_unreadable: int | None = None
    for position, sample in enumerate(samples):
        try:
            found = problem(sample, settings, dtype)
        except _Unreadable as err:
            found = (f"unreadable entry: {err}", [])
            first_unreadable = position if first_unreadable is None else first_unreadable
        if found is not None:
            reason, tokens = found
            findings.append(SampleFinding(check, _field(sample, "qsl_idx"), _field(sample, "seq_id"),
                                          position, tuple(tokens), reason))
    return findings, first_unreadable


def _field(sample: Any, key: str) -> object:
    return sample.get(key) if isinstance(sample, dict) else None


def verify_entries(samples: list[Any], settings: VerifySettings, source: str = "log") -> ComplianceResult:
    """Run the three checks over the parsed entries of an accuracy log."""
    if settings.dtype not in DTYPES:
        raise InputError(f"dtype {settings.dtype!r} is not one run_verification.py knows; "
                         f"expected one of {', '.join(DTYPES)}")
    eos, _ = _scan(samples, EOS, _eos_problem, settings)
    first: list[SampleFinding] = []
    if settings.first_token_checked:
        first, _ = _scan(samples, FIRST_TOKEN, _first_token_problem, settings)
    length, unreadable = _scan(samples, SAMPLE_LENGTH, _length_problem, settings)
    if unreadable is not None and unreadable == length[0].position:
        bad = length[0]
        raise InputError(
            f"{source}: entry {bad.position} (qsl_idx {bad.qsl_idx}) cannot be read for the sample-length "
            f"check: {bad.reason.removeprefix('unreadable entry: ')}; the official run_verification.py "
            "crashes on this log and writes no verify_accuracy.txt",
            hint="every entry needs hex 'data' (a whole number of elements of the dtype) and 'token_count'",
        )
    verdict = Test06Verdict(first_token=not first if settings.first_token_checked else None,
                            eos=not eos, sample_length=not length)
    findings = (*first, *eos, *length)
    causes = {name: CAUSES[name] for name in {f.check for f in findings}}
    if length:
        causes[SAMPLE_LENGTH] = _length_cause(samples, settings)
    warnings = () if samples else ("the accuracy log has no entries: every check passes vacuously, as in "
                                   "the official script, but an audit run logs about 100 samples",)
    return ComplianceResult(TEST06, verdict, findings, causes, warnings, len(samples), settings.describe())


def _length_cause(samples: list[Any], settings: VerifySettings) -> str:
    """The sample-length cause, naming the element size the buffers really have when it is consistent."""
    itemsize = np.dtype(DTYPES[settings.dtype]).itemsize
    sizes: set[int] = set()
    for sample in samples:
        try:
            size, count = len(bytes.fromhex(sample["data"])), int(sample["token_count"])
        except Exception:
            continue
        sizes.add(size // count if count > 0 and size % count == 0 else 0)
    if len(sizes) == 1 and (size := sizes.pop()) in (2, 4, 8) and size != itemsize:
        return (f"the buffers hold {size}-byte elements but are read as {settings.dtype} ({itemsize} bytes): "
                "the response dtype recorded for the run (or --dtype) does not match what the SUT sent")
    return CAUSES[SAMPLE_LENGTH]


def load_entries(path: Path) -> list[Any]:
    """The entries of mlperf_log_accuracy.json, read as the official script reads them (json.load)."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; expected the TEST06 run's mlperf_log_accuracy.json",
                         hint="pass the run directory of a `compliance run TEST06` (or a directory with the log)")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err}); the run may have died while logging",
                         hint="re-run the audit test; the official script cannot read this log either") from None
    try:
        return list(raw)
    except TypeError:
        raise InputError(f"{path} holds a JSON {type(raw).__name__}; expected a list of accuracy entries") from None


def verify_log(path: Path, settings: VerifySettings) -> ComplianceResult:
    """Verify one mlperf_log_accuracy.json."""
    return verify_entries(load_entries(path), settings, source=str(path))
