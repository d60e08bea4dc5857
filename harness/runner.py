"""One run end to end: config -> dataset -> backend -> SUT -> LoadGen -> accuracy -> manifest."""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import artifacts, run_record
from harness.artifacts import Manifest, Reason, ReasonCode, RunArtifacts
from harness.backends.base import Backend, BackendInfo
from harness.config import RunConfig
from harness.console import Progress, stderr
from harness.dataset import Dataset, load_dataset
from harness.distributed import launch, replicas
from harness.distributed.dispatch import DispatchBackend
from harness.errors import ConfigError, EnvironmentProblem, HarnessError, InputError, Interrupted, RunError
from harness.loadgen import (
    AUDIT_CONFIG,
    LoadGenCompleter,
    SutCallbacks,
    TestPlan,
    require_round_support,
    run_test,
)
from harness.network import capture, counters
from harness.redact import redact_mapping, redact_text
from harness.results import loadgen_result
from harness.rounds import round_spec
from harness.run_end import RunEnd, leave_now
from harness.safe_paths import os_errors
from harness.sut.base import SutCore
from harness.sut.offline import OfflineSut
from harness.sut.server import ServerSut
from harness.tokenizer import eos_token_id, load_tokenizer
from harness.types import RunStatus, Scenario, TestMode

__all__ = ["RunOutcome", "leave_without_teardown", "run"]

# After SIGTERM, LoadGen gets this long to finish and close its logs before the process leaves anyway
# (Slurm waits KillWait = 30 s by default between SIGTERM and SIGKILL).
TERM_GRACE_S = 20.0
# After Ctrl-C or SIGTERM the backend gets this long to stop; a batch still inside model.generate (C++ code that
# cannot be interrupted from outside) is abandoned, and the process leaves without interpreter teardown,
# which would otherwise abort in std::terminate while that thread still runs.
STOP_GRACE_S = 5.0
_leave_without_teardown = threading.Event()


def leave_without_teardown() -> bool:
    """True when a run left a backend thread running native code: the CLI must exit with os._exit."""
    return _leave_without_teardown.is_set()


@dataclass
class RunOutcome:
    """What `harness run` reports: where the run is, its manifest, and the process exit code."""

    run_dir: Path
    manifest: Manifest
    exit_code: int


def _refuse_stray_audit_config() -> None:
    stray = Path.cwd() / AUDIT_CONFIG
    if stray.exists():
        raise ConfigError(
            f"{stray} exists; LoadGen would silently turn this run into a compliance (audit) run",
            hint="delete or move that file; `compliance run TEST06|TEST07|TEST09` supplies its own audit.config",
        )


def _make_sut(config: RunConfig, dataset: Dataset, backend: Backend, completer: LoadGenCompleter,
              stops: tuple[int, ...] = ()) -> SutCore:
    """The scenario's SUT; it becomes the backend's sink when it starts the backend."""
    sut_class = OfflineSut if config.scenario is Scenario.OFFLINE else ServerSut
    return sut_class(dataset.samples, backend, completer, None, config.scenario.streams_first_token,
                     stop_token_ids=stops)


def _evaluate(config: RunConfig, run: RunArtifacts, dataset: Dataset, tokenizer: Any,
              progress: bool = False) -> dict[str, Any]:
    from harness.benchmarks.registry import family_module

    scorer = family_module(config.benchmark, "evaluate")  # the benchmark folder's scorer
    options = {"livecodebench": Path(config.dataset.livecodebench) if config.dataset.livecodebench else None,
               "progress": progress}
    accepted = inspect.signature(scorer.score_accuracy_log).parameters
    report = scorer.score_accuracy_log(run.file(artifacts.ACCURACY_LOG), dataset.references, tokenizer,
                                       dtype="int32", benchmark=config.benchmark,
                                       **{k: v for k, v in options.items() if k in accepted})
    scorer.write_accuracy_outputs(report, run.path)
    return {"accuracy": dict(report.summary), "accuracy_passed": report.passed, "accuracy_partial": report.partial}


