"""Answer extraction and per-answer verdicts of gpt-oss-120b's reference scorer, one function per reference rule.

Source: mlcommons/inference language/gpt-oss-120b/eval_accuracy.py (HEAD; shared/docs/field-2026.md §4.2), whose
``DATASET_EVALUATORS`` eval_mlperf_accuracy.py uses: the row's ``dataset`` (lower-cased) picks the first evaluator
whose key is a substring of it, in the order gpqa, mmlu_pro, math500, aime, livecodebench, mmlu.

- multiple choice (gpqa: A-D; mmlu, mmlu_pro: A-J): the harmony final channel
  (``<|channel|>final...<|message|>`` up to ``<|return|>`` or the end) if present, else the whole text; markdown bold
  removed; ``['...']`` wrappers and literal ``\\n`` / ``\\'`` undone; then (1) a lone leading letter, (2) ``Answer: X``
  in that section, (3) the last ``ANSWER`` / ``FINAL ANSWER`` ``X`` in the whole text, (4) for A-J the last
  standalone letter of the section. Correct when the letter equals the upper-cased ground truth.
- aime: the whole text; the last ``\\boxed{digits}``, else the last ``Answer: digits`` (not followed by a dot);
  an integer 0-999, compared with ``int(ground_truth)``.
- livecodebench: the last fenced code block of the final section (a ```` ```python ```` block first, else any
  fenced block with a leading ``python`` / ``py`` line dropped), else the same search on the whole text; the code
  is then run against the problem's tests (livecodebench.py).
- math500 needs the PRM800K grader and is not part of gpt-oss-120b's accuracy set: refused as unsupported.

The regular expressions are the reference's, so the extraction matches it on every input, including its quirks
(e.g. ``re.IGNORECASE`` makes the leading-letter rule accept ``a`` to ``d``; AIME reads the whole text, not the final
section). The parity tests run the reference's own functions on generated answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import InputError

__all__ = ["EVALUATORS", "LIVECODEBENCH", "Reference", "evaluate_aime", "evaluate_multiple_choice", "evaluator_for",
           "extract_final_section", "judge_answer", "normalise_dataset", "parse_aime_answer", "parse_code",
           "parse_multiple_choice", "strip_markdown_bold"]

LIVECODEBENCH = "livecodebench"
# the reference's DATASET_EVALUATORS keys, in its (insertion) order: the first key contained in the name wins
EVALUATORS = ("gpqa", "mmlu_pro", "math500", "aime", LIVECODEBENCH, "mmlu")
_MAX_OPTION = {"gpqa": "D", "mmlu_pro": "J", "mmlu": "J"}
_VALID_OPTIONS = {"D": "ABCD", "J": "ABCDEFGHIJ"}

_FINAL = re.compile(r"<\|channel\|>final[^<]*<\|message\|>(.*?)(?:<\|return\|>|$)", re.DOTALL)
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_BOXED_INT = re.compile(r"\\boxed{\s*(\d+)\s*}")
_ANSWER_INT = re.compile(r"Answer:\s*(\d+)(?!\.)\b", re.IGNORECASE | re.MULTILINE)
_PYTHON_BLOCK = re.compile(r"```python(.*?)```", re.DOTALL)
_ANY_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
_LANGUAGE_LINE = re.compile(r"^(?:python|py)\s*\n", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    """One accuracy-set row as the scorer needs it: the parquet's ``dataset`` and ``ground_truth`` columns.

    ground_truth: the answer letter (GPQA), the integer as text (AIME) or the LiveCodeBench question_id.
    """

    dataset: str
    ground_truth: str


def normalise_dataset(dataset: str) -> str:
    """The reference's validate_dataset_name: the name lower-cased; an empty name is an InputError."""
    if dataset is None or not str(dataset):
        raise InputError("a reference row has an empty dataset name; expected e.g. aime25, gpqa_diamond or "
                         "livecodebench_v6", hint="load the references from the gpt-oss-120b accuracy parquet")
    return str(dataset).lower()


def evaluator_for(dataset: str) -> str:
    """The evaluator key of a dataset name (first key of EVALUATORS it contains), else an InputError."""
    name = normalise_dataset(dataset)
    key = next((k for k in EVALUATORS if k in name), None)
    if key is None:
        raise InputError(f"no gpt-oss-120b evaluator for dataset {dataset!r}; expected a name containing one of "
                         f"{', '.join(EVALUATORS)}", hint="the accuracy set's datasets are aime25, gpqa_diamond and "
                         "livecodebench_v6")
    if key == "math500":
        raise InputError(f"dataset {dataset!r} needs the PRM800K math grader, which this scorer does not provide; "
                         "expected aime, gpqa or livecodebench rows",
                         hint="gpt-oss-120b's accuracy set has no math500 rows; check the --dataset file")
    return key


