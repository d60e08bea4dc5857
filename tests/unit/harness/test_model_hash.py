"""harness.model_hash: streamed sha256 of model files, cached per path+size+mtime; directories over sorted files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import model_hash
from harness.errors import InputError
from harness.model_files import ModelFiles


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    return cache


def _checkpoint(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"a": 1}\n')
    (root / "model-00001.safetensors").write_bytes(os.urandom(3 * model_hash.CHUNK + 17))  # several chunks
    (root / "sub" / "tokenizer.json").write_text("{}\n")
    (root / "B.txt").write_text("upper case sorts first in byte order\n")
    (root / ".done").write_text("marker\n")  # hidden files and dirs are not weights
    (root / ".cache").mkdir()
    (root / ".cache" / "lock").write_text("x\n")
    return root


def test_a_file_hash_is_the_plain_sha256_streamed(tmp_path: Path) -> None:
    data = os.urandom(2 * model_hash.CHUNK + 5)
    (tmp_path / "m.gguf").write_bytes(data)
    assert model_hash.file_sha256(tmp_path / "m.gguf") == hashlib.sha256(data).hexdigest()


def test_a_directory_hash_matches_the_documented_shell_pipeline(tmp_path: Path) -> None:
    root = _checkpoint(tmp_path / "ckpt")
    if shutil.which("sha256sum") is None or shutil.which("find") is None:
        pytest.skip("coreutils sha256sum/find absent")
    pipeline = ("cd \"$1\" && find . -type f ! -path '*/.*' -printf '%P\\n' | LC_ALL=C sort "
                "| xargs -d '\\n' sha256sum | sha256sum")
    shell = subprocess.run(["bash", "-c", pipeline, "bash", str(root)], capture_output=True, text=True,
                           check=True).stdout.split()[0]
    assert model_hash.directory_sha256(root) == shell


def test_directory_hash_changes_with_any_weight_byte_and_name_but_not_hidden_files(tmp_path: Path) -> None:
    root = _checkpoint(tmp_path / "ckpt")
    before = model_hash.directory_sha256(root)
    (root / ".done").write_text("another marker\n")
    assert model_hash.directory_sha256(root) == before
    (root / "sub" / "tokenizer.json").write_text("{ }\n")
    changed = model_hash.directory_sha256(root)
    assert changed != before
    (root / "sub" / "tokenizer.json").rename(root / "sub" / "tokenizer2.json")
    assert model_hash.directory_sha256(root) not in (before, changed)


def test_the_cache_avoids_rehashing_and_a_changed_file_is_hashed_again(tmp_path: Path, _cache_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "w.bin"
    file.write_bytes(b"weights")
    first = model_hash.file_sha256(file)
    entries = json.loads((_cache_dir / model_hash.CACHE_FILE).read_text())
    assert entries[str(file.absolute())][2] == first
    streamed: list[Path] = []
    real = model_hash._stream
    monkeypatch.setattr(model_hash, "_stream", lambda p, advance: streamed.append(p) or real(p, advance))
    assert model_hash.file_sha256(file) == first and streamed == []  # same path, size, mtime: cached
    file.write_bytes(b"other!!")  # same size; the mtime moves
    os.utime(file, ns=(1, 1))
    assert model_hash.file_sha256(file) == hashlib.sha256(b"other!!").hexdigest() and streamed == [file]


def test_a_stale_cache_entry_with_the_same_size_and_mtime_is_the_documented_limit(tmp_path: Path) -> None:
    """The cache trusts (path, size, mtime): rewriting a file and restoring its mtime is not detected."""
    file = tmp_path / "w.bin"
    file.write_bytes(b"aaaa")
    os.utime(file, ns=(5, 5))
    first = model_hash.file_sha256(file)
    file.write_bytes(b"bbbb")
    os.utime(file, ns=(5, 5))
    assert model_hash.file_sha256(file) == first
    assert model_hash.file_sha256(file, use_cache=False) == hashlib.sha256(b"bbbb").hexdigest()


def test_a_broken_cache_file_is_rebuilt(tmp_path: Path, _cache_dir: Path) -> None:
    _cache_dir.mkdir()
    (_cache_dir / model_hash.CACHE_FILE).write_text("{not json")
    (tmp_path / "w.bin").write_bytes(b"x")
    assert model_hash.file_sha256(tmp_path / "w.bin") == hashlib.sha256(b"x").hexdigest()
    assert json.loads((_cache_dir / model_hash.CACHE_FILE).read_text())


def test_model_sha256_hashes_the_gguf_file_alone_or_the_directory(tmp_path: Path) -> None:
    tmp_path = tmp_path / "model"  # beside the cache directory, not around it
    tmp_path.mkdir()
    (tmp_path / "m.gguf").write_bytes(b"gguf")
    (tmp_path / "other.py").write_text("not part of the model\n")
    assert model_hash.model_sha256(ModelFiles(tmp_path, "m.gguf")) == (
        str(tmp_path / "m.gguf"), hashlib.sha256(b"gguf").hexdigest())
    hashed, digest = model_hash.model_sha256(ModelFiles(tmp_path))
    assert hashed == str(tmp_path) and digest == model_hash.directory_sha256(tmp_path)


def test_an_unreadable_model_file_is_one_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read model file .*missing.gguf to hash it"):
        model_hash.file_sha256(tmp_path / "missing.gguf")


def test_only_engines_that_load_the_model_in_the_run_have_it_hashed() -> None:
    """The runner records details.model_sha256 when backend.loads_model_files (not for a fake or a server)."""
    from harness.backends.endpoint.options import EndpointOptions
    from harness.backends.fake.options import FakeOptions
    from harness.backends.hf.options import HfOptions
    from harness.backends.trtllm.options import TrtllmOptions
    from harness.backends.vllm.options import VllmOptions

    assert HfOptions().loads_model_files and VllmOptions().loads_model_files and TrtllmOptions().loads_model_files
    assert not FakeOptions().loads_model_files
    assert not EndpointOptions(urls=("http://127.0.0.1:8000",)).loads_model_files


def test_progress_hears_the_uncached_bytes_then_each_step_and_nothing_once_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_hash, "REPORT_S", 0.0)  # every chunk reports
    root = _checkpoint(tmp_path / "ckpt")
    total = sum(p.stat().st_size for p in model_hash._files(root))
    heard: list[tuple[int, int]] = []
    files = ModelFiles(directory=root, gguf_file=None)
    model_hash.model_sha256(files, progress=lambda done, of: heard.append((done, of)))
    assert heard[0] == (0, total) and all(of == total for _, of in heard)
    assert [done for done, _ in heard] == sorted(done for done, _ in heard) and heard[-1][0] == total
    again: list[tuple[int, int]] = []
    model_hash.model_sha256(files, progress=lambda done, of: again.append((done, of)))
    assert again == []  # all cached: nothing to read, nothing said
