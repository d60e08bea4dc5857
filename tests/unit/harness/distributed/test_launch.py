"""Process identities: rank 0 tells a dead worker from a live one on its machine, and says so when it cannot."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

from harness.distributed import launch
from harness.distributed.launch import ProcessIdentity, process_gone, process_identity


def _identity_of(pid: int) -> ProcessIdentity:
    me = process_identity()
    return ProcessIdentity(host=me.host, pid=pid, start_ticks=launch._start_ticks(pid), machine=me.machine)


def test_a_running_process_is_not_gone_and_a_killed_one_is_even_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        identity = _identity_of(child.pid)
        assert identity.start_ticks is not None
        assert process_gone(identity) is False
        child.kill()
        deadline = time.monotonic() + 10
        while launch._state(child.pid) not in ("Z", "X", None) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process_gone(identity) is True  # a zombie, not yet waited for
        child.wait()
        assert process_gone(identity) is True  # no such pid at all
    finally:
        child.kill()
        child.wait()


def test_a_reused_pid_is_gone() -> None:
    me = process_identity()
    assert process_gone(me) is False
    assert me.start_ticks is not None
    assert process_gone(dataclasses.replace(me, start_ticks=me.start_ticks + 1)) is True


def test_another_machine_or_pid_namespace_cannot_be_told() -> None:
    me = process_identity()
    assert process_gone(dataclasses.replace(me, machine="otherhost|boot|pid:[1]")) is None
    assert process_gone(dataclasses.replace(me, pid=os.getpid())) is False


def test_rank_zero_names_the_dead_local_worker_and_a_silent_remote_one_but_not_live_ones() -> None:
    from harness.distributed import transport

    receiver = transport.Receiver(comm=None, timeout_s=30, on_worker_lost=lambda reason: None)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        now = time.monotonic()
        me = process_identity()
        receiver.last_seen = {1: now, 2: now, 3: now - 5.0, 4: now}
        receiver.identities = {1: me, 2: _identity_of(child.pid),
                               3: dataclasses.replace(me, host="node7", machine="node7|b|p"),
                               4: dataclasses.replace(me, host="node8", machine="node8|b|p")}
        assert receiver.describe_lost() == ["worker rank 3 on node7 stopped answering 5.0 s ago (it most likely "
                                            "exited first)"]
        child.kill()
        child.wait()
        found = transport.describe_lost_workers()
        assert found.startswith(f"worker rank 2 (pid {child.pid} on {me.host}) is gone: it exited or was killed"), found
        assert "rank 1" not in found and "rank 4" not in found and "worker rank 3 on node7" in found
    finally:
        child.kill()
        child.wait()
        receiver.close()
