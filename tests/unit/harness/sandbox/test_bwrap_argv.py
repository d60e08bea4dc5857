"""The sandbox's command line, launcher settings and limits, as pure data; the missing-bwrap error."""

from __future__ import annotations

import json

import pytest

from harness.errors import EnvironmentProblem
from harness.sandbox import Sandbox, SandboxLimits, SandboxResult, runner, sandbox_workers
from harness.sandbox.bwrap import SCRATCH, TMP, LauncherConfig, Layout, bwrap_argv, parent_dirs, sandbox_env
from harness.sandbox.limits import HELPER_PROCESSES, rlimits

PREFIX = "/root/.pyenv/versions/3.11.7"
LAYOUT = Layout(bwrap="/usr/bin/bwrap", interpreter=f"{PREFIX}/bin/python3.11", work_dir="/tmp/s/work",
                tmp_dir="/tmp/s/tmp", python_prefix=PREFIX, python_source="/tmp/s/python",
                root_links=(("symlink", "usr/lib", "/lib"), ("ro-bind", "/lib64", "/lib64")))


def _pairs(args: list[str], option: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, arg in enumerate(args) if arg == option]


def test_every_namespace_is_new_without_capabilities_or_nested_user_namespaces() -> None:
    args = bwrap_argv(LAYOUT, ["main.py"], info_fd=7)
    command = args[:args.index("--")]
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                 "--clearenv"):
        assert flag in command
    assert "--share-net" not in command
    assert command[command.index("--cap-drop") + 1] == "ALL"
    assert command[command.index("--info-fd") + 1] == "7"


def test_only_usr_the_prefix_and_the_scratch_are_bound() -> None:
    args = bwrap_argv(LAYOUT, ["main.py"], info_fd=7)
    assert _pairs(args, "--ro-bind") == [("/usr", "/usr"), ("/lib64", "/lib64"), ("/tmp/s/python", PREFIX)]
    assert _pairs(args, "--bind") == [("/tmp/s/work", SCRATCH), ("/tmp/s/tmp", TMP)]
    assert _pairs(args, "--symlink") == [("usr/lib", "/lib")]
    sources = {source for source, _ in _pairs(args, "--ro-bind") + _pairs(args, "--bind")}
    assert not any(source in ("/", "/root", "/home", "/etc", "/work") for source in sources)
    assert "--dev-bind" not in args and "/etc" not in args


def test_the_prefix_parents_are_made_searchable_and_dev_is_read_only() -> None:
    args = bwrap_argv(LAYOUT, ["main.py"], info_fd=7)
    made = [args[i + 1] for i, arg in enumerate(args) if arg == "--dir"]
    assert made == ["/root", "/root/.pyenv", "/root/.pyenv/versions"]
    for i, arg in enumerate(args):
        if arg == "--dir":
            assert args[i - 2:i] == ["--perms", "0755"]
    remounted = [args[i + 1] for i, arg in enumerate(args) if arg == "--remount-ro"]
    assert remounted == ["/dev", "/"]
    assert args.index("--tmpfs") < args.index("--remount-ro")  # /dev/shm exists before /dev turns read-only
    assert args[args.index("--tmpfs") - 4:args.index("--tmpfs")][:2] == ["--size", str(1024 * 1024)]


def test_the_program_runs_in_scratch_with_a_minimal_environment() -> None:
    args = bwrap_argv(LAYOUT, ["main.py", "--flag"], info_fd=7)
    assert args[args.index("--chdir") + 1] == SCRATCH
    assert args[-3:] == [f"{PREFIX}/bin/python3.11", "main.py", "--flag"]
    env = dict(_pairs(args, "--setenv"))
    assert env == sandbox_env(LAYOUT.interpreter)
    assert env["HOME"] == SCRATCH and env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONHASHSEED"] == "0"
    assert env["PATH"].split(":") == [f"{PREFIX}/bin", "/usr/bin", "/bin"]


def test_a_prefix_under_usr_is_not_bound_twice() -> None:
    layout = Layout(bwrap="bwrap", interpreter="/usr/bin/python3.11", work_dir="/w", tmp_dir="/t")
    args = bwrap_argv(layout, ["-c", "pass"], info_fd=3)
    assert _pairs(args, "--ro-bind") == [("/usr", "/usr")]
    assert "--dir" not in args
    assert dict(_pairs(args, "--setenv"))["PATH"] == "/usr/bin:/bin"


def test_parent_dirs() -> None:
    assert parent_dirs("/a/b/c") == ["/a", "/a/b"]
    assert parent_dirs("/a") == []


def test_launcher_config_round_trips_as_json() -> None:
    config = LauncherConfig(rlimits={"RLIMIT_CPU": (2, 3)}, uid=5, gid=6, binds=(("/src", "/dst"),))
    assert json.loads(config.to_json()) == {"rlimits": {"RLIMIT_CPU": [2, 3]}, "uid": 5, "gid": 6,
                                            "binds": [["/src", "/dst"]]}


def test_rlimits_follow_the_limits() -> None:
    limits = SandboxLimits(cpu_seconds=2.5, memory_bytes=1 << 30, processes=10, file_bytes=1 << 20)
    values = rlimits(limits)
    assert values["RLIMIT_CPU"] == (3, 4)  # SIGXCPU at the soft limit, SIGKILL a second later
    assert values["RLIMIT_AS"] == (1 << 30, 1 << 30)
    assert values["RLIMIT_NPROC"] == (10 + HELPER_PROCESSES,) * 2
    assert values["RLIMIT_FSIZE"] == (1 << 20, 1 << 20)
    assert values["RLIMIT_CORE"] == (0, 0)
    assert rlimits(limits, nproc_base=100)["RLIMIT_NPROC"] == (110 + HELPER_PROCESSES,) * 2


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="wall_seconds"):
        SandboxLimits(wall_seconds=0)


def test_ok_means_exit_zero_and_not_killed() -> None:
    base = dict(stdout=b"", stderr=b"", timed_out=False, output_truncated=False, killed=False, wall_seconds=0.1)
    assert SandboxResult(returncode=0, **base).ok
    assert not SandboxResult(returncode=1, **base).ok
    assert not SandboxResult(returncode=None, **{**base, "killed": True, "timed_out": True}).ok


def test_sandbox_workers() -> None:
    assert sandbox_workers(3) == 3
    assert sandbox_workers() >= 1
    with pytest.raises(ValueError):
        sandbox_workers(0)


def test_a_missing_bwrap_is_an_environment_problem_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_bwrap_path", lambda: None)
    runner._probe.cache_clear()
    try:
        with pytest.raises(EnvironmentProblem, match="bwrap") as raised:
            Sandbox.check_available()
        assert "apt-get install bubblewrap" in (raised.value.hint or "")
        assert raised.value.exit_code == 3
        with pytest.raises(EnvironmentProblem):
            Sandbox()
    finally:
        runner._probe.cache_clear()
