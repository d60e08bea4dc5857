"""The bwrap command line of one sandboxed run and the launcher's settings, built as pure data (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

__all__ = ["SCRATCH", "TMP", "LauncherConfig", "Layout", "bwrap_argv", "parent_dirs", "sandbox_env"]

SCRATCH = "/scratch"  # the program's working directory and HOME inside the sandbox
TMP = "/tmp"
SHM_BYTES = 1024 * 1024  # /dev/shm is a tmpfs: memory, so it stays tiny


@dataclass(frozen=True)
class Layout:
    """What one run's sandbox contains, as host paths (sources) and sandbox paths (destinations).

    root_links: the host's top-level /bin, /lib... entries: ("symlink", target, dest) or ("ro-bind", src, dest).
    python_source: where bwrap finds the interpreter prefix on the host (its staged copy when running as root);
    python_prefix: where it appears inside (the same path as on the host, so its RUNPATH resolves); None when
    the prefix is under /usr.
    """

    bwrap: str
    interpreter: str
    work_dir: str
    tmp_dir: str
    python_prefix: str | None = None
    python_source: str | None = None
    root_links: Sequence[tuple[str, str, str]] = field(default_factory=tuple)


@dataclass(frozen=True)
class LauncherConfig:
    """What the trusted launcher does before it executes bwrap: bind mounts (as root, in a private mount
    namespace), resource limits, then the switch to an unprivileged uid/gid (None: keep ours)."""

    rlimits: Mapping[str, tuple[int, int]]
    uid: int | None = None
    gid: int | None = None
    binds: Sequence[tuple[str, str]] = ()

    def to_json(self) -> str:
        return json.dumps({"rlimits": {name: list(pair) for name, pair in self.rlimits.items()},
                           "uid": self.uid, "gid": self.gid, "binds": [list(pair) for pair in self.binds]})


def parent_dirs(path: str) -> list[str]:
    """The directories above `path`, outermost first, without "/": /a/b/c -> [/a, /a/b]."""
    parts = PurePosixPath(path).parts[1:-1]
    return ["/" + "/".join(parts[:index + 1]) for index in range(len(parts))]


def sandbox_env(interpreter: str) -> dict[str, str]:
    """The whole environment of the sandboxed program (bwrap clears everything else)."""
    bin_dir = str(PurePosixPath(interpreter).parent)
    path = ":".join(dict.fromkeys([bin_dir, "/usr/bin", "/bin"]))
    return {"PATH": path, "HOME": SCRATCH, "TMPDIR": TMP, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8"}


def bwrap_argv(layout: Layout, argv: Sequence[str], *, info_fd: int) -> list[str]:
    """bwrap's argv: every namespace new (no network), no capabilities, no nested user namespaces, a fresh
    session, killed with its parent; read-only /usr and interpreter prefix, a read-only /dev, the scratch dir
    read-write as cwd and HOME, a scratch /tmp, nothing else of the host (no /etc, /home, /root, /work)."""
    args = [layout.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr"]
    for kind, source, dest in layout.root_links:
        args += [f"--{kind}", source, dest]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(SHM_BYTES), "--perms", "1777", "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    if layout.python_prefix is not None:
        for directory in parent_dirs(layout.python_prefix):
            if not directory.startswith("/usr/") and directory != "/usr":
                args += ["--perms", "0755", "--dir", directory]
        args += ["--ro-bind", layout.python_source or layout.python_prefix, layout.python_prefix]
    args += ["--bind", layout.work_dir, SCRATCH, "--bind", layout.tmp_dir, TMP, "--remount-ro", "/",
             "--chdir", SCRATCH, "--clearenv"]
    for name, value in sandbox_env(layout.interpreter).items():
        args += ["--setenv", name, value]
    args += ["--info-fd", str(info_fd), "--", layout.interpreter, *argv]
    return args
