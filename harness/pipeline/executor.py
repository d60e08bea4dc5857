"""Runs a pipeline plan locally: skips up-to-date stages, runs the rest, stops at the first failure.

A run stage is up to date when the state file holds its current fingerprint with status completed and
its run directory's manifest says completed (and is the one the pipeline recorded). A stage whose
command exits 1 with a completed run (an INVALID performance result, a failed compliance test or check) is
completed with verdict "fail": the pipeline reports it and goes on; only a failing `submission check`
makes it exit 1. Any other failure stops the pipeline with the reason and the exact command that resumes it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.artifacts import MANIFEST, Manifest, RunArtifacts, config_text, sha256_file, utc_now, write_text_atomic
from harness.errors import ConfigError, Interrupted, RunError
from harness.pipeline import fingerprint as fp
from harness.pipeline.plan import Plan, Stage
from harness.pipeline.process import Finished, run_logged
from harness.pipeline.spec import GLOBAL_KINDS, PipelineSpec
from harness.pipeline.state import StageRecord, StateFile
from harness.types import RunStatus

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Decision:
    """Whether a stage runs, and why."""

    stage: Stage
    run: bool
    reason: str


@dataclass
class PipelineResult:
    """What happened to each selected stage, and the process exit code."""

    decisions: list[Decision]
    records: dict[str, StageRecord] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    @property
    def failed_verdicts(self) -> list[str]:
        """Stages that completed with a negative verdict."""
        return [name for name, record in self.records.items() if record.verdict == "fail"]

    @property
    def check_failed(self) -> bool:
        """True when the final `submission check` stage judged the tree failing."""
        record = self.records.get("check")
        return record is not None and record.verdict == "fail"

    @property
    def exit_code(self) -> int:
        """1 when the submission check failed, else 0 (run verdicts are reported, the check is the gate)."""
        return 1 if self.check_failed else 0


def _manifest_token(run_dir: Path) -> str | None:
    path = run_dir / MANIFEST
    return sha256_file(path) if path.is_file() else None


class Executor:
    """Decides and runs the stages of one plan against its state file."""

    def __init__(self, plan: Plan, spec: PipelineSpec, state: StateFile, echo: Echo, resume: Callable[[str], str]):
        self.plan = plan
        self.spec = spec
        self.state = state
        self.echo = echo
        self.resume = resume
        self.hasher = fp.FileHasher(state.state.hash_memo, lambda p: echo(f"hashing {p} (once; memoised)"))

    # --- fingerprints ---------------------------------------------------------------------------------
    def inputs(self, stage: Stage) -> dict[str, str]:
        """Named input hashes of a stage, from the current files and state."""
        if stage.config is not None:
            return fp.run_inputs(stage.kind, stage.config, self.hasher)
        submission = self.spec.submission
        options = submission.model_dump(mode="json") if submission else {}
        files = [self.hasher.file(path) if path.is_file() else f"missing {path}" for path in stage.input_files]
        own = fp.canonical_json([options, files])
        if stage.kind == "package":
            upstream = fp.upstream_hash((s.id, self._result(s.id)) for s in self.plan.run_stages)
        else:
            upstream = fp.upstream_hash([("package", self._result("package"))])
        return {"kind": stage.kind, "options": fp.sha256_text(own), "upstream": upstream,
                "harness": fp.harness_version()}

    def _result(self, stage_id: str) -> str | None:
        record = self.state.record(stage_id)
        return record.result if record is not None and record.status == "completed" else None

    # --- decisions ------------------------------------------------------------------------------------
    def decide(self, stages: list[Stage], force: bool) -> list[Decision]:
        """Run or skip, per selected stage, in plan order."""
        decisions: list[Decision] = []
        for stage in stages:
            upstream_runs = [d.stage.id for d in decisions if d.run and self._feeds(d.stage, stage)]
            if force:
                decisions.append(Decision(stage, True, "forced (--force)"))
            elif upstream_runs:
                decisions.append(Decision(stage, True, f"upstream {upstream_runs[-1]} runs"))
            else:
                reason = self._stale_reason(stage)
                decisions.append(Decision(stage, reason is not None, reason or "up to date"))
        return decisions

    @staticmethod
    def _feeds(upstream: Stage, stage: Stage) -> bool:
        return stage.kind in GLOBAL_KINDS and (upstream.kind not in GLOBAL_KINDS or stage.kind == "check")

    def _stale_reason(self, stage: Stage) -> str | None:
        record = self.state.record(stage.id)
        if record is None:
            return "never ran"
        inputs = self.inputs(stage)
        if record.fingerprint != fp.combine(inputs):
            changed = [k for k in inputs if record.inputs.get(k) != inputs[k]]
            return f"inputs changed: {', '.join(changed) or 'fingerprint'}"
        if record.status != "completed":
            return f"last attempt {record.status}" + (f": {record.reason}" if record.reason else "")
        if stage.config is not None and _manifest_token(stage.output or Path()) != record.result:
            return "run directory changed or incomplete"
        if stage.kind == "package" and not (stage.output and stage.output.is_dir()):
            return "submission tree missing"
        return None

    def refuse_foreign_outputs(self, decisions: list[Decision]) -> None:
        """Never replace a directory this pipeline did not write."""
        for decision in decisions:
            out = decision.stage.output
            if decision.run and out is not None and out.exists() and self.state.record(decision.stage.id) is None \
                    and (not out.is_dir() or any(out.iterdir())):
                raise ConfigError(f"{out} exists but was not written by this pipeline; refusing to replace it",
                                  hint="move it away, or set output_dir (or --output-dir) to a new directory")

    # --- running --------------------------------------------------------------------------------------
    def execute(self, decisions: list[Decision]) -> PipelineResult:
        """Run the decided stages in order; raise on the first failed stage."""
        result = PipelineResult(decisions)
        self.refuse_foreign_outputs(decisions)
        for number, decision in enumerate(decisions, start=1):
            stage = decision.stage
            prefix = f"[{number}/{len(decisions)}] {stage.id}"
            if not decision.run:
                self.echo(f"--- {prefix}: skipped ({decision.reason})")
                record = self.state.record(stage.id)
                if record is not None:
                    result.records[stage.id] = record
                continue
            self.echo(f"==> {prefix}: running ({decision.reason})\n    {stage.command}")
            result.records[stage.id] = self._run(stage)
            result.ran.append(stage.id)
        return result

    def _run(self, stage: Stage) -> StageRecord:
        inputs = self.inputs(stage)
        self._prepare(stage)
        self.state.start(stage.id, fp.combine(inputs), inputs, list(stage.argv),
                         str(stage.output) if stage.output else None)
        log = self.plan.root / "logs" / f"{stage.id.replace('/', '__')}.log"
        try:
            finished = self._launch(stage, log)
        except KeyboardInterrupt:
            self.state.finish(stage.id, "interrupted", reason="interrupted by the user")
            raise Interrupted(f"pipeline interrupted in stage {stage.id}",
                              hint=f"resume with: {self.resume(stage.id)}") from None
        record = self._judge(stage, finished)
        if record.status != "completed":
            raise RunError(f"stage {stage.id} failed: {record.reason} (log: {log})",
                           hint=f"fix the cause, then resume with: {self.resume(stage.id)}")
        verdict = "" if record.verdict == "pass" else " (verdict: fail)"
        self.echo(f"    {stage.id}: completed{verdict}")
        return record

    def _launch(self, stage: Stage, log: Path) -> Finished:
        if stage.kind == "package":
            self._require_upstream(stage)
        return run_logged(stage.argv, log)

    def _require_upstream(self, stage: Stage) -> None:
        missing = [s.id for s in self.plan.run_stages if self._result(s.id) is None]
        if missing:
            self.state.finish(stage.id, "failed", reason=f"run stages not completed: {', '.join(missing)}")
            raise RunError(f"stage package needs every run stage completed; not completed: {', '.join(missing)}",
                           hint=f"run them first: {self.resume(missing[0])}")

    def _prepare(self, stage: Stage) -> None:
        """Write the stage's run config; drop outputs the pipeline owns that this attempt replaces."""
        previous = self.state.record(stage.id)
        if stage.config is not None and stage.config_path is not None:
            text = config_text(stage.config.model_dump(mode="json"))  # secret-looking values redacted
            write_text_atomic(stage.config_path, f"# written by `harness pipeline` for stage {stage.id}\n{text}")
        fresh = previous is None or previous.status == "completed" or \
            previous.fingerprint != fp.combine(self.inputs(stage))
        if stage.cache_dir is not None and fresh and stage.cache_dir.exists():
            shutil.rmtree(stage.cache_dir)  # a completed or stale run's outputs are not resumed
        if stage.kind == "package" and previous is not None and stage.output and stage.output.exists():
            shutil.rmtree(stage.output)

    def _judge(self, stage: Stage, finished: Finished) -> StageRecord:
        code = finished.exit_code
        if stage.config is not None and stage.output is not None:
            manifest = RunArtifacts(stage.output).read_manifest() if (stage.output / MANIFEST).is_file() else None
            completed = manifest is not None and manifest.status is RunStatus.COMPLETED and code in (0, 1)
            reason = (finished.error_line() or (manifest.error if manifest else None)
                      or (_negative_verdict(manifest) if manifest else None) or f"exit code {code}")
            token = _manifest_token(stage.output)
        else:
            manifest = None
            completed = code == 0 or (code == 1 and stage.kind == "check")
            reason = finished.error_line() or f"exit code {code}"
            token = utc_now()
        if not completed:
            return self.state.finish(stage.id, "failed", exit_code=code, reason=reason)
        negative = code == 1 or (manifest is not None and _negative_verdict(manifest))
        return self.state.finish(stage.id, "completed", exit_code=code, result=token,
                                 verdict="fail" if negative else "pass", reason=reason if negative else None)


def _negative_verdict(manifest: Manifest) -> str | None:
    """Why a completed run's result is negative (INVALID, LoadGen errors, accuracy below target), or None."""
    problem = manifest.problem()
    if problem is not None:
        return problem
    if manifest.mode == "accuracy" and manifest.result.accuracy_passed is False:
        return "accuracy below the benchmark's target"
    return None