class _Run:
    """State of one run while it executes, so every exit path finalises the manifest."""

    def __init__(self, config: RunConfig, command: list[str], progress: bool, audit_config: str | None,
                 ctx: launch.LaunchContext) -> None:
        self.config = config
        self.ctx = ctx
        self.dispatcher: DispatchBackend | None = None
        self.audit_config = audit_config
        self.show_progress = progress
        self.pid = os.getpid()  # forked children (accuracy workers) inherit the SIGTERM handler; see _on_terminate
        root = Path("runs")
        path = Path(config.output_dir) if config.output_dir else artifacts.default_run_dir(
            root, config.scenario.value, config.mode.value)
        with os_errors("create the run directory"):
            self.run = RunArtifacts(artifacts.create_run_dir(path, config.overwrite))
            self.manifest = run_record.new_manifest(config, command)
            self.run.write_manifest(self.manifest)
        self.reasons: list[Reason] = []
        self.terminated: int | None = None
        self.stopping = False  # Ctrl-C or SIGTERM seen: the backend is stopped with a bound
        self.lost_wait_s = 0.0
        self.end = RunEnd(self.finish, lambda: _discard(self.run.path))  # the one owner of how this run ends

    @property
    def loadgen_started(self) -> bool:
        """Whether LoadGen was started (from then on the run directory is never removed)."""
        return self.end.loadgen_started

    def _reason(self, code: ReasonCode, text: str) -> None:
        self.reasons.append(Reason(code=code, text=text))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        """Write how the run ended (as RunEnd decided it); on a full or broken disk fall back to a compact in-place
        write, else say so."""
        self.manifest.status = status
        self.manifest.error = redact_text(error) if error is not None else None
        self.manifest.ended_at = artifacts.utc_now()
        reasons = list(self.reasons)
        if status is not RunStatus.COMPLETED:
            reasons.append(Reason(code=ReasonCode.NOT_COMPLETED, text=f"the run is {status.value}"))
        self.manifest.not_submittable_reasons = list(dict.fromkeys(reasons))
        self.manifest.submittable = not reasons
        try:
            self.manifest.files = self.run.hash_files()
            self.run.write_manifest(self.manifest)
        except OSError as err:
            self._write_manifest_in_place(err)

    def _write_manifest_in_place(self, first: OSError) -> None:
        """The atomic write failed (no space for a temporary file): overwrite the manifest's own blocks."""
        text = self.manifest.model_dump_json()
        try:
            with open(self.run.manifest_path, "r+" if self.run.manifest_path.is_file() else "w") as handle:
                handle.truncate(0)
                handle.write(text + "\n")
        except OSError as err:
            stderr.print(f"error: could not record the run's end ({self.manifest.status.value}) in "
                         f"{self.run.manifest_path}: {first.strerror or first}; then {err.strerror or err}",
                         markup=False, soft_wrap=True)

    def execute(self) -> None:
        config = self.config
        tokenizer = load_tokenizer(config.model.tokenizer or config.model.path)
        dataset = load_dataset(config, tokenizer)
        mlperf_conf, user_conf, shortened = run_record.write_inputs(config, self.run, len(dataset))
        for text in shortened:
            self._reason(ReasonCode.SHORT_RUN, text)
        self.manifest.dataset, self.manifest.sample_count = dataset.source, len(dataset)
        self.manifest.details["dataset_sha256"] = dataset.sha256
        self.manifest.details.update(run_record.model_details(self.config, self.ctx.is_loadgen_rank))
        plan = replicas.build_backend(config, self.ctx, tokenizer, self._on_worker_lost)
        self.dispatcher = plan.dispatcher
        self.manifest.details["launch"] = {"rank": self.ctx.rank, "world_size": self.ctx.world_size,
                                           "launcher": self.ctx.launcher, "host": self.ctx.host}
        # Accuracy resume: config.cache wraps the backend in the per-sample output cache.
        backend = replicas.wrap_with_cache(config, dataset.sha256, plan.backend)
        completer = LoadGenCompleter(direct=config.scenario.streams_first_token)
        eos = eos_token_id(tokenizer, config.model.eos_token_id)
        sut = _make_sut(config, dataset, backend, completer, replicas.stop_ids(config, tokenizer, eos))
        try:
            info = sut.start_backend()
            self._record_backend(info)
            self._warm_up(backend, info, dataset)
            self._capture_counters("before", plan)
            self._loadgen(config, dataset, sut, completer, mlperf_conf, user_conf)
            self._capture_counters("after", plan)
        finally:
            self._record_report(backend)
            if self.stopping or sys.exc_info()[0] is not None:
                self._stop_bounded(backend, plan)
            else:
                backend.stop()
                plan.close()
        if config.mode is TestMode.ACCURACY and self.manifest.status != RunStatus.ABORTED:
            self.manifest.result = self.manifest.result.model_copy(
                update=_evaluate(config, self.run, dataset, tokenizer, self.show_progress))

    def _record_report(self, backend: Backend) -> None:
        """The backend's report in the manifest: `details.load` (one row per serving unit: requests, tokens,
        errors, version) and each named section as `details.<name>`. Also after a failure (errors count then);
        a report that cannot be had is noted, never a reason to lose the run's own outcome."""
        try:
            report = backend.report()
        except Exception as err:  # the report is bookkeeping: the run's own error (if any) stays the one raised
            self.manifest.details["backend_report_error"] = f"{type(err).__name__}: {err}"
            return
        if report.load:  # names may be URLs: a password in one is redacted like everywhere else
            self.manifest.details["load"] = redact_mapping([asdict(unit) for unit in report.load])
        for name, value in report.sections.items():
            self.manifest.details[name] = redact_mapping(value)

    def _stop_bounded(self, backend: Backend, plan: replicas.BackendPlan) -> None:
        """Stop the backend, waiting at most STOP_GRACE_S (the run is already interrupted or failing)."""
        errors: list[BaseException] = []

        def stop() -> None:
            try:
                backend.stop()
                plan.close()
            except BaseException as err:
                errors.append(err)

        thread = threading.Thread(target=stop, name="backend-stop", daemon=True)
        thread.start()
        thread.join(STOP_GRACE_S)
        if thread.is_alive():
            _leave_without_teardown.set()
            stderr.print(f"warning: the backend did not stop within {STOP_GRACE_S:.0f} s (a batch is still "
                         "generating); leaving without waiting for it", markup=False, soft_wrap=True)
        elif errors and not isinstance(errors[0], Exception):
            raise errors[0]

    def _warm_up(self, backend: Backend, info: BackendInfo, dataset: Dataset) -> None:
        """Let the backend prepare for this dataset's prompts (graphs, caches) before LoadGen's clock starts."""
        longest = max((len(sample.input_ids) for sample in dataset.samples), default=1)
        largest = max(1, info.max_batch_size)
        # Offline runs full batches (and one last partial one); Server forms batches of any size up to the limit.
        every = {1 << k for k in range(largest.bit_length())} | {largest}
        sizes = [largest] if self.config.scenario is Scenario.OFFLINE else sorted(every)
        note = backend.warm_up(longest, sizes)
        if note:
            self.manifest.details["warm_up"] = note

    def _capture_counters(self, phase: str, plan: replicas.BackendPlan) -> None:
        """RDMA/NIC counters of every host before and after LoadGen (deltas land in the run dir)."""
        if not self.config.preflight.capture_counters:
            return
        gathered = [counters.snapshot(), *(counters.snapshot_from_json(s) for s in plan.remote_counter_snapshots())]
        capture.capture(self.run.path, phase, gathered)  # type: ignore[arg-type]  # phase is before/after

    def _record_backend(self, info: BackendInfo) -> None:
        self.manifest.backend_name, self.manifest.eos_token_id = info.name, info.eos_token_id
        self.manifest.versions.update({redact_text(name): version for name, version in info.versions.items()})
        if info.notes:
            self.manifest.details["backend_notes"] = [redact_text(note) for note in info.notes]
        if not info.submittable:
            self._reason(ReasonCode.TEST_FAKE, f"backend {info.name} is a test fake")
        if self.config.compliance_test:
            self._reason(ReasonCode.COMPLIANCE_RUN,
                         f"{self.config.compliance_test} audit run, never a performance result")

    def _loadgen(self, config: RunConfig, dataset: Dataset, sut: SutCore, completer: LoadGenCompleter,
                 mlperf_conf: Path | None, user_conf: Path) -> None:
        label = f"{config.scenario.value} {config.mode.value}"
        with Progress(len(dataset), label, enabled=self.show_progress) as progress:
            sut.progress = progress
            if self.dispatcher is not None:
                started = time.monotonic()
                progress.set_extra(lambda: self.dispatcher.progress_text(lambda: time.monotonic() - started))
            plan = TestPlan(config.loadgen_model_name, config.scenario.loadgen_scenario, config.mode, mlperf_conf,
                            user_conf, self.run.path, len(dataset), len(dataset), self.audit_config)
            callbacks = SutCallbacks(sut.issue_columns, sut.flush, sut.load_samples, sut.unload_samples, sut.abort)
            try:
                self.end.loadgen_started = True
                aborted = run_test(plan, callbacks, self._on_interrupt)
            finally:
                sut.close()
                completer.close()
        run_record.write_samples(self.run, sut, self.dispatcher)
        if self.dispatcher is not None:
            self.manifest.details["replicas"] = {"names": self.dispatcher.names, "completed": self.dispatcher.completed,
                                                 "tokens": self.dispatcher.tokens}
        self.manifest.details["sut"] = asdict(sut.stats) | {"failures": sut.stats.failures[:20]}
        try:
            self.manifest.result = loadgen_result(self.run.path, round_spec(config.round))
        except InputError as err:  # LoadGen writes silently past a full disk: say why its logs are broken
            raise _log_write_problem(self.run.path) or err from None
        result = self.manifest.result
        if result.seed_mismatch:
            self._reason(ReasonCode.SEED_MISMATCH, f"LoadGen seeds differ from round {config.round}: "
                                                   f"{result.seed_mismatch}")
        if result.loadgen_errors:
            self._reason(ReasonCode.LOADGEN_ERRORS, f"LoadGen logged {result.loadgen_errors} error(s)")
        if aborted and self.terminated is not None:
            raise RunError(self._terminate_reason() + "; LoadGen was stopped and its logs closed")
        if aborted:
            raise Interrupted("run interrupted; LoadGen was stopped and the run marked aborted")
        if sut.stats.failures:
            raise RunError(f"{len(sut.stats.failures)} request(s) failed in the backend; first: "
                           f"{sut.stats.failures[0]}", hint="see manifest.json details.sut.failures")

    def _on_worker_lost(self, reason: str) -> None:
        """A worker rank died or hung: the run fails and the process leaves (LoadGen cannot be stopped)."""
        ending = self.end.failed(reason, leave=True)
        stderr.print(f"error: {ending.message}; run directory {self.run.path} marked {ending.status.value}",
                     markup=False)
        leave_now(ending.exit_code)

    def _terminate_reason(self) -> str:
        signum = self.terminated or signal.SIGTERM
        reason = (f"terminated by signal {signum} ({signal.Signals(signum).name}: a time limit, scancel, or the "
                  "launcher stopping this rank)")
        if self.ctx.distributed:
            lost = _lost_workers(self.dispatcher, self.lost_wait_s)
            reason += (f"; {lost}" if lost else
                       "; under mpirun/srun this usually means another rank exited (see the launcher's message)")
        return reason

    def _on_terminate(self, signum: int, _frame: object) -> None:
        """SIGTERM: record the failure at once, then stop LoadGen like a first Ctrl-C so its logs are closed;
        leave after TERM_GRACE_S at the latest. A second SIGTERM leaves at once."""
        if os.getpid() != self.pid:
            # A forked worker (multiprocessing.Pool.terminate() at the end of accuracy scoring sends SIGTERM to
            # each) is not the run: leave quietly, never touching the manifest the parent is about to finish.
            os._exit(128 + signum)
        if self.terminated is not None:
            self._leave_terminated("terminated twice; LoadGen's logs may be incomplete")
        self.terminated = signum
        self.stopping = True
        self.end.failed(self._terminate_reason())  # recorded at once: SIGKILL may follow soon
        # The decision stands: a Ctrl-C from now on would only turn the exit into a death by SIGINT (a second
        # SIGTERM still leaves at once).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _say_now(f"terminating: {self._terminate_reason()}; stopping LoadGen (at most {TERM_GRACE_S:.0f} s) so its "
                 "logs are closed")
        threading.Thread(target=self._term_watchdog, name="sigterm-watchdog", daemon=True).start()
        raise KeyboardInterrupt  # the Ctrl-C path: LoadGen is stopped cleanly, or the run unwinds

    def _term_watchdog(self) -> None:
        time.sleep(TERM_GRACE_S)
        self._leave_terminated(f"LoadGen did not finish within {TERM_GRACE_S:.0f} s of SIGTERM")

    def _leave_terminated(self, why: str) -> None:
        ending = self.end.failed(f"{self._terminate_reason()}; {why}", leave=True)
        _say_now(f"error: {why}; run directory {self.run.path} marked {ending.status.value}")
        leave_now(ending.exit_code)

    def terminated_error(self, err: BaseException | None) -> RunError:
        """After SIGTERM, whatever unwinds the run (the handler's KeyboardInterrupt, or an error it caused in the
        code it interrupted, e.g. an import cut in half) is the signal's doing: report the signal (run() records it)."""
        reason = self._terminate_reason()
        if err is not None and not str(err).startswith(reason):
            reason += f"; then {type(err).__name__}: {str(err)[:300]}"
        return RunError(reason)

    def _on_interrupt(self, second: bool) -> None:
        self.stopping = True
        if second:  # LoadGen cannot be stopped from outside: leave now, with the decided ending's code
            ending = self.end.interrupted("interrupted twice; LoadGen did not finish", twice=True)
            stderr.print(f"{'aborted' if ending.status is RunStatus.ABORTED else 'error: ' + str(ending.message)}; "
                         f"partial run left in {self.run.path}", markup=False)
            leave_now(ending.exit_code)
        if self.terminated is not None:
            return
        else:
            stderr.print("interrupt: answering outstanding samples so LoadGen can stop "
                         "(press Ctrl-C again to leave at once)", markup=False)


