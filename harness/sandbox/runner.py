"""Sandbox: runs one untrusted Python program in bwrap under limits, collects capped output, kills whole trees.

Per run: a fresh scratch directory (cwd, HOME and /tmp inside), the trusted launcher (launch.py) which sets the
rlimits and, when we are root, switches to a uid of the run's own (SLOT_UID_BASE + slot when free, else the next
free one; leased with flock across all processes, so RLIMIT_NPROC counts only this run's processes and no other
sandbox can be signalled or swept by it), then unprivileged bwrap
with every namespace new. On a wall timeout or an output flood the namespace's init is SIGKILLed, which kills
every process in the PID namespace; bwrap itself then exits (and its process group is killed if it does not).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath

from harness.errors import ConfigError, EnvironmentProblem, InputError
from harness.sandbox.bwrap import LauncherConfig, Layout, bwrap_argv
from harness.sandbox.limits import SandboxLimits, SandboxResult, rlimits

__all__ = ["PROBE_SLOT", "SLOT_UID_BASE", "Sandbox", "slot_processes"]

SLOT_UID_BASE = 1_000_000_000  # far above login users, system users, Debian's 60000-65535 and subuid ranges
SLOT_UIDS = 65_536  # the uids SLOT_UID_BASE + 0..SLOT_UIDS-1, leased one per running sandbox (all processes)
PROBE_SLOT = 65_535  # the slot check_available() uses; callers use 0..PROBE_SLOT-1
LAUNCHER = str(Path(__file__).with_name("launch.py"))
LAUNCH_FAILED = 125
KILL_GRACE_S = 5.0  # after a kill: how long bwrap may take to exit before its process group is killed
EXIT_GRACE_S = 1.0  # after bwrap exited: how long to drain pipes still open
CHUNK = 64 * 1024
INSTALL_HINT = "install bubblewrap: apt-get install bubblewrap (scripts/install-system.sh does it)"
USERNS_HINT = ("bwrap needs unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 (Debian, "
               "older kernels), user.max_user_namespaces > 0, kernel.apparmor_restrict_unprivileged_userns=0 "
               "(Ubuntu); in a container allow unshare/mount (e.g. docker --privileged)")
_ROOT_ENTRIES = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_REFUSED_PREFIXES = ("/", "/root", "/home", "/etc", "/tmp", "/var", "/work", "/proc", "/sys", "/dev")

DEFAULT_LIMITS = SandboxLimits()


def _lock_dir() -> Path:
    """Where the uid leases are: a directory only we (root) own; refused if anyone else could plant files there."""
    path = Path(tempfile.gettempdir()) / f"harness-sandbox-uids-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise EnvironmentProblem(f"sandbox uid lease directory {path} is not a private directory of ours",
                                 hint=f"remove {path}; the sandbox recreates it")
    return path


@contextlib.contextmanager
def _lease_uid(slot: int) -> Iterator[int]:
    """A uid no other sandbox uses while we hold it, in this process or any other (flock on its lease file; the
    kernel drops it when a holder dies). The slot's own uid first, then the next free one."""
    directory = _lock_dir()
    for step in range(SLOT_UIDS):
        index = (slot + step) % SLOT_UIDS
        fd = os.open(directory / f"{index}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            Sandbox._sweep(SLOT_UID_BASE + index)  # a run of a harness that died: nothing of it may count or remain
            yield SLOT_UID_BASE + index
        finally:
            os.close(fd)
        return
    raise EnvironmentProblem(f"all {SLOT_UIDS} sandbox uids are in use", hint="run fewer sandboxes at once")


def slot_processes(uid: int) -> list[int]:
    """Pids of the processes that belong to `uid` (zombies included), from /proc."""
    found = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid == uid:
                        found.append(int(entry.name))
    return found


def _bwrap_path() -> str | None:
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None)


def _root_links() -> tuple[tuple[str, str, str], ...]:
    """The host's top-level /bin, /lib... as the sandbox repeats them: symlinks into /usr (merged /usr), or binds."""
    links = []
    for entry in _ROOT_ENTRIES:
        if os.path.islink(entry):
            links.append(("symlink", os.readlink(entry), entry))
        elif os.path.isdir(entry):
            links.append(("ro-bind", entry, entry))
    return tuple(links)


