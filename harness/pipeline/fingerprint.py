"""Stage fingerprints: sha256 over what a stage's result depends on, with named components.

A run stage depends on its effective config (canonical JSON, minus where it is written), the model and
tokenizer files, the dataset file and the harness version. The package stage depends on the submission
options, the system file and the results of the run stages; the check stage on the package it checks.
File hashes are memoised by (path, size, mtime_ns), so a 140 GB checkpoint is read once, not every time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.artifacts import sha256_file
from harness.backends.cache import harness_version
from harness.config import RunConfig
from harness.dataset import dataset_file, smoke_sha256
from harness.errors import HarnessError
from harness.model_files import resolve_model

# Keys that decide where and how a run directory is written, not what it contains.
NOT_AN_INPUT = {"output_dir", "overwrite", "cache"}


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    """Hex sha256 of a string."""
    return hashlib.sha256(text.encode()).hexdigest()


def combine(components: dict[str, str]) -> str:
    """The fingerprint of named component hashes."""
    return sha256_text(canonical_json(components))


class FileHasher:
    """Content sha256 of files and directories, memoised in a dict the pipeline state persists."""

    def __init__(self, memo: dict[str, list[Any]], on_hash: Callable[[Path], None] | None = None) -> None:
        self.memo = memo
        self.on_hash = on_hash

    def file(self, path: Path) -> str:
        """sha256 of one file; recomputed only when its size or mtime changed."""
        path = path.resolve()
        stat = path.stat()
        cached = self.memo.get(str(path))
        if cached is not None and cached[:2] == [stat.st_size, stat.st_mtime_ns]:
            return str(cached[2])
        if self.on_hash is not None:
            self.on_hash(path)
        digest = sha256_file(path)
        self.memo[str(path)] = [stat.st_size, stat.st_mtime_ns, digest]
        return digest

    def tree(self, path: Path) -> str:
        """sha256 over (relative path, content sha256) of every file below a directory, or of one file."""
        if path.is_file():
            return self.file(path)
        entries = [(str(p.relative_to(path)), self.file(p)) for p in sorted(path.rglob("*")) if p.is_file()]
        return sha256_text(canonical_json(entries))


def config_hash(config: RunConfig) -> str:
    """sha256 of the canonical effective config, without where the run is written."""
    return sha256_text(canonical_json(config.model_dump(mode="json", exclude=NOT_AN_INPUT)))


def model_hash(config: RunConfig, hasher: FileHasher) -> str:
    """Content hash of the model (and a separately configured tokenizer)."""
    try:
        files = resolve_model(config.model.path)
    except HarnessError as err:  # the stage itself reports the missing model, with its own hint
        return f"unavailable: {err}"
    parts = [hasher.tree(files.directory / files.gguf_file if files.gguf_file else files.directory)]
    tokenizer = Path(config.model.tokenizer) if config.model.tokenizer else None
    if tokenizer is not None and config.model.tokenizer != config.model.path:
        parts.append(hasher.tree(tokenizer) if tokenizer.exists() else f"missing {tokenizer}")
    return sha256_text(canonical_json(parts))


def dataset_hash(config: RunConfig, hasher: FileHasher) -> str:
    """The same sha256 the run manifest records as details.dataset_sha256."""
    if config.dataset.path is None:
        return smoke_sha256(config.benchmark)
    try:
        path = dataset_file(config)
    except HarnessError as error:
        return f"missing {error.message}"  # the stage reports it
    return hasher.file(path) if path.is_file() else f"missing {path}"


def run_inputs(kind: str, config: RunConfig, hasher: FileHasher) -> dict[str, str]:
    """Named input hashes of a run stage (accuracy, performance, test06, test07, test09)."""
    return {"kind": kind, "config": config_hash(config), "model": model_hash(config, hasher),
            "dataset": dataset_hash(config, hasher), "harness": harness_version()}


def upstream_hash(results: Iterable[tuple[str, str | None]]) -> str:
    """Hash of (stage id, result token) pairs of the stages a global stage consumes."""
    return sha256_text(canonical_json(sorted((name, token or "") for name, token in results)))
