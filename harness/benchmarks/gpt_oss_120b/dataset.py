"""gpt-oss-120b's datasets: the MLCommons parquet (or pickle) files of harmony-formatted prompt ids, validated.

The download (``mlcr get-dataset-mlperf-inference-gpt-oss``) holds one DataFrame per purpose: the performance set
(``perf/perf_eval_ref.parquet``, 6,396 prompts, reasoning effort low), the accuracy set
(``acc/acc_eval_inputs.parquet``, 4,395 prompts: AIME25 x8, GPQA-Diamond x5, LiveCodeBench v6 x3, effort high) and
TEST07's GPQA set (``acc/acc_eval_compliance_gpqa.parquet``, 990). Columns, as
language/gpt-oss-120b/utils/tokenization.py reads them: the prompt ids in ``input_tokens`` (v4.0 of the data and later)
or ``tok_input`` (earlier), ``dataset`` (the source set's name) and ``ground_truth`` (answer letter, number or
LiveCodeBench question id). The prompt ids were written by MLCommons with the harmony renderer and are used exactly
as they are, never re-rendered. Parquet is read as data (pyarrow); a pickle goes through the restricted unpickler.
Every row used is checked, with one-line errors naming the file, the row and the column.

``dataset.path`` may be a file or the download's folder: the folder gives the run's file (performance, accuracy or
TEST07's set). Also here: the project's own smoke set of invented questions (SMOKE_FILE) for the embedded model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness.benchmarks.gpt_oss_120b.extraction import Reference
from harness.benchmarks.gpt_oss_120b.facts import ACCURACY_FILE, PERFORMANCE_FILE, TEST07_FILE
from harness.benchmarks.pickles import read_dataframe_pickle, read_file_bytes
from harness.errors import InputError

__all__ = ["PROMPT_COLUMNS", "SMOKE_CHAT_TEMPLATE", "SMOKE_FILE", "SmokeQuestion", "dataset_bytes", "oracle_text",
           "read_rows", "resolve_path", "smoke_entries", "smoke_for_test", "smoke_references"]

PROMPT_COLUMNS = ("input_tokens", "tok_input")  # the reference's order of preference
VOCAB_SIZE = 201088  # o200k_harmony's ids (gpt-oss-120b's config.json vocab_size): every prompt id is below it
SMOKE_FILE = "data/smoke_gpt_oss.json"  # inside the harness package
SMOKE_CHAT_TEMPLATE = True  # harmony prompts are chat prompts: a non-harmony model gets its own chat template
_WHAT = "gpt-oss-120b dataset"
_FILES = f"{PERFORMANCE_FILE} (performance), {ACCURACY_FILE} (accuracy), {TEST07_FILE} (TEST07)"


@dataclass(frozen=True)
class SmokeQuestion:
    """One question of the embedded smoke set, in the shape of an accuracy-set row."""

    id: str
    system_prompt: str
    question: str
    dataset: str
    ground_truth: str

    @property
    def output(self) -> str:
        """The reference answer (what the smoke set's references hold)."""
        return self.ground_truth


def smoke_entries() -> list[SmokeQuestion]:
    """The smoke set: AIME-, GPQA- and LiveCodeBench-style questions written for this project."""
    raw = json.loads(resources.files("harness").joinpath(SMOKE_FILE).read_text(encoding="utf-8"))
    return [SmokeQuestion(e["id"], e.get("system_prompt", ""), e["question"], e["dataset"], e["ground_truth"])
            for e in raw]


def smoke_for_test(entries: Sequence[SmokeQuestion], test: str) -> list[SmokeQuestion]:
    """The smoke entries of a compliance test with a set of its own: TEST07 runs on GPQA questions only."""
    return [e for e in entries if "gpqa" in e.dataset] if test == "TEST07" else list(entries)


def smoke_references(entries: Sequence[SmokeQuestion]) -> list[Reference]:
    """What the scorer compares each smoke answer with."""
    return [Reference(e.dataset, e.ground_truth) for e in entries]


# The fake backend's oracle: for LiveCodeBench a program that echoes its input, which solves the synthetic problems
# the tests write (each expected output equals its input); a real problem it fails, as a fake should.
ECHO_PROGRAM = "import sys\nsys.stdout.write(sys.stdin.read())\n"


def oracle_text(reference: Reference) -> str:
    """An answer in harmony's final channel that the reference's extraction reads as the ground truth."""
    if "livecodebench" in reference.dataset:
        body = f"```python\n{ECHO_PROGRAM}```"
    elif "aime" in reference.dataset:
        body = f"The answer is \\boxed{{{reference.ground_truth}}}."
    elif reference.dataset:
        body = f"Answer: {reference.ground_truth}"
    else:
        body = "done"
    return f"<|channel|>final<|message|>{body}<|return|>"


def resolve_path(path: Path, *, accuracy: bool, compliance_test: str | None = None) -> Path:
    """The file a run reads: `path` itself, or in the download's folder the set of the run's purpose."""
    if not path.is_dir():
        return path
    name = TEST07_FILE if compliance_test == "TEST07" else ACCURACY_FILE if accuracy else PERFORMANCE_FILE
    for candidate in (path / name, path / Path(name).name, (path / name).with_suffix(".pkl")):
        if candidate.is_file():
            return candidate
    raise InputError(f"dataset folder {path} has no {name}; expected the MLCommons gpt-oss download there",
                     hint=f"download it with `mlcr get-dataset-mlperf-inference-gpt-oss,_mlc,_r2-downloader` or set "
                          f"dataset.path to one of {_FILES}")


def dataset_bytes(path: Path) -> bytes:
    """The file's bytes (for its sha256)."""
    return read_file_bytes(path, _WHAT, _FILES)


def _frame(path: Path) -> Any:
    if path.suffix == ".parquet":
        import pandas as pd

        read_file_bytes(path, _WHAT, _FILES)  # a missing, unreadable or oversized file: one line
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as err:
            raise InputError(f"{_WHAT} {path} is not a readable parquet file ({str(err).splitlines()[0]})",
                             hint=f"download it again; expected one of {_FILES}") from None
    if path.suffix in (".pkl", ".pickle"):
        return read_dataframe_pickle(path, _WHAT, _FILES, ("dataset",))
    raise InputError(f"{_WHAT} {path} is neither .parquet nor .pkl", hint=f"set dataset.path to one of {_FILES}")


def _prompt_column(path: Path, frame: Any) -> str:
    for column in PROMPT_COLUMNS:
        if column in frame.columns:
            return column
    raise InputError(f"{_WHAT} {path} has no prompt ids (columns {', '.join(map(str, frame.columns))}); expected "
                     f"{' or '.join(PROMPT_COLUMNS)}", hint=f"use the MLCommons files: {_FILES}")


def _ids(path: Path, row: int, column: str, value: Any) -> tuple[int, ...]:
    try:
        ids = tuple(int(i) for i in value)
        ok = bool(ids) and all(0 <= i < VOCAB_SIZE and i == v for i, v in zip(ids, value, strict=True))
    except (TypeError, ValueError, OverflowError):
        ok, ids = False, ()
    if not ok:
        shown = repr(value)[:60]
        raise InputError(f"{_WHAT} {path} row {row}: {column} is {shown}; expected a non-empty list of token ids "
                         f"below {VOCAB_SIZE}", hint=f"use the MLCommons files unchanged: {_FILES}")
    return ids


def _text(path: Path, row: int, column: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"{_WHAT} {path} row {row}: {column} is {value!r:.60}; expected text",
                         hint=f"use the MLCommons files unchanged: {_FILES}")
    return value


def _truth(path: Path, row: int, value: Any) -> str:
    """ground_truth as text: a letter, a question id, or an AIME number (stored as a number or as text)."""
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if number == number and number == int(number):
        return str(int(number))
    raise InputError(f"{_WHAT} {path} row {row}: ground_truth is {str(value)[:60]}; expected text or a whole number",
                     hint=f"use the MLCommons files unchanged: {_FILES}")


def read_rows(path: Path, count: int | None) -> tuple[list[tuple[int, ...]], list[Reference]]:
    """Prompt ids and references of the first `count` rows (all when None), each row checked."""
    frame = _frame(path)
    column = _prompt_column(path, frame)
    rows = len(frame) if count is None else min(count, len(frame))
    if rows == 0:
        raise InputError(f"{_WHAT} {path} has no rows", hint=f"use the MLCommons files: {_FILES}")
    prompts = [_ids(path, i, column, frame[column].iloc[i]) for i in range(rows)]
    has_truth = "dataset" in frame.columns and "ground_truth" in frame.columns
    references = [Reference(_text(path, i, "dataset", frame["dataset"].iloc[i]),
                            _truth(path, i, frame["ground_truth"].iloc[i])) if has_truth
                  else Reference("", "")  # the performance set needs no answers
                  for i in range(rows)]
    return prompts, references
