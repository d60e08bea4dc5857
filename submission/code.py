"""code/<benchmark>/<implementation> (src/ from v6.0): the source that produced the results, or a pinned URL.

Without --code-url, the installed harness, compliance and submission packages are copied (Python files
and their data, no caches) with a SHA256SUMS file, so a reviewer can diff them against any checkout;
with --code-url and --code-commit, the README pins that public repository and commit instead.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import shutil
from pathlib import Path

from harness import artifacts
from harness.errors import InputError

__all__ = ["PACKAGES", "SUMS", "CodePin", "write_code_dir"]

PACKAGES = ("harness", "compliance", "submission")
SUMS = "SHA256SUMS"
_SUFFIXES = (".py", ".yaml", ".conf", ".json", ".tmpl", ".typed", ".sh")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


class CodePin:
    """A public repository URL and commit that hold the code (--code-url, --code-commit)."""

    def __init__(self, url: str | None, commit: str | None) -> None:
        if (url is None) != (commit is None):
            raise InputError("--code-url and --code-commit go together; one was given without the other",
                             hint="pass both, e.g. --code-url https://github.com/org/repo --code-commit 1a2b3c4")
        if url is not None and not url.startswith("https://"):
            raise InputError(f"--code-url is {url!r}; expected a public https:// repository URL")
        if commit is not None and not _COMMIT.match(commit):
            raise InputError(f"--code-commit is {commit!r}; expected a git commit hash (7-40 hex digits)")
        self.url, self.commit = url, commit

    @property
    def pinned(self) -> bool:
        """Whether a URL and commit were given."""
        return self.url is not None


def _source_files(package: str) -> list[tuple[Path, str]]:
    root = Path(importlib.import_module(package).__file__ or "").resolve().parent
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root.parent)
        if (path.is_file() and not path.is_symlink() and path.suffix in _SUFFIXES
                and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts)):
            found.append((path, rel.as_posix()))
    return found


def write_code_dir(target: Path, pin: CodePin, header: list[str]) -> list[str]:
    """Fill target with the source (or the pin) and a README starting with header; returns the files copied."""
    copied: list[str] = []
    lines = [*header, ""]
    if pin.pinned:
        lines += ["## Source", "", f"The code is the public repository {pin.url} at commit {pin.commit}:", "",
                  "```", f"git clone {pin.url} && cd {pin.url.rstrip('/').rsplit('/', 1)[-1].removesuffix('.git')}"
                  f" && git checkout {pin.commit}", "```", ""]
    else:
        sums = []
        for package in PACKAGES:
            for source, rel in _source_files(package):
                destination = target / rel
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
                sums.append(f"{hashlib.sha256(source.read_bytes()).hexdigest()}  {rel}")
                copied.append(rel)
        artifacts.write_text_atomic(target / SUMS, "\n".join(sums) + "\n")
        lines += ["## Source", "", f"{', '.join(f'`{p}/`' for p in PACKAGES)} here are the installed packages that "
                  f"produced the results ({len(copied)} files), with their sha256 in `{SUMS}`",
                  f"(`sha256sum -c {SUMS}` in this directory verifies them). Install with the project's",
                  "pyproject.toml (`pip install .` from a checkout of the commit above), or run from here with",
                  "`PYTHONPATH=.`.", ""]
    artifacts.write_text_atomic(target / "README.md", "\n".join(lines))
    return copied