def _text(text: object) -> str:
    """The reference's validate_text_input: None -> "", else str(text).strip()."""
    return "" if text is None else str(text).strip()


def extract_final_section(text: str) -> str:
    """The harmony final channel's content, stripped; the (stripped) text itself when there is none."""
    text = _text(text)
    if not text:
        return ""
    match = _FINAL.search(text)
    return match.group(1).strip() if match else text


def strip_markdown_bold(text: str) -> str:
    """``**x**`` -> ``x``."""
    return _BOLD.sub(r"\1", text)


def parse_multiple_choice(text: str, max_option: str = "D") -> str | None:
    """The answer letter (upper case) by the reference's four rules, or None."""
    text = _text(text)
    if not text:
        return None
    section = strip_markdown_bold(extract_final_section(text))
    if section.startswith(("['", '["')) and section.endswith(("']", '"]')):
        section = section[2:-2].strip()
    section = section.replace(r"\n", "\n").replace(r"\'", "'")
    leading = re.match(rf"^[^a-zA-Z]*([A-{max_option}])(?:[^a-zA-Z]|$)", section.strip(), re.IGNORECASE)
    if leading:
        return leading.group(1).upper()
    answer = re.search(rf"\b(?:Answer|ANSWER)\s*[:.]?\s*([A-{max_option}])\b", section, re.IGNORECASE)
    if answer:
        return answer.group(1).upper()
    whole = text.replace(r"\n", "\n").replace(r"\'", "'")
    pattern = rf"\b(?:ANSWER|FINAL\s*ANSWER)\b\s*[:=]?\s*(?:\(?\s*([A-{max_option}])\s*\)?)(?:\s*$|[^A-Za-z])"
    last = None
    for last in re.finditer(pattern, whole, re.IGNORECASE):  # noqa: B007 (the last match is the answer)
        pass
    if last is not None:
        return last.group(1).upper()
    if max_option == "J":
        standalone = re.findall(rf"\b([A-{max_option}])\b", section, re.IGNORECASE)
        if standalone:
            return standalone[-1].upper()
    return None


def parse_aime_answer(text: str) -> int | None:
    """The last ``\\boxed{n}``, else the last ``Answer: n``, as an int in 0..999; else None."""
    text = _text(text)
    if not text:
        return None
    found = _BOXED_INT.findall(text) or _ANSWER_INT.findall(text)
    if not found:
        return None
    try:
        value = int(found[-1])
    except ValueError:  # more digits than int() reads (the reference returns None too)
        return None
    return value if 0 <= value <= 999 else None


def _last_block(text: str) -> str | None:
    python = _PYTHON_BLOCK.findall(text)
    if python:
        return python[-1].strip()
    plain = _ANY_BLOCK.findall(text)
    if plain:
        return _LANGUAGE_LINE.sub("", plain[-1].strip())
    return None


def parse_code(text: str) -> str | None:
    """The last fenced code block of the final section, else of the whole text; None when there is none."""
    text = _text(text)
    if not text:
        return None
    section = extract_final_section(text)
    if section != text:
        code = _last_block(section)
        if code is not None:
            return code
    return _last_block(text)


def evaluate_multiple_choice(parsed: str | None, ground_truth: str, valid_options: str) -> bool:
    """parsed (upper-cased) is one of valid_options and equals the upper-cased ground truth."""
    if not parsed or not ground_truth:
        return False
    parsed = parsed.upper()
    return parsed in valid_options and parsed == str(ground_truth).upper()


def evaluate_aime(parsed: int | None, ground_truth: str) -> bool:
    """parsed == int(ground_truth); a ground truth int() cannot read is never matched."""
    if parsed is None:
        return False
    try:
        return int(parsed) == int(ground_truth)
    except (TypeError, ValueError):
        return False


def judge_answer(evaluator: str, text: str, ground_truth: str) -> tuple[bool, str | int | None]:
    """(correct, extracted answer) of a non-code answer, as evaluate_single_entry computes it."""
    if evaluator == "aime":
        number = parse_aime_answer(text)
        return evaluate_aime(number, ground_truth), number
    if evaluator in _MAX_OPTION:
        max_option = _MAX_OPTION[evaluator]
        letter = parse_multiple_choice(text, max_option)
        return evaluate_multiple_choice(letter, ground_truth, _VALID_OPTIONS[max_option]), letter
    raise ValueError(f"judge_answer does not score {evaluator!r} answers")
