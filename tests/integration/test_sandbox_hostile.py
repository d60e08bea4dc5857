"""The sandbox for model-written programs, with real bubblewrap: a correct program runs; each hostile one (fork
bomb, endless loop, 64 GiB allocation, network, reading secrets, writing outside, ignoring SIGTERM, output flood,
a background child) is contained, reported as not ok, ends within its bound and leaves no process behind."""

from __future__ import annotations

import ast
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.sandbox import Sandbox, SandboxLimits, SandboxResult
from harness.sandbox.runner import SLOT_UID_BASE, SLOT_UIDS

pytestmark = pytest.mark.timeout(120)

if shutil.which("bwrap") is None and not os.path.exists("/usr/bin/bwrap"):
    pytest.skip("bubblewrap (bwrap) is not installed: apt-get install bubblewrap (scripts/install-system.sh)",
                allow_module_level=True)

DEFAULT = SandboxLimits()
BOUND_S = 15.0  # generous: every hostile run must be over well within this


def _survivors(marker: str) -> list[int]:
    """Processes whose command line carries `marker` (every sandboxed program gets it as an argument)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


def _run(code: str, limits: SandboxLimits = DEFAULT, *, slot: int = 0, stdin: bytes = b"",
         files: dict[str, bytes] | None = None, scratch_parent: Path | None = None) -> tuple[SandboxResult, float]:
    marker = f"sandbox-test-{uuid.uuid4().hex}"
    sandbox = Sandbox(limits, slot=slot, scratch_parent=scratch_parent)
    start = time.monotonic()
    result = sandbox.run_python({"main.py": code.encode(), **(files or {})}, ["main.py", marker], stdin=stdin)
    elapsed = time.monotonic() - start
    assert _survivors(marker) == [], f"processes of the sandboxed program survived: {result}"
    return result, elapsed


@pytest.fixture
def scratch_parent() -> Iterator[Path]:
    """A world-searchable parent (the slot's uid must reach its scratch dir), checked empty after each run."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-parent-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_correct_program_reads_stdin_and_prints_its_answer(scratch_parent: Path) -> None:
    code = "import sys\nfrom pkg.helper import double\nprint(double(sum(map(int, sys.stdin.read().split()))))\n"
    result, elapsed = _run(code, stdin=b"1 2 3\n", files={"pkg/__init__.py": b"", "pkg/helper.py":
                                                           b"def double(x):\n    return 2 * x\n"},
                           scratch_parent=scratch_parent)
    assert result.ok, result
    assert result.stdout == b"12\n" and result.stderr == b""
    assert not (result.timed_out or result.killed or result.output_truncated)
    assert elapsed < BOUND_S
    assert list(scratch_parent.iterdir()) == []  # the scratch dir is gone


def test_inside_is_our_real_cpython_as_the_slot_uid_with_a_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "TopSecret-4242")
    code = ("import os, sys\nprint(sys.version)\nprint(sys.prefix)\nprint(os.getuid())\nprint(os.getcwd())\n"
            "print(sorted(os.environ))\nprint(sorted(os.listdir('/')))\n")
    result, _ = _run(code, slot=3)
    assert result.ok, result
    version, prefix, uid, cwd, env, root = result.stdout.decode().splitlines()
    assert version == sys.version and prefix == sys.base_prefix
    if os.geteuid() == 0:  # a uid of its own: the slot's, or the next free one while another process holds that
        assert SLOT_UID_BASE <= int(uid) < SLOT_UID_BASE + SLOT_UIDS
    assert cwd == "/scratch"
    assert "SANDBOX_TEST_SECRET" not in env and "TopSecret-4242" not in result.stdout.decode()
    assert ast.literal_eval(env) == ["HOME", "LANG", "LC_ALL", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE",
                                     "PYTHONHASHSEED", "PYTHONIOENCODING", "TMPDIR"]
    assert not {"etc", "home", "work", "var", "mnt"} & set(ast.literal_eval(root))


