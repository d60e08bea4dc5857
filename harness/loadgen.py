"""The only mlperf_loadgen importer: settings from the round's conf files, SUT/QSL glue, StartTest.

One LoadGen test per process (LoadGen ≥ 5 keeps per-process config state). StartTest runs on a helper
thread so that Ctrl-C reaches Python: the first interrupt aborts the SUT (every outstanding sample is
answered at once so LoadGen can finish and write its logs); a second one exits immediately.
"""

from __future__ import annotations

import array
import gc
import os
import queue
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
import numpy as np

from harness.errors import EnvironmentProblem, RunError
from harness.rounds import RoundSpec
from harness.types import TestMode

__all__ = ["AUDIT_CONFIG", "LoadGenCompleter", "SutCallbacks", "TestPlan", "loadgen_version", "require_round_support",
           "run_test"]

AUDIT_CONFIG = "audit.config"


def loadgen_version() -> str:
    """Version of the installed LoadGen distribution."""
    for name in ("mlcommons-loadgen", "mlcommons_loadgen", "mlperf_loadgen", "mlperf-loadgen"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def require_round_support(spec: RoundSpec) -> str:
    """Refuse a round the installed LoadGen cannot produce; return the version."""
    version = loadgen_version()
    if not spec.loadgen_matches(version):
        raise EnvironmentProblem(
            f"round {spec.name} needs LoadGen {' or '.join(spec.loadgen_versions[:3])}"
            f"{'…' if len(spec.loadgen_versions) > 3 else ''}, but mlcommons-loadgen {version} is installed "
            "(its seeds would not match the round)",
            hint=(f"./scripts/install-loadgen-round.sh {spec.name} makes an environment with it beside this one "
                  f"({spec.loadgen_pip} there)" if spec.loadgen_pip.startswith("pip install") else spec.loadgen_pip),
        )
    return version


class LoadGenCompleter:
    """Reports int32 responses to LoadGen, one call per batch (implements harness.sut.base.Completer).

    Calls reach LoadGen in the order they were made, and all from one thread: LoadGen records them from per-thread
    buffers, so a first token sent from one thread and its completion from another can be recorded the wrong way
    round ("Attempted to record a sample latency before it's first token latency"). Two ways:

    - `direct=False` (Offline: no first tokens): a delivery thread makes the calls; LoadGen releases the GIL while
      it records a batch, so the backend's thread prepares the next batch meanwhile instead of waiting.
    - `direct=True` (Server, Interactive): each call is made at once in the caller's thread, which for the backends
      that stream is the one thread that reports their results (the endpoint reader, an engine's event loop):
      handing small batches over cost more (a thread wake-up and a GIL hand-over per call) than LoadGen takes to
      record them. A lock keeps calls from other threads (failures, an abort) from overlapping it.

    close() delivers what is queued and stops.
    """

    def __init__(self, direct: bool = False) -> None:
        self.direct = direct
        self._calls: queue.SimpleQueue[tuple[Callable[[list[Any]], None], list[Any], object] | None] = \
            queue.SimpleQueue()
        self._calling = threading.Lock()  # held while a direct call is made
        self._thread = threading.Thread(target=self._deliver, name="loadgen-completions", daemon=True)
        self._thread.start()

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """FirstTokenComplete for every pair, each with a one-element int32 buffer, in one call."""
        buffer = array.array("i", [token_id for _, token_id in firsts])
        address, itemsize = buffer.buffer_info()[0], buffer.itemsize
        self.send(lg.FirstTokenComplete, [lg.QuerySampleResponse(response_id, address + k * itemsize, itemsize)
                                          for k, (response_id, _) in enumerate(firsts)], buffer)

    def complete_buffer(self, response_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        """One QuerySamplesComplete: response k is buffer[offsets[k]:][:lengths[k]] (int32), n_tokens = its length."""
        buffer = np.ascontiguousarray(buffer, dtype=np.int32)
        lengths = np.asarray(lengths, dtype=np.int64)
        addresses = (np.asarray(offsets, dtype=np.int64) * buffer.itemsize + buffer.ctypes.data).tolist()
        sizes = (lengths * buffer.itemsize).tolist()
        self.send(lg.QuerySamplesComplete,
                  list(map(lg.QuerySampleResponse, response_ids, addresses, sizes, lengths.tolist())), buffer)

    def send(self, call: Callable[[list[Any]], None], responses: list[Any], buffer: object) -> None:
        """Make one LoadGen call, now or through the delivery thread (see the class docstring); `buffer` (the memory
        the responses point into) lives until it is made."""
        if self.direct:
            with self._calling:
                self._make(call, responses)
        else:
            self._calls.put((call, responses, buffer))

    def close(self) -> None:
        """Deliver everything queued, then stop the delivery thread. Idempotent."""
        if self._thread.is_alive():
            self._calls.put(None)
            self._thread.join()

    def _deliver(self) -> None:
        while (item := self._calls.get()) is not None:
            call, responses, _buffer = item
            self._make(call, responses)

    @staticmethod
    def _make(call: Callable[[list[Any]], None], responses: list[Any]) -> None:
        try:
            call(responses)
        except Exception as err:  # never let one bad call stop every later completion
            print(f"error: LoadGen rejected a response batch: {err}", file=sys.stderr)


@dataclass(frozen=True)
class TestPlan:
    """Everything StartTest needs, in harness terms."""

    __test__ = False

    model_name: str
    loadgen_scenario: str
    mode: TestMode
    mlperf_conf: Path | None
    user_conf: Path
    output_dir: Path
    total_samples: int
    performance_samples: int
    audit_config: str | None = None


class SutCallbacks:
    """What run_test needs from the SUT."""

    def __init__(self, issue: Callable[[list[int], list[int]], None], flush: Callable[[], None],
                 load: Callable[[Sequence[int]], None], unload: Callable[[Sequence[int]], None],
                 abort: Callable[[], None]) -> None:
        self.issue, self.flush, self.load, self.unload, self.abort = issue, flush, load, unload, abort


# LoadGen >= 5.0 (mlperf.conf compiled in): FromConfig(user.conf) with its default conf_type 1 loads the built-in
# mlperf.conf first, but only on its first call in a process (a static counter, loadgen/test_settings_internal.cc);
# a second call logs error_invalid_config "Multiple conf files are used" and skips mlperf.conf. One CLI run is one
# process, so it takes that official path; later tests in the same process (pytest, the pipeline's in-process
# callers) get the same settings explicitly: the built-in mlperf.conf (conf_type 0), then user.conf (conf_type 2).
_USER_CONF, _BUILT_IN, _MORE = 1, 0, 2
_official_path_used = False


def _settings(plan: TestPlan) -> lg.TestSettings:
    global _official_path_used
    settings = lg.TestSettings()
    if plan.mlperf_conf is not None:  # v4.x LoadGen: the round's mlperf.conf file, then user.conf
        _from_config(settings, plan.mlperf_conf, plan)
        _from_config(settings, plan.user_conf, plan)
    elif not _official_path_used:
        _official_path_used = True
        _from_config(settings, plan.user_conf, plan, _USER_CONF)
    else:
        _from_config(settings, Path(""), plan, _BUILT_IN)
        _from_config(settings, plan.user_conf, plan, _MORE)
    settings.scenario = getattr(lg.TestScenario, plan.loadgen_scenario)
    settings.mode = lg.TestMode.AccuracyOnly if plan.mode is TestMode.ACCURACY else lg.TestMode.PerformanceOnly
    return settings


def _from_config(settings: lg.TestSettings, path: Path, plan: TestPlan, conf_type: int | None = None) -> None:
    where = "" if path == Path("") else str(path)
    status = (settings.FromConfig(where, plan.model_name, plan.loadgen_scenario) if conf_type is None
              else settings.FromConfig(where, plan.model_name, plan.loadgen_scenario, conf_type))
    if status != 0:
        raise RunError(f"LoadGen rejected {path} (FromConfig returned {status})",
                       hint="check the file for keys LoadGen does not know or values that are not numbers")


def run_test(plan: TestPlan, sut: SutCallbacks, on_interrupt: Callable[[bool], None] | None = None) -> bool:
    """Run one LoadGen test; return True when it was aborted by Ctrl-C."""
    settings = _settings(plan)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(plan.output_dir.resolve())
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False

    # The "fast" SUT: LoadGen hands over the query as two integer lists (response ids, QSL indices) instead
    # of one QuerySample object per sample, whose creation and attribute reads cost ~1 µs a sample.
    handle = lg.ConstructFastSUT(sut.issue, sut.flush)
    qsl = lg.ConstructQSL(plan.total_samples, plan.performance_samples, sut.load, sut.unload)
    workdir = Path(tempfile.mkdtemp(prefix="harness-loadgen-cwd-"))
    thresholds = gc.get_threshold()
    previous_cwd = Path.cwd()
    aborted = False
    try:
        if plan.audit_config is not None:
            (workdir / AUDIT_CONFIG).write_text(plan.audit_config)
        os.chdir(workdir)
        finished = threading.Event()

        def start_test() -> None:
            try:
                lg.StartTestWithLogSettings(handle, qsl, settings, log_settings, AUDIT_CONFIG)
            finally:
                finished.set()

        # Everything alive now (model, dataset, imported modules) stays alive for the whole test: freezing it
        # keeps the cyclic garbage collector from walking millions of objects inside LoadGen's timed window.
        # Young collections also run 70x less often: the hot path allocates many short-lived, acyclic objects.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, *thresholds[1:])
        thread = threading.Thread(target=start_test, name="loadgen")
        thread.start()
        aborted = _wait(finished, sut, on_interrupt)
        thread.join()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        os.chdir(previous_cwd)
        shutil.rmtree(workdir, ignore_errors=True)
        lg.DestroyQSL(qsl)
        lg.DestroyFastSUT(handle)
    return aborted


def _wait(finished: threading.Event, sut: SutCallbacks, on_interrupt: Callable[[bool], None] | None) -> bool:
    # An Event, not Thread.join/is_alive: a KeyboardInterrupt inside join() can make is_alive() report a
    # still-running thread as finished (CPython < 3.13), and destroying LoadGen's SUT then crashes it.
    aborted = False
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            if on_interrupt is not None:
                on_interrupt(aborted)  # second interrupt: the caller records the abort
            if aborted:
                os._exit(130)  # LoadGen cannot be stopped from outside; leave without its teardown
            aborted = True
            sut.abort()
    return aborted
