"""The QSL's data: the MLCommons OpenOrca pickle (restricted unpickler) or the embedded smoke set."""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import pickle
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness.benchmarks.llama2_70b.facts import DATASET_FILE
from harness.config import RunConfig
from harness.errors import InputError
from harness.types import Sample

__all__ = ["REQUIRED_COLUMNS", "SMOKE_FILE", "SMOKE_NAME", "Dataset", "SmokeEntry", "load_dataset", "load_references",
           "read_openorca_pickle", "smoke_entries", "token_length_stats"]

SMOKE_FILE = "data/smoke_dataset.json"
SMOKE_NAME = "embedded smoke set"
REQUIRED_COLUMNS = ("tok_input", "output")

# Every global a pandas DataFrame pickle of the OpenOrca set legitimately references (pandas 1.x-3.x, numpy
# 1.x-2.x, pickle protocols 0-5), as exact (module, name) pairs: nothing else is ever imported or called.
_PANDAS_CLASSES = ("DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "Categorical", "CategoricalDtype",
                   "StringDtype", "Int64Dtype", "Float64Dtype", "BooleanDtype", "NA", "NaT")
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "slice"), ("builtins", "object"), ("builtins", "complex"), ("builtins", "frozenset"),
    ("builtins", "set"), ("builtins", "bytearray"), ("builtins", "range"),
    ("__builtin__", "slice"), ("__builtin__", "object"), ("__builtin__", "set"), ("__builtin__", "frozenset"),
    ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"), ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
      for name in ("_reconstruct", "scalar")),
    *((module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")),
    *(("numpy.dtypes", f"{kind}DType") for kind in ("Object", "Int64", "Int32", "Float64", "Bool", "Str")),
    *(("pandas", name) for name in _PANDAS_CLASSES),
    ("pandas.core.frame", "DataFrame"), ("pandas.core.series", "Series"),
    ("pandas.core.indexes.base", "_new_Index"), ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"), ("pandas.core.indexes.numeric", "Int64Index"),
    ("pandas.core.indexes.multi", "MultiIndex"),
    ("pandas.core.internals.managers", "BlockManager"), ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.core.internals.blocks", "new_block"), ("pandas.core.internals.blocks", "Block"),
    ("pandas.core.internals.blocks", "ObjectBlock"), ("pandas.core.internals.blocks", "NumpyBlock"),
    ("pandas.core.internals.blocks", "IntBlock"), ("pandas.core.internals.blocks", "FloatBlock"),
    ("pandas.core.internals.blocks", "BoolBlock"), ("pandas.core.internals.blocks", "ExtensionBlock"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas.arrays", "StringArray"), ("pandas.core.arrays.string_", "StringArray"),
    ("pandas.core.arrays.string_", "StringDtype"), ("pandas.core.arrays.categorical", "Categorical"),
    ("pandas.core.dtypes.dtypes", "CategoricalDtype"), ("pandas._libs.missing", "NA"),
})


class _Refused(pickle.UnpicklingError):
    """The pickle names a global outside the allowlist."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the exact (module, name) pairs of _ALLOWED_GLOBALS; anything else is refused.

    A dotted name (protocol 4 resolves ``a.b`` attribute by attribute, e.g. ``__builtins__.get``) is never a
    class or function a DataFrame needs, so it is refused before the allowlist is even consulted.
    """

    def find_class(self, module: str, name: str) -> Any:
        if "." in name or (module, name) not in _ALLOWED_GLOBALS:
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)


def _not_a_pickle(path: Path, head: bytes) -> InputError | None:
    """A clear message for files that are plainly something else than a pickle."""
    if head.lstrip()[:1] in (b"[", b"{"):
        return InputError(f"{path} is a JSON file; dataset.path must be the OpenOrca pandas pickle (.pkl)",
                          hint="omit dataset.path for the embedded smoke set, or convert the data to a DataFrame "
                               "pickle with the columns tok_input and output")
    if not head:
        return InputError(f"{path} is empty; expected the OpenOrca pandas pickle (.pkl)")
    return None


def _read_dataset_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise InputError(f"dataset {path} is a directory; expected the OpenOrca pickle file inside it",
                         hint="set dataset.path to the .pkl file "
                              f"({DATASET_FILE})")
    if not path.is_file():
        raise InputError(f"dataset {path} does not exist",
                         hint=f"download {DATASET_FILE} (MLCommons) "
                              "and set dataset.path")
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read dataset {path}: {err.strerror or err}",
                         hint="check the file's permissions and that its file system is mounted") from None


