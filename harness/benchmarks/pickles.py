"""Dataset pickles read as data: a restricted unpickler that resolves only what a pandas DataFrame needs.

Shared by the benchmarks whose MLCommons datasets ship as DataFrame pickles (Llama 2 70B's OpenOrca set); a pickle
that names anything else is refused before it is imported, so a dataset file can never run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from harness.errors import InputError

__all__ = ["read_dataframe_pickle", "read_file_bytes"]

# Every global a pandas DataFrame pickle of the MLCommons sets legitimately references (pandas 1.x-3.x, numpy
# 1.x-2.x, pickle protocols 0-5), as exact (module, name) pairs: nothing else is ever imported or called.
_PANDAS_CLASSES = ("DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "Categorical", "CategoricalDtype",
                   "StringDtype", "Int64Dtype", "Float64Dtype", "BooleanDtype", "NA", "NaT")
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "slice"), ("builtins", "object"), ("builtins", "complex"), ("builtins", "frozenset"),
    ("builtins", "set"), ("builtins", "bytearray"), ("builtins", "range"),
    ("__builtin__", "slice"), ("__builtin__", "object"), ("__builtin__", "set"), ("__builtin__", "frozenset"),
    ("__builtin__", "bytearray"),
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
    # pandas 3 with pyarrow installed stores text columns as Arrow strings: the array class and the three pyarrow
    # constructors of its pickle (a type by its alias name, a buffer from bytes, an array from type and buffers)
    ("pandas.arrays", "ArrowStringArray"), ("pandas.core.arrays.string_arrow", "ArrowStringArray"),
    ("pyarrow.lib", "type_for_alias"), ("pyarrow.lib", "py_buffer"), ("pyarrow.lib", "_restore_array"),
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


def _not_a_pickle(path: Path, head: bytes, what: str, columns: tuple[str, ...]) -> InputError | None:
    """A clear message for files that are plainly something else than a pickle."""
    if head.lstrip()[:1] in (b"[", b"{"):
        return InputError(f"{path} is a JSON file; dataset.path must be the {what} pandas pickle (.pkl)",
                          hint="omit dataset.path for the embedded smoke set, or convert the data to a DataFrame "
                               f"pickle with the columns {' and '.join(columns)}")
    if not head:
        return InputError(f"{path} is empty; expected the {what} pandas pickle (.pkl)")
    return None


def read_file_bytes(path: Path, what: str, file_name: str) -> bytes:
    """The dataset file's bytes; a directory, a missing or unreadable file is a one-line InputError."""
    if path.is_dir():
        raise InputError(f"dataset {path} is a directory; expected the {what} file inside it",
                         hint=f"set dataset.path to the .pkl file ({file_name})")
    if not path.is_file():
        raise InputError(f"dataset {path} does not exist",
                         hint=f"download {file_name} (MLCommons) and set dataset.path")
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read dataset {path}: {err.strerror or err}",
                         hint="check the file's permissions and that its file system is mounted") from None


def read_dataframe_pickle(path: Path, what: str, file_name: str, columns: tuple[str, ...]) -> Any:
    """A pandas DataFrame pickle with the given columns, read without letting the pickle run code."""
    data = read_file_bytes(path, what, file_name)
    obvious = _not_a_pickle(path, data[:64], what, columns)
    if obvious is not None:
        raise obvious
    try:
        frame = _RestrictedUnpickler(io.BytesIO(data)).load()
    except _Refused as err:
        raise InputError(
            f"{path} refers to {err}, which a dataset pickle never needs; refusing to load it "
            "(a pickle can execute code)",
            hint=f"use the MLCommons processed {what} pickle, or convert your data to that schema",
        ) from None
    except Exception as err:  # a malformed pickle can fail in many ways; none of them is ours
        detail = str(err).splitlines()[0] if str(err).strip() else "truncated or corrupt"
        raise InputError(f"{path} is not a readable pandas pickle ({type(err).__name__}: {detail})",
                         hint=f"use the MLCommons processed {what} pickle") from None
    found = getattr(frame, "columns", None)
    if found is None or not hasattr(frame, "__getitem__"):
        raise InputError(f"{path} holds a {type(frame).__name__}; expected a pandas DataFrame")
    missing = [c for c in columns if c not in found]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; has {', '.join(map(str, found))}",
                         hint=f"the QSL needs the columns {', '.join(columns)}")
    return frame
