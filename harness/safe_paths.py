"""Files read from run directories stay inside them; OSErrors at a boundary become one-line HarnessErrors."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import ConfigError, EnvironmentProblem, HarnessError, InputError

__all__ = ["contained", "copy_atomic", "from_os_error", "not_there", "os_errors", "read_contained", "safe_copy"]

# errno values that mean "the path the user gave is wrong" (exit 2); every other OSError is the machine (exit 3).
_PATH_ERRNOS = frozenset({errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP,
                          errno.EINVAL})
_HINTS = {
    errno.ENOSPC: "free space on that file system, or choose another output directory",
    errno.EDQUOT: "your disk quota is exhausted; free space or choose another output directory",
    errno.EFBIG: "the file exceeds the file-size limit (ulimit -f) or the file system's maximum",
    errno.EROFS: "that file system is mounted read-only; choose a writable output directory",
    errno.EACCES: "you lack permission there; choose a writable location or fix its permissions",
    errno.EPERM: "the operation is not permitted there; choose another location",
    errno.ENOTDIR: "a component of that path is a regular file, not a directory; choose another path",
    errno.EISDIR: "that path is a directory; pass a file",
    errno.ENOENT: "check the path (a parent directory may be missing)",
    errno.EEXIST: "something already exists at that path; choose another one",
    errno.EIO: "the device reported an I/O error; check the disk or network file system",
    errno.EMFILE: "too many open files; raise `ulimit -n`",
}


def from_os_error(err: OSError, action: str) -> HarnessError:
    """A one-line HarnessError for an OSError: what was attempted, on which path, why, and a fix."""
    where = f" {err.filename}" if err.filename else ""
    if err.filename2:
        where += f" -> {err.filename2}"
    code = errno.errorcode.get(err.errno or 0, "")
    reason = (err.strerror or str(err) or type(err).__name__).splitlines()[0]
    message = f"cannot {action}{':' if where else ''}{where}: {reason}" + (f" [{code}]" if code else "")
    hint = _HINTS.get(err.errno or 0)
    if err.errno in _PATH_ERRNOS:
        return ConfigError(message, hint=hint)
    return EnvironmentProblem(message, hint=hint)


@contextmanager
def os_errors(action: str) -> Iterator[None]:
    """Turn any OSError raised inside the block into from_os_error(err, action)."""
    try:
        yield
    except OSError as err:
        raise from_os_error(err, action) from None


def not_there(path: Path, what: str) -> str:
    """Why path is not the `what` (a file or a directory) expected: missing, a file, a directory, or under a file."""
    if path.is_dir():
        return f"{path} is a directory; expected {what}"
    if path.exists():
        return f"{path} is not a directory; expected {what}"
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"{path} is under {parent}, which is a file; expected {what}"
    return f"{path} does not exist; expected {what}"


def contained(root: Path, path: Path | str) -> Path:
    """The resolved path of a file that must lie inside root; a link or '..' leading out is an InputError.

    ``path`` is absolute or relative to root. Links that stay inside root are followed.
    """
    root_resolved = Path(root).resolve()
    candidate = Path(path) if Path(path).is_absolute() else Path(root) / path
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root_resolved):
        raise InputError(f"{candidate} leads outside its run directory {root} (to {resolved}); refusing to use it",
                         hint="a run directory holds only its own files: replace the link with the file itself")
    return resolved


def read_contained(root: Path, path: Path | str) -> str:
    """The text of a regular file inside root (see contained)."""
    resolved = contained(root, path)
    if not resolved.is_file():
        raise InputError(f"{Path(root) / path} is not a regular file; expected one inside the run directory")
    with os_errors("read"):
        return resolved.read_text(errors="replace")


def safe_copy(root: Path, source: Path | str, target: Path) -> None:
    """Copy a regular file that lies inside root to target, through a temporary file and a rename."""
    resolved = contained(root, source)
    if not resolved.is_file():
        raise InputError(f"{Path(root) / source} is not a regular file; expected one inside the run directory")
    copy_atomic(resolved, target)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy source to target through a temporary file beside it and a rename: never a half-written target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
