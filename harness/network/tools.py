"""Run nccl-tests and perftest binaries when they are installed, and return their raw output."""

from __future__ import annotations

import shutil
import subprocess
import time

from harness.errors import EnvironmentProblem

_TIMEOUT_S = 300


def run_all_reduce_perf(gpus: int, max_bytes: str = "256M") -> str | None:
    """all_reduce_perf over this host's GPUs (one process, -g GPUS); None when the binary is absent."""
    binary = shutil.which("all_reduce_perf")
    if binary is None or gpus < 1:
        return None
    done = subprocess.run([binary, "-b", "8", "-e", max_bytes, "-f", "2", "-g", str(gpus)], capture_output=True,
                          text=True, timeout=_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise EnvironmentProblem(f"all_reduce_perf failed (exit {done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}",
                                 hint="run it by hand with NCCL_DEBUG=INFO to see why")
    return done.stdout


def run_ib_write_bw_loopback(device: str, gid_index: int | None) -> str | None:
    """ib_write_bw server and client on this host through one device (checks the HCA, not the switch)."""
    binary = shutil.which("ib_write_bw")
    if binary is None:
        return None
    argv = [binary, "-d", device, "--report_gbits", "-F"] + (["-x", str(gid_index)] if gid_index is not None else [])
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # the server must listen before the client connects
        client = subprocess.run([*argv, "localhost"], capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    finally:
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if client.returncode != 0:
        raise EnvironmentProblem(f"ib_write_bw loopback on {device} failed (exit {client.returncode})",
                                 hint=f"check `ibv_devinfo -d {device}` and the GID index (-x)")
    return client.stdout