def _interpreter(python: str | None) -> tuple[str, str | None]:
    """(interpreter, prefix to bind or None when it is under /usr) for `python`, default: our own CPython."""
    if python is None:
        prefix = Path(os.path.realpath(sys.base_prefix))
        candidate = prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        interpreter = candidate if candidate.is_file() else Path(os.path.realpath(sys.executable))
    else:
        interpreter = Path(os.path.realpath(python))
        prefix = interpreter.parent.parent
    if not (interpreter.is_file() and os.access(interpreter, os.X_OK)):
        raise ConfigError(f"sandbox interpreter {python or sys.executable}: not an executable file",
                          hint="give the path of a CPython interpreter (bin/python3.X inside its prefix)")
    if not interpreter.is_relative_to(prefix):
        raise ConfigError(f"sandbox interpreter {interpreter} lies outside its prefix {prefix}",
                          hint="give the interpreter inside its installation prefix (PREFIX/bin/python3.X)")
    if prefix == Path("/usr") or prefix.is_relative_to("/usr"):
        return str(interpreter), None
    home = Path(os.path.realpath(Path.home()))
    if str(prefix) in _REFUSED_PREFIXES or home.is_relative_to(prefix) or prefix.parent == Path("/home"):
        raise ConfigError(f"sandbox interpreter prefix {prefix} would expose a home or system directory",
                          hint="use a CPython installed in its own prefix (pyenv version, /opt/python, /usr)")
    return str(interpreter), str(prefix)


def _check_reachable(parent: Path) -> None:
    """As root the sandbox runs as another uid: every directory above its scratch must be searchable by others."""
    for directory in [parent, *parent.parents]:
        if not os.stat(directory).st_mode & stat.S_IXOTH:
            raise ConfigError(f"sandbox scratch parent {parent}: {directory} is not searchable by the sandbox's uid",
                              hint="choose a scratch parent every user may traverse, such as /tmp")