def test_a_fork_bomb_is_contained_and_leaves_nothing_behind() -> None:
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result, elapsed = _run(code, SandboxLimits(wall_seconds=3))
    assert not result.ok and result.killed and result.timed_out and result.returncode is None
    assert elapsed < BOUND_S


def test_the_process_limit_holds() -> None:
    code = ("import os, time\nn = 0\nfor _ in range(100):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
            "    n += 1\nprint(n)\nraise SystemExit(3)\n")
    result, elapsed = _run(code, SandboxLimits(processes=8))
    assert result.returncode == 3 and not result.ok, result
    assert int(result.stdout) < 8  # the program itself is one of its 8 processes
    assert elapsed < BOUND_S  # the sleeping children died with the namespace, nobody waited for them


def test_an_endless_loop_is_killed_at_the_wall_limit() -> None:
    result, elapsed = _run("while True:\n    pass\n", SandboxLimits(wall_seconds=2))
    assert not result.ok and result.timed_out and result.killed and result.returncode is None
    assert 1.5 < elapsed < BOUND_S


def test_an_endless_loop_stops_at_the_cpu_limit() -> None:
    result, elapsed = _run("while True:\n    pass\n", SandboxLimits(cpu_seconds=1, wall_seconds=30))
    assert not result.ok and result.timed_out and not result.killed
    assert result.returncode is not None and result.returncode > 128  # SIGXCPU (or SIGKILL at the hard limit)
    assert elapsed < BOUND_S


def test_a_64_gib_allocation_fails_with_memory_error() -> None:
    result, elapsed = _run("x = bytearray(64 * 1024**3)\nprint('allocated')\n")
    assert not result.ok and result.returncode == 1
    assert b"MemoryError" in result.stderr and b"allocated" not in result.stdout
    assert elapsed < BOUND_S


def test_a_big_file_is_stopped_at_the_file_size_limit() -> None:
    code = "with open('big', 'wb') as f:\n    f.write(b'x' * (2 * 1024 * 1024))\nprint('written')\n"
    result, _ = _run(code, SandboxLimits(file_bytes=1024 * 1024))
    assert not result.ok and b"written" not in result.stdout


def test_no_network_not_even_the_hosts_loopback() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\nprint('connected')\n"
        result, elapsed = _run(code)
        assert not result.ok and b"connected" not in result.stdout
        assert b"ConnectionRefusedError" in result.stderr or b"OSError" in result.stderr, result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever arrived
        assert elapsed < BOUND_S
    finally:
        listener.close()


@pytest.fixture
def host_secret() -> Iterator[Path]:
    """A world-readable file on the host, outside the scratch: only the sandbox's walls can keep it unread."""
    path = Path(f"/tmp/sandbox-secret-{uuid.uuid4().hex}")
    path.write_text("TopSecret-4242")
    path.chmod(0o644)
    yield path
    path.unlink()


@pytest.mark.parametrize("target", ["/root/.ssh/id_rsa", "/root/.ssh/authorized_keys", "/etc/shadow", "/etc/passwd",
                                    "/work/main/README.md", "SECRET", "/proc/1/root/etc/shadow", "../SECRET"])
def test_files_outside_the_scratch_cannot_be_read(target: str, host_secret: Path) -> None:
    path = str(host_secret) if target == "SECRET" else f"../..{host_secret}" if target == "../SECRET" else target
    result, _ = _run(f"print(open({path!r}).read())\n")
    assert not result.ok and b"TopSecret-4242" not in result.stdout, result
    assert b"Error" in result.stderr


def test_the_home_directory_of_the_host_is_invisible() -> None:
    result, _ = _run("import os\nprint(sorted(os.listdir('/root')) if os.path.exists('/root') else [])\n")
    assert result.ok, result
    listed = ast.literal_eval(result.stdout.decode())
    assert ".ssh" not in listed and set(listed) <= {".pyenv"}  # at most the path to the interpreter's prefix


