"""The QSL's data: the MLCommons OpenOrca pickle (restricted unpickler) or the embedded smoke set."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.errors import InputError
from harness.types import Sample

__all__ = ["REQUIRED_COLUMNS", "SMOKE_FILE", "SMOKE_NAME", "Dataset", "SmokeEntry", "load_dataset", "load_references",
           "read_openorca_pickle", "smoke_entries", "token_length_stats"]

SMOKE_FILE = "data/smoke_dataset.json"
SMOKE_NAME = "embedded smoke set"
REQUIRED_COLUMNS = ("tok_input", "output")

# Module prefixes a pandas DataFrame pickle of the OpenOrca set legitimately references.
_ALLOWED_MODULE_PREFIXES = (
    "pandas.core.frame", "pandas.core.series", "pandas.core.internals", "pandas.core.indexes",
    "pandas.core.arrays", "pandas.core.dtypes", "pandas._libs.internals", "pandas._libs.tslibs",
    "pandas._libs.arrays", "pandas._libs.missing", "pandas.core.base",
    "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric",
    "numpy.dtypes", "pandas.arrays",
)
_ALLOWED_GLOBALS = {
    ("numpy", "dtype"), ("numpy", "ndarray"), ("builtins", "slice"), ("builtins", "range"),
    ("builtins", "object"), ("builtins", "complex"), ("builtins", "frozenset"), ("builtins", "set"),
    ("copyreg", "_reconstructor"), ("collections", "OrderedDict"), ("datetime", "datetime"),
    ("__builtin__", "slice"), ("__builtin__", "object"), ("_codecs", "encode"),
    *(("pandas", name) for name in ("DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "StringDtype",
                                    "CategoricalDtype", "Categorical", "Timestamp", "Int64Dtype", "ArrowDtype")),
}
_FORBIDDEN_NAME_PARTS = ("eval", "exec", "read", "load", "open", "system", "query", "import", "to_")


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only the pandas/numpy types a DataFrame needs; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = (module, name) in _ALLOWED_GLOBALS or (
            module.startswith(_ALLOWED_MODULE_PREFIXES)
            and not any(part in name.lower() for part in _FORBIDDEN_NAME_PARTS)
        )
        if not allowed:
            raise pickle.UnpicklingError(f"{module}.{name}")
        return super().find_class(module, name)


def read_openorca_pickle(path: Path) -> Any:
    """Read the processed OpenOrca DataFrame without letting the pickle run code."""
    if not path.is_file():
        raise InputError(f"dataset {path} does not exist",
                         hint="download open_orca_gpt4_tokenized_llama.sampled_24576.pkl (MLCommons) "
                              "and set dataset.path")
    try:
        frame = _RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    except pickle.UnpicklingError as err:
        raise InputError(
            f"{path} refers to {err}, which a dataset pickle never needs; refusing to load it "
            "(a pickle can execute code)",
            hint="use the MLCommons processed OpenOrca pickle, or convert your data to that schema",
        ) from None
    except (EOFError, ValueError, TypeError, AttributeError, ModuleNotFoundError) as err:
        raise InputError(f"{path} is not a readable pandas pickle: {err}") from None
    columns = getattr(frame, "columns", None)
    if columns is None:
        raise InputError(f"{path} holds a {type(frame).__name__}; expected a pandas DataFrame")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; has {', '.join(map(str, columns))}",
                         hint="the QSL needs tok_input (prompt token ids) and output (reference answer)")
    return frame


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
    inputs, outputs = list(frame["tok_input"])[:count], list(frame["output"])[:count]
    pairs = enumerate(zip(inputs, outputs, strict=True))
    samples = [Sample(i, tuple(int(t) for t in ids), str(ref)) for i, (ids, ref) in pairs]
    return Dataset(samples, [str(o) for o in outputs], path.name, str(path),
                   hashlib.sha256(path.read_bytes()).hexdigest())


def load_references(path: str | None) -> list[str]:
    """Reference answers by qsl_idx, without a tokenizer (None = the embedded smoke set)."""
    if path is None:
        return [e.output for e in smoke_entries()]
    frame = read_openorca_pickle(Path(path))
    return [str(o) for o in frame["output"]]


def token_length_stats(lengths: list[int]) -> dict[str, float]:
    """Count, mean and percentiles of token lengths."""
    if not lengths:
        return {"count": 0}
    ordered = sorted(lengths)

    def pct(p: float) -> float:
        return float(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))])

    return {"count": len(ordered), "mean": sum(ordered) / len(ordered), "min": float(ordered[0]),
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": float(ordered[-1])}