def read_openorca_pickle(path: Path) -> Any:
    """Read the processed OpenOrca DataFrame without letting the pickle run code."""
    data = _read_dataset_bytes(path)
    obvious = _not_a_pickle(path, data[:64])
    if obvious is not None:
        raise obvious
    try:
        frame = _RestrictedUnpickler(io.BytesIO(data)).load()
    except _Refused as err:
        raise InputError(
            f"{path} refers to {err}, which a dataset pickle never needs; refusing to load it "
            "(a pickle can execute code)",
            hint="use the MLCommons processed OpenOrca pickle, or convert your data to that schema",
        ) from None
    except Exception as err:  # a malformed pickle can fail in many ways; none of them is ours
        detail = str(err).splitlines()[0] if str(err).strip() else "truncated or corrupt"
        raise InputError(f"{path} is not a readable pandas pickle ({type(err).__name__}: {detail})",
                         hint="use the MLCommons processed OpenOrca pickle") from None
    columns = getattr(frame, "columns", None)
    if columns is None or not hasattr(frame, "__getitem__"):
        raise InputError(f"{path} holds a {type(frame).__name__}; expected a pandas DataFrame")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; has {', '.join(map(str, columns))}",
                         hint="the QSL needs tok_input (prompt token ids) and output (reference answer)")
    return frame


def _prompt_ids(path: Path, index: int, ids: Any) -> tuple[int, ...]:
    """tok_input of one sample: a non-empty sequence of non-negative integers."""
    where = f"{path}: sample {index} (row {index} of tok_input)"
    if isinstance(ids, str | bytes) or not hasattr(ids, "__iter__"):
        raise InputError(f"{where} is {type(ids).__name__} {str(ids)[:40]!r}; expected a list of token ids")
    values = list(ids)
    bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0), None)
    if bad is not None:
        raise InputError(f"{where} holds {bad!r} ({type(bad).__name__}); expected non-negative integer token ids")
    if not values:
        raise InputError(f"{where} is empty; every prompt needs at least one token")
    return tuple(int(v) for v in values)


def _reference_texts(path: Path, outputs: list[Any]) -> list[str]:
    """The output column: one string per sample (a None or a number is never a reference answer)."""
    for index, value in enumerate(outputs):
        if not isinstance(value, str):
            raise InputError(f"{path}: sample {index} has output {value!r} ({type(value).__name__}); expected the "
                             "reference answer as text", hint="fix or drop that row; ROUGE scores text only")
    return [str(v) for v in outputs]


@dataclass(frozen=True)
class SmokeEntry:
    """One question/answer pair of the embedded smoke set."""

    id: str
    system_prompt: str
    question: str
    output: str


def smoke_entries() -> list[SmokeEntry]:
    """The embedded smoke set shipped inside the package."""
    raw = json.loads(resources.files("harness").joinpath(SMOKE_FILE).read_text(encoding="utf-8"))
    return [SmokeEntry(e["id"], e.get("system_prompt", ""), e["question"], e["output"]) for e in raw]


def _smoke_bytes() -> bytes:
    return resources.files("harness").joinpath(SMOKE_FILE).read_bytes()


@dataclass(frozen=True)
class Dataset:
    """Samples in qsl_idx order plus their reference answers."""

    samples: list[Sample]
    references: list[str]
    name: str
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.samples)


def _chat_prompt_ids(tokenizer: Any, entry: SmokeEntry, chat_template: bool) -> list[int]:
    if chat_template and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": entry.system_prompt}] if entry.system_prompt else [])
        messages.append({"role": "user", "content": entry.question})
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    text = f"{entry.system_prompt}\n\n{entry.question}" if entry.system_prompt else entry.question
    return [int(i) for i in tokenizer(text)["input_ids"]]


def _limit(count: int, max_samples: int | None) -> int:
    return count if max_samples is None else min(count, max_samples)


def load_dataset(config: RunConfig, tokenizer: Any) -> Dataset:
    """Load the configured QSL; the smoke set is tokenized with the model's tokenizer and template."""
    max_samples = config.dataset.max_samples
    if config.dataset.path is None:
        entries = smoke_entries()[: _limit(len(smoke_entries()), max_samples)]
        samples = [
            Sample(i, tuple(_chat_prompt_ids(tokenizer, e, config.dataset.chat_template)), e.output)
            for i, e in enumerate(entries)
        ]
        return Dataset(samples, [e.output for e in entries], SMOKE_NAME, SMOKE_NAME,
                       hashlib.sha256(_smoke_bytes()).hexdigest())
    path = Path(config.dataset.path)
    frame = read_openorca_pickle(path)
    count = _limit(len(frame), max_samples)
    inputs, outputs = list(frame["tok_input"])[:count], _reference_texts(path, list(frame["output"])[:count])
    samples = [Sample(i, _prompt_ids(path, i, ids), ref) for i, (ids, ref) in enumerate(zip(inputs, outputs,
                                                                                            strict=True))]
    return Dataset(samples, outputs, path.name, str(path), hashlib.sha256(_read_dataset_bytes(path)).hexdigest())


def load_references(path: str | None) -> list[str]:
    """Reference answers by qsl_idx, without a tokenizer (None = the embedded smoke set)."""
    if path is None:
        return [e.output for e in smoke_entries()]
    frame = read_openorca_pickle(Path(path))
    return _reference_texts(Path(path), list(frame["output"]))


def token_length_stats(lengths: list[int]) -> dict[str, float]:
    """Count, mean and percentiles of token lengths."""
    if not lengths:
        return {"count": 0}
    ordered = sorted(lengths)

    def pct(p: float) -> float:
        return float(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))])

    return {"count": len(ordered), "mean": sum(ordered) / len(ordered), "min": float(ordered[0]),
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": float(ordered[-1])}
