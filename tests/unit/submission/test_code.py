"""code/<bench>/<impl>: the installed source with its hashes, or a pinned public URL and commit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import harness
from harness.errors import InputError
from submission.code import SUMS, CodePin, write_code_dir


def test_the_installed_source_is_copied_with_hashes_that_match_it(tmp_path: Path) -> None:
    copied = write_code_dir(tmp_path / "impl", CodePin(None, None), ["# impl"])
    assert "harness/runner.py" in copied and "submission/package.py" in copied and "compliance/__init__.py" in copied
    assert not [p for p in copied if "__pycache__" in p or "/." in p]
    installed = Path(harness.__file__).resolve().parent.parent
    for line in (tmp_path / "impl" / SUMS).read_text().splitlines():
        digest, rel = line.split("  ", 1)
        assert hashlib.sha256((installed / rel).read_bytes()).hexdigest() == digest
        assert (tmp_path / "impl" / rel).read_bytes() == (installed / rel).read_bytes()
    assert f"sha256sum -c {SUMS}" in (tmp_path / "impl" / "README.md").read_text()


def test_a_pinned_url_and_commit_replace_the_copy(tmp_path: Path) -> None:
    pin = CodePin("https://github.com/org/mlperf-llm-harness", "1fb064b6cb7aec0381cd2c7d442c09bf477c635b")
    assert write_code_dir(tmp_path / "impl", pin, ["# impl"]) == []
    readme = (tmp_path / "impl" / "README.md").read_text()
    assert "git clone https://github.com/org/mlperf-llm-harness && cd mlperf-llm-harness && git checkout 1fb064b" \
        in readme
    assert sorted(p.name for p in (tmp_path / "impl").iterdir()) == ["README.md"]


@pytest.mark.parametrize(("url", "commit", "message"), [
    ("https://github.com/org/repo", None, "go together"),
    ("git@github.com:org/repo", "abcdef1", "https://"),
    ("https://github.com/org/repo", "main", "commit hash"),
])
def test_bad_pins_are_refused_in_one_line(url: str | None, commit: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        CodePin(url, commit)
