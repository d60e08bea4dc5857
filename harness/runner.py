"""One run end to end: config -> dataset -> backend -> SUT -> LoadGen -> accuracy -> manifest."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from harness import artifacts
from harness.artifacts import Manifest, Reason, ReasonCode, RunArtifacts
from harness.backends.base import Backend, BackendInfo
from harness.backends.cache import CachedBackend
from harness.config import RunConfig
from harness.console import Progress, stderr
from harness.dataset import Dataset, load_dataset
from harness.distributed import launch, replicas
from harness.distributed.dispatch import DispatchBackend
from harness.errors import ConfigError, HarnessError, Interrupted, RunError
from harness.loadgen import (
    AUDIT_CONFIG,
    LoadGenCompleter,
    SutCallbacks,
    TestPlan,
    require_round_support,
    run_test,
)
from harness.network import capture, counters
from harness.results import loadgen_result
from harness.rounds import round_spec
from harness.sut.base import SutCore
from harness.sut.offline import OfflineSut
from harness.sut.server import ServerSut
from harness.tokenizer import load_tokenizer
from harness.types import RunStatus, Scenario, TestMode
from harness.userconf import offline_query_blowup, render_user_conf

__all__ = ["RunOutcome", "run"]


@dataclass
class RunOutcome:
    """What `harness run` reports: where the run is, its manifest, and the process exit code."""

    run_dir: Path
    manifest: Manifest
    exit_code: int


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("mlperf-llm-harness", "mlcommons-loadgen", "numpy", "torch", "transformers", "tensorrt_llm",
                 "mpi4py", "nltk", "rouge-score", "rouge-score-rs"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}{'-dirty' if dirty else ''}"


def _refuse_stray_audit_config() -> None:
    stray = Path.cwd() / AUDIT_CONFIG
    if stray.exists():
        raise ConfigError(
            f"{stray} exists; LoadGen would silently turn this run into a compliance (TEST06) run",
            hint="delete or move that file; `compliance run TEST06` supplies its own audit.config",
        )


def _new_manifest(config: RunConfig, command: list[str]) -> Manifest:
    return Manifest(
        round=config.round, benchmark=config.benchmark, scenario=config.scenario.value, mode=config.mode.value,
        compliance_test=config.compliance_test, backend=config.backend.kind,
        model=config.model.name or config.model.path or "embedded SmolLM2-135M-Instruct",
        command=command, host=socket.gethostname(), started_at=artifacts.utc_now(), versions=_versions(),
        git_commit=_git_commit(), environment=artifacts.recorded_environment(),
        deviations=config.deviations() + (["model: SmolLM2-135M-Instruct instead of Llama-2-70b-chat-hf"]
                                          if config.model.is_embedded else []),
        details={"cwd": os.getcwd()},  # the root that relative paths of `command` are relative to
    )


def _write_inputs(config: RunConfig, run: RunArtifacts, sample_count: int) -> tuple[Path | None, Path, list[str]]:
    spec = round_spec(config.round)
    artifacts.write_text_atomic(run.file(artifacts.CONFIG),
                                yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    mlperf_conf = None
    if spec.mlperf_conf_text is not None:
        mlperf_conf = run.file(artifacts.MLPERF_CONF)
        artifacts.write_text_atomic(mlperf_conf, spec.mlperf_conf_text)
    user_conf = render_user_conf(config, sample_count)
    blowup = offline_query_blowup(config, user_conf.values)
    if blowup is not None:
        raise ConfigError(blowup, hint="the round pins this LoadGen: change the run's loadgen values as said")
    artifacts.write_text_atomic(run.file(artifacts.USER_CONF), user_conf.text)
    return mlperf_conf, run.file(artifacts.USER_CONF), user_conf.shortened


def _make_sut(config: RunConfig, dataset: Dataset, backend: Backend, completer: LoadGenCompleter) -> SutCore:
    """The scenario's SUT; it becomes the backend's sink when it starts the backend."""
    sut_class = OfflineSut if config.scenario is Scenario.OFFLINE else ServerSut
    return sut_class(dataset.samples, backend, completer, None, config.scenario.streams_first_token)


def _write_samples(run: RunArtifacts, sut: SutCore, dispatcher: DispatchBackend | None) -> None:
    replicas = dispatcher.assignments if dispatcher is not None else None
    lines = [json.dumps(record) for record in sut.records.as_json(replicas)]
    artifacts.write_text_atomic(run.file(artifacts.SAMPLES), "\n".join(lines) + ("\n" if lines else ""))


def _evaluate(config: RunConfig, run: RunArtifacts, dataset: Dataset, tokenizer: Any) -> dict[str, Any]:
    from harness.accuracy.evaluate import score_accuracy_log, write_accuracy_outputs

    report = score_accuracy_log(run.file(artifacts.ACCURACY_LOG), dataset.references, tokenizer,
                                dtype="int32", benchmark=config.benchmark)
    write_accuracy_outputs(report, run.path)
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
        self.run = RunArtifacts(artifacts.create_run_dir(path, config.overwrite))
        self.manifest = _new_manifest(config, command)
        self.run.write_manifest(self.manifest)
        self.reasons: list[Reason] = []

    def _reason(self, code: ReasonCode, text: str) -> None:
        self.reasons.append(Reason(code=code, text=text))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        self.manifest.status = status
        self.manifest.error = error
        self.manifest.ended_at = artifacts.utc_now()
        reasons = list(self.reasons)
        if status is not RunStatus.COMPLETED:
            reasons.append(Reason(code=ReasonCode.NOT_COMPLETED, text=f"the run is {status.value}"))
        self.manifest.not_submittable_reasons = list(dict.fromkeys(reasons))
        self.manifest.submittable = not reasons
        self.manifest.files = self.run.hash_files()
        self.run.write_manifest(self.manifest)

    def execute(self) -> None:
        config = self.config
        tokenizer = load_tokenizer(config.model.tokenizer or config.model.path)
        dataset = load_dataset(config, tokenizer)
        mlperf_conf, user_conf, shortened = _write_inputs(config, self.run, len(dataset))
        for text in shortened:
            self._reason(ReasonCode.SHORT_RUN, text)
        self.manifest.dataset, self.manifest.sample_count = dataset.source, len(dataset)
        self.manifest.details["dataset_sha256"] = dataset.sha256
        plan = replicas.build_backend(config, self.ctx, tokenizer, self._on_worker_lost)
        self.dispatcher = plan.dispatcher
        self.manifest.details["launch"] = {"rank": self.ctx.rank, "world_size": self.ctx.world_size,
                                           "launcher": self.ctx.launcher, "host": self.ctx.host}
        # Accuracy resume: config.cache wraps the backend in the per-sample output cache.
        backend = replicas.wrap_with_cache(config, dataset.sha256, plan.backend)
        completer = LoadGenCompleter()
        sut = _make_sut(config, dataset, backend, completer)
        try:
            info = sut.start_backend()
            self._record_backend(info)
            self._warm_up(backend, info, dataset)
            self._capture_counters("before", plan)
            self._loadgen(config, dataset, sut, completer, mlperf_conf, user_conf)
            self._capture_counters("after", plan)
        finally:
            backend.stop()
            plan.close()
            if isinstance(backend, CachedBackend):
                self.manifest.details["output_cache"] = backend.report()
        if config.mode is TestMode.ACCURACY and self.manifest.status != RunStatus.ABORTED:
            self.manifest.result = self.manifest.result.model_copy(
                update=_evaluate(config, self.run, dataset, tokenizer))

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
        self.manifest.versions.update(info.versions)
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
                aborted = run_test(plan, callbacks, self._on_interrupt)
            finally:
                sut.close()
                completer.close()
        _write_samples(self.run, sut, self.dispatcher)
        if self.dispatcher is not None:
            self.manifest.details["replicas"] = {"names": self.dispatcher.names, "completed": self.dispatcher.completed,
                                                 "tokens": self.dispatcher.tokens}
        self.manifest.details["sut"] = asdict(sut.stats) | {"failures": sut.stats.failures[:20]}
        self.manifest.result = loadgen_result(self.run.path, round_spec(config.round))
        result = self.manifest.result
        if result.seed_mismatch:
            self._reason(ReasonCode.SEED_MISMATCH, f"LoadGen seeds differ from round {config.round}: "
                                                   f"{result.seed_mismatch}")
        if result.loadgen_errors:
            self._reason(ReasonCode.LOADGEN_ERRORS, f"LoadGen logged {result.loadgen_errors} error(s)")
        if aborted:
            raise Interrupted("run interrupted; LoadGen was stopped and the run marked aborted")
        if sut.stats.failures:
            raise RunError(f"{len(sut.stats.failures)} request(s) failed in the backend; first: "
                           f"{sut.stats.failures[0]}", hint="see manifest.json details.sut.failures")

    def _on_worker_lost(self, reason: str) -> None:
        """A worker rank died or hung: mark the run failed and leave (LoadGen cannot be stopped)."""
        self.finish(RunStatus.FAILED, reason)
        stderr.print(f"error: {reason}; run directory {self.run.path} marked failed", markup=False)
        os._exit(RunError.exit_code)

    def _on_terminate(self, signum: int, _frame: object) -> None:
        if os.getpid() != self.pid:
            # A forked worker (multiprocessing.Pool.terminate() at the end of accuracy scoring sends SIGTERM to
            # each) is not the run: leave quietly, never touching the manifest the parent is about to finish.
            os._exit(128 + signum)
        reason = f"terminated by signal {signum} (a time limit, scancel, or the launcher stopping this rank)"
        if self.ctx.distributed:
            reason += "; under mpirun/srun this usually means another rank exited (see the launcher's message)"
        self.finish(RunStatus.FAILED, reason)
        stderr.print(f"error: {reason}; run directory {self.run.path} marked failed", markup=False)
        os._exit(RunError.exit_code)

    def _on_interrupt(self, second: bool) -> None:
        if second:
            self.finish(RunStatus.ABORTED, "interrupted twice; LoadGen did not finish")
            stderr.print(f"aborted; partial run left in {self.run.path}", markup=False)
        else:
            stderr.print("interrupt: answering outstanding samples so LoadGen can stop "
                         "(press Ctrl-C again to leave at once)", markup=False)


def run(config: RunConfig, *, audit_config: str | None = None, command: list[str] | None = None,
        progress: bool = True) -> RunOutcome | None:
    """Execute one LoadGen test and return where its run directory is and how it ended.

    Under mpirun/srun only rank 0 runs LoadGen; the other ranks serve backend replicas and get None.
    """
    spec = round_spec(config.round)
    loadgen_version = require_round_support(spec)
    ctx = launch.detect()
    replicas.init_mpi(ctx)
    if not ctx.is_loadgen_rank:
        replicas.serve(config, ctx)
        return None
    _refuse_stray_audit_config()
    state = _Run(config, command if command is not None else sys.argv, progress, audit_config, ctx)
    signal.signal(signal.SIGTERM, state._on_terminate)
    state.manifest.versions["mlcommons-loadgen"] = loadgen_version
    try:
        state.execute()
    except Interrupted as err:
        state.finish(RunStatus.ABORTED, str(err))
        raise
    except HarnessError as err:
        state.finish(RunStatus.FAILED, str(err))
        err.message = f"{err.message} (run directory {state.run.path} marked failed)"
        raise
    except Exception as err:
        state.finish(RunStatus.FAILED, f"{type(err).__name__}: {err}")
        where = f"run directory {state.run.path} marked failed"
        raise RunError(f"run failed: {type(err).__name__}: {err} ({where})") from err
    state.finish(RunStatus.COMPLETED)
    return RunOutcome(state.run.path, state.manifest, state.manifest.exit_code())