@pytest.mark.parametrize("where", ["/root", "/work", "/etc", "/home", "/", "/usr", sys.base_prefix, "/dev"])
def test_nothing_outside_the_scratch_can_be_written(where: str) -> None:
    target = f"{where.rstrip('/')}/pwned-{uuid.uuid4().hex}"
    result, _ = _run(f"open({target!r}, 'w').write('pwned')\nprint('wrote')\n")
    assert not result.ok and b"wrote" not in result.stdout, result
    assert not os.path.exists(target)


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm"])
def test_the_sandboxs_own_tmp_and_shm_are_not_the_hosts(where: str) -> None:
    target = f"{where}/pwned-{uuid.uuid4().hex}"
    result, _ = _run(f"open({target!r}, 'w').write('pwned')\nprint('wrote')\n")
    assert result.ok, result  # its private scratch /tmp, its private 1 MiB /dev/shm
    assert not os.path.exists(target)


def test_writes_inside_the_scratch_work_and_vanish_with_it(scratch_parent: Path) -> None:
    code = ("import os, tempfile\nopen('out.txt', 'w').write('ok')\nopen(os.path.expanduser('~/h'), 'w').write('h')\n"
            "with tempfile.NamedTemporaryFile(delete=False) as f:\n    f.write(b't')\nprint(open('out.txt').read())\n")
    result, _ = _run(code, scratch_parent=scratch_parent)
    assert result.ok and result.stdout == b"ok\n", result
    assert list(scratch_parent.iterdir()) == []


def test_a_program_ignoring_sigterm_still_dies_at_the_wall_limit() -> None:
    code = ("import signal, time\nfor sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
            "    signal.signal(sig, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)\n")
    result, elapsed = _run(code, SandboxLimits(wall_seconds=2))
    assert not result.ok and result.timed_out and result.killed
    assert elapsed < BOUND_S


def test_an_output_flood_is_cut_at_the_cap() -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n    sys.stderr.write('y' * 4096)\n"
    result, elapsed = _run(code, SandboxLimits(output_bytes=1024 * 1024))
    assert not result.ok and result.output_truncated and result.killed and not result.timed_out
    assert len(result.stdout) + len(result.stderr) == 1024 * 1024
    assert elapsed < BOUND_S


def test_a_background_child_does_not_outlive_the_program() -> None:
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
            "    os._exit(0)\nprint('parent done')\n")
    result, elapsed = _run(code)  # _run asserts that no process of it survives
    assert result.ok and result.stdout == b"parent done\n", result
    assert elapsed < BOUND_S


def test_bad_file_names_are_refused() -> None:
    sandbox = Sandbox()
    for name in ("/etc/evil", "../evil", "a/../../evil", ""):
        with pytest.raises(InputError):
            sandbox.run_python({name: b"x"}, ["-c", "pass"])


def test_many_sandboxes_run_in_parallel_threads() -> None:
    code = "import sys\nn = int(sys.stdin.read())\nprint(sum(i * i for i in range(n)))\n"

    def one(slot: int) -> tuple[int, SandboxResult]:
        result, _ = _run(code, slot=slot, stdin=str(1000 + slot).encode())
        return slot, result

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(8)))
    for slot, result in results:
        assert result.ok, result
        assert int(result.stdout) == sum(i * i for i in range(1000 + slot))


@pytest.mark.skipif(os.geteuid() != 0, reason="uids of their own need root; unprivileged runs share our uid")
def test_concurrent_runs_on_one_slot_get_different_uids() -> None:
    code = "import os, time\ntime.sleep(1)\nprint(os.getuid())\n"
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: _run(code, slot=7)[0], range(3)))
    assert all(result.ok for result in results), results
    uids = {int(result.stdout) for result in results}
    assert len(uids) == 3  # _run checked that nothing of any of them survived