def _say_now(line: str) -> None:
    """One line to stderr from a signal handler: a raw write, no rich, no import, no buffered stream's lock (the
    handler may run inside an import of the very module a console print would need, or inside a print)."""
    with contextlib.suppress(OSError):
        os.write(2, (line + "\n").encode(errors="replace"))


def _execute(state: _Run) -> None:
    """Run the test; once SIGTERM came, whatever unwinds it (the handler's KeyboardInterrupt, or what that broke in
    the code it cut into) becomes the signal's RunError."""
    try:
        state.execute()
    except (KeyboardInterrupt, Exception) as err:
        if state.terminated is None:
            raise
        if getattr(err, "leaves_native_thread", False):
            _leave_without_teardown.set()
        raise state.terminated_error(None if isinstance(err, KeyboardInterrupt) else err) from None


def _lost_workers(dispatcher: DispatchBackend | None, wait_s: float) -> str:
    """Which worker ranks rank 0 knows to be dead or silent (named in the SIGTERM record)."""
    if dispatcher is None:
        return ""
    from harness.distributed.transport import describe_lost_workers

    return describe_lost_workers(wait_s)


def _log_write_problem(path: Path) -> EnvironmentProblem | None:
    """Why LoadGen's logs may be truncated: a full file system or the file-size limit (ulimit -f)."""
    import resource

    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    if free < 1 << 16:
        return EnvironmentProblem(f"LoadGen could not write its logs in {path}: the file system is full "
                                  f"({free} bytes free) [ENOSPC]", hint="free space, or choose another --output-dir")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    sizes = [path.joinpath(name).stat().st_size for name in artifacts.LOADGEN_FILES if path.joinpath(name).is_file()]
    if limit != resource.RLIM_INFINITY and any(size >= limit for size in sizes):
        return EnvironmentProblem(f"LoadGen could not write its logs in {path}: they reached the file-size limit "
                                  f"of {limit} bytes (ulimit -f) [EFBIG]", hint="raise `ulimit -f`")
    return None


