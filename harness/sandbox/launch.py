"""The trusted launcher, run as a script between the harness and bwrap: mounts, rlimits, uid switch, exec.

`python -I -S launch.py CONFIG_JSON -- BWRAP_ARGV...` (CONFIG_JSON: bwrap.LauncherConfig). As root it first
enters a private mount namespace and bind-mounts the interpreter prefix onto a staging directory the slot's uid
can reach (the prefix may sit under /root, which that uid cannot traverse; the host never sees the mount), then
sets the resource limits, drops every group and switches to the slot's uid/gid, asks for SIGKILL when the harness
dies, becomes a child subreaper and starts bwrap (unprivileged from here on). bwrap's monitor exits without
reaping the namespace's init; as subreaper the launcher reaps it and every other orphan, so no zombie of the
slot's uid outlives the run, and the harness's wait4 sees the CPU time of the whole tree. It exits with bwrap's
status (128 + signal when bwrap was killed). Standard library only: it imports nothing of the harness.
A failure before bwrap starts is one line on stderr, prefixed "sandbox-launcher:", and exit status 125.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LAUNCH_FAILED = 125


def _libc_call(libc: ctypes.CDLL, name: str, *args: object) -> None:
    if getattr(libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def launch(config: dict, command: list[str]) -> int:
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if config["binds"]:
        _libc_call(libc, "unshare", CLONE_NEWNS)
        _libc_call(libc, "mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
        for source, target in config["binds"]:
            _libc_call(libc, "mount", os.fsencode(source), os.fsencode(target), None, MS_BIND | MS_REC, None)
    for name, (soft, hard) in config["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if config["uid"] is not None:
        os.setgroups([])
        os.setresgid(config["gid"], config["gid"], config["gid"])
        os.setresuid(config["uid"], config["uid"], config["uid"])
    _libc_call(libc, "prctl", PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)  # after the uid switch, which clears it
    if os.getppid() != parent:  # the harness died before the death signal was armed
        return LAUNCH_FAILED
    _libc_call(libc, "prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    child = os.fork()
    if child == 0:
        try:
            _libc_call(libc, "prctl", PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            os.execv(command[0], command)
        except OSError as error:
            print(f"sandbox-launcher: {command[0]}: {error}", file=sys.stderr)
        os._exit(LAUNCH_FAILED)
    return _reap_all(child)


def _reap_all(child: int) -> int:
    """Let go of the standard streams and every passed fd, reap until no child is left; bwrap's exit status."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    status = LAUNCH_FAILED
    while True:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            return status
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(wait_status)
            status = code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("sandbox-launcher: usage: launch.py CONFIG_JSON -- COMMAND...", file=sys.stderr)
        return LAUNCH_FAILED
    try:
        return launch(json.loads(argv[1]), argv[3:])
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"sandbox-launcher: {error}", file=sys.stderr)
    return LAUNCH_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
