"""Structural rules of the whole tree: root and division files, names, empty dirs, links, file sizes.

The v4.0-v5.1 tag scripts fail a submitter on any of these (mlperf-rules.md §1.2-§1.3); HEAD's
modular checker performs none of them, so there they are warnings.
"""

from __future__ import annotations

import os
from pathlib import Path

from submission.layout import DIVISIONS as CHECKED
from submission.rules._base import TAG_SCRIPTS, Findings

DIVISIONS = ("open", "closed", "network")
SKIPPED_ROOT_DIRS = (".git", ".github", "assets")
FILE_SIZE_LIMIT = 50 * 1024 * 1024


def check_root(f: Findings) -> list[tuple[str, Path]]:
    """Root and division-level rules; returns the (division, <division>/<submitter>) dirs to check further."""
    for entry in sorted(f.root.iterdir()):
        if entry.is_file() and entry.suffix not in (".md", ".pdf"):
            f.add("root-files", entry, f"file {entry.name} in the submission root",
                  "only *.md and *.pdf files may sit beside the division dirs; move it out", TAG_SCRIPTS)
        elif entry.is_dir() and entry.name not in DIVISIONS and entry.name not in SKIPPED_ROOT_DIRS:
            f.add("division-name", entry, f"{entry.name} is not a division; the checker ignores it",
                  "use open/ or closed/ (or remove the directory)", frozenset())
        elif entry.is_dir() and entry.name in DIVISIONS and entry.name not in CHECKED:
            f.add("division-unchecked", entry, f"{entry.name}/ is not checked by this tool",
                  f"this tool checks {' and '.join(CHECKED)} only", frozenset())
    divisions = [f.root / name for name in CHECKED if (f.root / name).is_dir()]
    if not divisions:
        f.add("no-division", f.root, "no open/ or closed/ directory: the checker finds nothing and reports Results=0",
              "pass the directory that contains open/ or closed/")
        return []
    submitters: list[tuple[str, Path]] = []
    for division in divisions:
        for entry in sorted(division.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                submitters.append((division.name, entry))
            else:
                f.add("division-files", entry, f"{entry.name} in {division.name}/ is not a submitter directory",
                      f"{division.name}/ may hold only submitter directories; move the file out", TAG_SCRIPTS)
    return submitters


def check_names(f: Findings, org: Path) -> None:
    """Names, empty dirs, links and sizes under <division>/<submitter> (all of it, like the checker's walk)."""
    for dirpath, dirnames, filenames in os.walk(org):
        here = Path(dirpath)
        if not dirnames and not filenames:
            f.add("empty-dir", here, "empty directory", "remove it (git cannot keep it and the checker refuses it)",
                  TAG_SCRIPTS)
        for name in dirnames + filenames:
            _check_entry(f, here / name)


def _check_entry(f: Findings, path: Path) -> None:
    name = path.name
    if name.startswith("."):
        f.add("dot-name", path, f"{name} starts with '.'", "remove it (even .gitkeep is refused)", TAG_SCRIPTS)
    if any(c.isspace() for c in name):
        f.add("space-in-name", path, f"{name!r} contains whitespace", "rename it without spaces", TAG_SCRIPTS)
    if name == "__pycache__":
        f.add("pycache", path, "__pycache__ directory", "delete it", TAG_SCRIPTS)
    if path.is_symlink():
        # The tag scripts test os.path.exists(os.readlink(link)) from the submission root, so a relative
        # link counts as broken unless its target happens to exist relative to the root.
        broken = not (f.root / os.readlink(path)).exists()
        detail = "broken symbolic link" if not path.exists() else (
            "symbolic link" if not broken else
            f"relative symbolic link to {os.readlink(path)}: the checker resolves it from the submission root, "
            "where it is broken")
        f.add("symlink", path, detail, "replace the link by the file it points to",
              TAG_SCRIPTS if broken else frozenset())
    elif path.is_file() and path.stat().st_size > FILE_SIZE_LIMIT:
        size = path.stat().st_size / 1024 / 1024
        f.add("file-size", path, f"{size:.1f} MiB is over the 50 MiB limit",
              "truncate accuracy logs (submission package does) and drop traces", TAG_SCRIPTS)