def _discard(path: Path) -> bool:
    """Remove a run directory that holds only what the harness wrote before anything ran (bad input found
    late, e.g. in the dataset), so the corrected identical command can be retried. False if it holds more."""
    ours = {artifacts.MANIFEST, artifacts.CONFIG, artifacts.USER_CONF, artifacts.MLPERF_CONF}
    try:
        if any(p.name not in ours for p in path.iterdir()):
            return False
        shutil.rmtree(path)
    except OSError:
        return False
    return True


def run(config: RunConfig, *, audit_config: str | None = None, command: list[str] | None = None,
        progress: bool = True) -> RunOutcome | None:
    """Execute one LoadGen test and return where its run directory is and how it ended.

    Under mpirun/srun only rank 0 runs LoadGen; the other ranks serve backend replicas and get None.
    """
    spec = round_spec(config.round)
    loadgen_version = require_round_support(spec)
    replicas.check_engine(config)  # a missing engine is refused before a run directory exists
    ctx = launch.detect()
    replicas.init_mpi(ctx)
    if not ctx.is_loadgen_rank:
        replicas.serve(config, ctx)
        return None
    _refuse_stray_audit_config()
    state = _Run(config, command if command is not None else sys.argv, progress, audit_config, ctx)
    state.manifest.versions["mlcommons-loadgen"] = loadgen_version
    signal.signal(signal.SIGTERM, state._on_terminate)
    try:
        _execute(state)
    except (KeyboardInterrupt, Exception) as err:
        ending, raised = state.end.from_exception(err, str(state.run.path))
        if ending.leave_now:
            _leave_without_teardown.set()
        raise raised from (None if isinstance(err, (KeyboardInterrupt, HarnessError, OSError)) else err)
    ending = state.end.completed(state.manifest.exit_code())
    if ending.status is not RunStatus.COMPLETED:  # a SIGTERM that came after the test: its decision stands
        raised = RunError(f"{ending.message} (run directory {state.run.path} marked {ending.status.value})")
        raised.exit_code = ending.exit_code
        raise raised
    return RunOutcome(state.run.path, state.manifest, state.manifest.exit_code())