def _write_files(work: Path, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        relative = PurePosixPath(name)
        if not name or relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise InputError(f"sandbox file name {name!r}: must be a relative path inside the scratch dir",
                             hint="name files like 'main.py' or 'pkg/mod.py'")
        target = work.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for directory, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def _remove(path: Path) -> None:
    def retry(function, failed, _info) -> None:  # a directory the program made unreadable (same uid, not root)
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            os.chmod(failed, 0o700)
            function(failed)
    shutil.rmtree(path, onerror=retry)


def _own_process_count() -> int:
    return len(slot_processes(os.getuid()))


class _Run:
    """One started bwrap: feeds stdin, reads capped output, enforces the wall clock, kills, reaps."""

    def __init__(self, proc: subprocess.Popen[bytes], info_fd: int, limits: SandboxLimits, start: float) -> None:
        self.proc, self.info_fd, self.limits, self.start = proc, info_fd, limits, start
        self.pidfd = os.pidfd_open(proc.pid)
        self.init_pidfd: int | None = None
        self.info = b""
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.total = 0
        self.timed_out = self.truncated = self.killed = False
        self.killed_at: float | None = None
        self.exited_at: float | None = None

    def communicate(self, stdin: bytes) -> None:
        selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        selector.register(self.proc.stdout.fileno(), selectors.EVENT_READ, "stdout")
        selector.register(self.proc.stderr.fileno(), selectors.EVENT_READ, "stderr")
        selector.register(self.info_fd, selectors.EVENT_READ, "info")
        selector.register(self.pidfd, selectors.EVENT_READ, "exit")
        pending = memoryview(stdin)
        assert self.proc.stdin is not None
        if pending:
            os.set_blocking(self.proc.stdin.fileno(), False)
            selector.register(self.proc.stdin, selectors.EVENT_WRITE, "stdin")
        else:
            self.proc.stdin.close()
        deadline = self.start + self.limits.wall_seconds
        try:
            while selector.get_map():
                now = time.monotonic()
                if self.exited_at is not None and now - self.exited_at > EXIT_GRACE_S:
                    break
                if not self.killed and now >= deadline:
                    self.timed_out = True
                    self.kill()
                if self.killed_at is not None and now - self.killed_at > KILL_GRACE_S:
                    self._kill_group()
                    break
                limit = deadline if self.killed_at is None else self.killed_at + KILL_GRACE_S
                if self.exited_at is not None:
                    limit = min(limit, self.exited_at + EXIT_GRACE_S)
                for key, _ in selector.select(max(0.0, min(limit - now, 1.0))):
                    if key.data == "stdin":
                        pending = self._feed(selector, pending)
                    elif key.data == "exit":
                        selector.unregister(self.pidfd)
                        self.exited_at = time.monotonic()
                    elif key.data == "info":
                        self._read_info(selector)
                    else:
                        self._read_output(selector, key.fd, key.data)
        finally:
            selector.close()

    def _feed(self, selector: selectors.BaseSelector, pending: memoryview) -> memoryview:
        assert self.proc.stdin is not None
        try:
            written = os.write(self.proc.stdin.fileno(), pending[:CHUNK])
        except BlockingIOError:
            return pending
        except OSError:  # the program closed its stdin or died
            written = len(pending)
        pending = pending[written:]
        if not pending:
            selector.unregister(self.proc.stdin)
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        return pending

    def _read_info(self, selector: selectors.BaseSelector) -> None:
        data = os.read(self.info_fd, CHUNK)
        if not data:
            selector.unregister(self.info_fd)
            return
        self.info += data
        if self.init_pidfd is None:
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                child = int(json.loads(self.info)["child-pid"])
                self.init_pidfd = os.pidfd_open(child)  # the namespace's init, still alive: the program just starts
                if self.killed:
                    self.kill()

    def _read_output(self, selector: selectors.BaseSelector, fd: int, name: str) -> None:
        data = os.read(fd, CHUNK)
        if not data:
            selector.unregister(fd)
            return
        room = self.limits.output_bytes - self.total
        if len(data) > room:
            self.truncated = True
            data = data[:max(room, 0)]
            if not self.killed:
                self.kill()
        self.out[name] += data
        self.total += len(data)

    def kill(self) -> None:
        """SIGKILL the PID namespace's init (the kernel then kills all of the namespace); bwrap exits by itself.
        Before bwrap has reported its init, the launcher's process group is killed instead."""
        self.killed = True
        if self.killed_at is None:
            self.killed_at = time.monotonic()
        if self.init_pidfd is None:
            self._kill_group()
            return
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self.init_pidfd, signal.SIGKILL)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def reap(self) -> tuple[int, float]:
        """Wait for bwrap (killing its group if it outlives the grace); exit code and CPU seconds of the tree."""
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        for fd in (self.pidfd, self.init_pidfd, self.info_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return self.proc.returncode, usage.ru_utime + usage.ru_stime


class Sandbox:
    """Runs model-written Python programs in bubblewrap under SandboxLimits; thread-safe (every run has its own uid).

    Inside: read-only /usr and the interpreter's prefix, a read-only minimal /dev, a private /proc, the scratch
    dir (cwd, HOME) and a scratch /tmp read-write; no network (a new empty network namespace), no /etc, /home,
    /root or /work, no capabilities, no new privileges, no nested user namespaces.
    """

    def __init__(self, limits: SandboxLimits = DEFAULT_LIMITS, *, python: str | None = None, slot: int = 0,
                 scratch_parent: str | os.PathLike[str] | None = None) -> None:
        if not 0 <= slot <= PROBE_SLOT:
            raise ConfigError(f"sandbox slot {slot}: must be 0..{PROBE_SLOT - 1}")
        self.limits = limits
        self.slot = slot
        self._interpreter, self._prefix = _interpreter(python)
        self._scratch_parent = Path(os.path.realpath(scratch_parent or tempfile.gettempdir()))
        self._as_root = os.geteuid() == 0
        if self._as_root:
            _check_reachable(self._scratch_parent)
        if slot != PROBE_SLOT:
            Sandbox.check_available()

    @staticmethod
    def check_available() -> None:
        """Raise EnvironmentProblem (exit 3) with the fix when bwrap is missing or cannot build its sandbox here."""
        problem = _probe()
        if problem is not None:
            raise EnvironmentProblem(*problem)

    def run_python(self, files: Mapping[str, bytes], argv: Sequence[str], *, stdin: bytes = b"") -> SandboxResult:
        """Write `files` (relative names) into a fresh scratch dir, run `python3 <argv...>` there (cwd = scratch),
        feed stdin, collect output under the limits, remove the scratch dir, return the result."""
        bwrap = _bwrap_path()
        if bwrap is None:
            raise EnvironmentProblem("bubblewrap (bwrap) is not installed: the sandbox cannot run", hint=INSTALL_HINT)
        with self._uid() as uid, self._scratch() as base:
            work, tmp = base / "work", base / "tmp"
            work.mkdir()
            tmp.mkdir()
            _write_files(work, files)
            staged = None
            if self._as_root and self._prefix is not None:
                staged = base / "python"
                staged.mkdir(mode=0o755)
            if uid is not None:
                _chown_tree(work, uid, uid)
                _chown_tree(tmp, uid, uid)
                os.chown(base, uid, uid)
            layout = Layout(bwrap=bwrap, interpreter=self._interpreter, work_dir=str(work), tmp_dir=str(tmp),
                            python_prefix=self._prefix, python_source=str(staged) if staged else None,
                            root_links=_root_links())
            config = LauncherConfig(
                rlimits=rlimits(self.limits, nproc_base=0 if uid is not None else _own_process_count()),
                uid=uid, gid=uid,
                binds=((self._prefix, str(staged)),) if staged is not None and self._prefix is not None else ())
            try:
                return self._execute(layout, config, argv, stdin)
            finally:
                if uid is not None:
                    self._sweep(uid)

    @contextlib.contextmanager
    def _uid(self) -> Iterator[int | None]:
        """As root: a uid of this run's own (leased); otherwise ours (None: no switch)."""
        if not self._as_root:
            yield None
            return
        with _lease_uid(self.slot) as uid:
            yield uid

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        try:
            base = Path(tempfile.mkdtemp(prefix=f"sandbox-{self.slot}-", dir=self._scratch_parent))
        except OSError as error:
            raise EnvironmentProblem(f"sandbox scratch dir under {self._scratch_parent}: {error.strerror}",
                                     hint="give a writable scratch parent") from error
        try:
            yield base
        finally:
            _remove(base)

    def _execute(self, layout: Layout, config: LauncherConfig, argv: Sequence[str], stdin: bytes) -> SandboxResult:
        info_read, info_write = os.pipe()
        command = [sys.executable, "-I", "-S", "-B", LAUNCHER, config.to_json(), "--",
                   *bwrap_argv(layout, argv, info_fd=info_write)]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=(info_write,), process_group=0,
                                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        except OSError as error:
            os.close(info_read)
            raise EnvironmentProblem(f"sandbox launcher could not start: {error}", hint=INSTALL_HINT) from error
        finally:
            os.close(info_write)
        run = _Run(proc, info_read, self.limits, start)
        try:
            run.communicate(stdin)
        finally:
            if run.exited_at is None:
                run.kill()
                run._kill_group()
            returncode, cpu = run.reap()
        wall = time.monotonic() - start
        stdout, stderr = bytes(run.out["stdout"]), bytes(run.out["stderr"])
        if not run.info and not run.killed and returncode != 0:
            line = stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {returncode}"]
            hint = USERNS_HINT if "namespace" in line[0] or "uid map" in line[0] else INSTALL_HINT
            raise EnvironmentProblem(f"the sandbox could not start: {line[0]}", hint=hint)
        cpu_out = not run.killed and (returncode == 128 + signal.SIGXCPU
                                      or (returncode == 128 + signal.SIGKILL and cpu >= self.limits.cpu_seconds))
        return SandboxResult(returncode=None if run.killed else returncode, stdout=stdout, stderr=stderr,
                             timed_out=run.timed_out or cpu_out, output_truncated=run.truncated, killed=run.killed,
                             wall_seconds=wall)

    @staticmethod
    def _sweep(uid: int, timeout: float = KILL_GRACE_S) -> None:
        """Nothing of a slot outlives its run: wait for the namespace's processes to go, SIGKILL any straggler."""
        end = time.monotonic() + timeout
        while (pids := slot_processes(uid)) and time.monotonic() < end:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[str, str] | None:
    """(message, hint) when the sandbox cannot work here, else None; runs one tiny program in a real sandbox."""
    if _bwrap_path() is None:
        return "bubblewrap (bwrap) is not installed: the sandbox for model-written programs needs it", INSTALL_HINT
    try:
        result = Sandbox(SandboxLimits(wall_seconds=30.0), slot=PROBE_SLOT).run_python(
            {}, ["-c", "import sys; print(sys.version)"])
    except EnvironmentProblem as problem:
        return problem.message, problem.hint or USERNS_HINT
    if not result.ok or result.stdout.decode().strip() != sys.version.strip():
        detail = (result.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        return (f"the sandbox runs, but not our Python {sys.version.split()[0]} inside it: {detail}", USERNS_HINT)
    return None
