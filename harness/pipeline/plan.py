"""The pipeline plan: one chain of run stages per benchmark × scenario, then package and check.

Stage ids read `<benchmark>/<scenario>/<kind>` (kind: accuracy, performance, test06, test07, test09) and
`package`, `check`. A compliance kind is planned only for the benchmarks whose facts list that test (Llama:
TEST06; gpt-oss-120b: TEST07 and TEST09). A selector (for --from and --only) names a kind, a scenario, a
benchmark, or a slash-joined combination such as `Server/performance`. `--from X` keeps, in every chain X
names, the stage of X's kind and every later kind, plus the global stages; `--only X` keeps exactly the stages
X names.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.benchmarks.registry import benchmark_facts
from harness.config import RunConfig, build_config, read_yaml, with_updates
from harness.errors import ConfigError
from harness.pipeline.spec import COMPLIANCE_KINDS, GLOBAL_KINDS, KINDS, PipelineSpec, SubmissionOptions
from harness.types import Scenario


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline and the exact command that performs it."""

    id: str
    kind: str
    argv: tuple[str, ...]
    output: Path | None = None
    benchmark: str | None = None
    scenario: str | None = None
    config: RunConfig | None = None
    config_path: Path | None = None
    cache_dir: Path | None = None
    input_files: tuple[Path, ...] = ()

    @property
    def command(self) -> str:
        """The command as one shell-quoted line."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Plan:
    """Every stage of a pipeline in execution order, and where its bookkeeping lives."""

    stages: list[Stage]
    root: Path
    pipeline_file: Path
    notes: list[str] = field(default_factory=list)

    @property
    def run_stages(self) -> list[Stage]:
        """Stages that produce run directories."""
        return [s for s in self.stages if s.kind not in GLOBAL_KINDS]

    def stage(self, kind: str) -> Stage | None:
        """The global stage of a kind, if planned."""
        return next((s for s in self.stages if s.id == kind), None)


def _base_data(spec: PipelineSpec, base_dir: Path) -> dict[str, object]:
    from harness.config import embedded_default_path

    if isinstance(spec.run_config, dict):
        return dict(spec.run_config)
    path = embedded_default_path() if spec.run_config is None else _resolve(base_dir, spec.run_config)
    return read_yaml(path)


def _resolve(base_dir: Path, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base_dir / candidate


def _run_config(spec: PipelineSpec, data: dict[str, object], benchmark: str, scenario: Scenario, kind: str,
                run_dir: Path, cache_dir: Path | None) -> RunConfig:
    mode = "accuracy" if kind == "accuracy" else "performance"
    overrides = [*spec.set, *spec.scenario_set.get(scenario, []), *spec.stage_set.get(kind, [])]
    # The pipeline's own values are typed, never `--set` text: a path with ' #', quotes or '=' stays that path.
    own: dict[str, object] = {"benchmark": benchmark, "scenario": scenario.value, "mode": mode,
                              "output_dir": str(run_dir), "overwrite": True,
                              "cache": str(cache_dir) if cache_dir else None}
    try:
        return with_updates(build_config({**data, **own}, overrides), own)
    except ConfigError as err:
        raise ConfigError(f"pipeline stage {benchmark}/{scenario.value}/{kind}: {err.message}", err.hint) from None


def _run_argv(kind: str, config_path: Path, scenario: Scenario, run_dir: Path) -> tuple[str, ...]:
    if kind in COMPLIANCE_KINDS:
        return (sys.executable, "-m", "compliance", "run", kind.upper(), "--config", str(config_path),
                "--scenario", scenario.value, "--output-dir", str(run_dir))
    return (sys.executable, "-m", "harness", "run", "--config", str(config_path))


def _run_stages(spec: PipelineSpec, base_dir: Path, root: Path) -> list[Stage]:
    data = _base_data(spec, base_dir)
    stages = []
    for benchmark in spec.benchmarks:
        tests = {t.lower() for t in benchmark_facts(benchmark).compliance_tests}
        for scenario in spec.scenarios:
            for kind in (k for k in KINDS if k in spec.stages and k not in GLOBAL_KINDS
                         and (k not in COMPLIANCE_KINDS or k in tests)):
                where = Path(benchmark) / scenario.value / kind
                run_dir = root / "runs" / where
                cache_dir = root / "cache" / where if kind == "accuracy" and spec.cache else None
                config = _run_config(spec, data, benchmark, scenario, kind, run_dir, cache_dir)
                config_path = root / "configs" / where.with_suffix(".yaml")
                stages.append(Stage(f"{benchmark}/{scenario.value}/{kind}", kind,
                                    _run_argv(kind, config_path, scenario, run_dir), run_dir, benchmark,
                                    scenario.value, config, config_path, cache_dir))
    return stages


def _global_stages(spec: PipelineSpec, submission: SubmissionOptions, base_dir: Path, root: Path,
                   run_stages: list[Stage]) -> list[Stage]:
    tree = root / "submission"
    round_ = submission.round or (run_stages[0].config.round if run_stages and run_stages[0].config else "v4.0")
    stages = []
    if "package" in spec.stages:
        system = _resolve(base_dir, submission.system)
        argv = (sys.executable, "-m", "submission", "package", "--round", round_, "--submitter",
                submission.submitter, "--system", str(system),
                *(str(s.output) for s in run_stages), "--output", str(tree), *submission.code_args,
                *(("--division", submission.division) if submission.division != "open" else ()),
                *submission.package_args)
        stages.append(Stage("package", "package", argv, tree, input_files=(system,)))
    if "check" in spec.stages:
        argv = (sys.executable, "-m", "submission", "check", str(tree), "--round", round_, *submission.check_args)
        stages.append(Stage("check", "check", argv, None))
    return stages


def build_plan(spec: PipelineSpec, base_dir: Path, pipeline_file: Path, output_dir: Path | None = None) -> Plan:
    """Every stage of the pipeline with its effective run config and command (nothing is written)."""
    root = (output_dir or _resolve(base_dir, spec.output_dir)).resolve()
    stages = _run_stages(spec, base_dir, root)
    notes = []
    if spec.submission is not None:
        stages += _global_stages(spec, spec.submission, base_dir, root, list(stages))
    elif any(k in spec.stages for k in GLOBAL_KINDS):
        notes.append("package and check are left out: the pipeline file has no submission: section")
    return Plan(stages, root, pipeline_file.resolve(), notes)


def _parse_selector(text: str, plan: Plan) -> dict[str, str]:
    benchmarks = {s.benchmark for s in plan.stages if s.benchmark}
    scenarios = {s.scenario.lower(): s.scenario for s in plan.stages if s.scenario}
    found: dict[str, str] = {}
    for part in (p for p in text.strip("/").split("/") if p):
        if part.lower() in KINDS:
            found["kind"] = part.lower()
        elif part.lower() in scenarios:
            found["scenario"] = scenarios[part.lower()]
        elif part in benchmarks:
            found["benchmark"] = part
        else:
            raise ConfigError(
                f"stage selector {text!r}: {part!r} is not a stage kind, scenario or benchmark of this pipeline",
                hint=f"use a stage id ({', '.join(s.id for s in plan.stages[:3])}, ...) or one of: "
                     f"{', '.join([*KINDS, *sorted(scenarios.values()), *sorted(benchmarks)])}")
    if not found:
        raise ConfigError(f"stage selector {text!r} is empty", hint="e.g. --only Server/accuracy")
    return found


def _in_chain(stage: Stage, selector: dict[str, str]) -> bool:
    return all(getattr(stage, key) == value for key, value in selector.items() if key != "kind")


def select(plan: Plan, start: str | None = None, only: str | None = None) -> list[Stage]:
    """The stages --from / --only keep, in plan order."""
    if start and only:
        raise ConfigError("--from and --only were both given", hint="use one of them")
    if only:
        selector = _parse_selector(only, plan)
        kept = [s for s in plan.stages if _in_chain(s, selector) and selector.get("kind", s.kind) == s.kind
                and (s.kind not in GLOBAL_KINDS or "kind" in selector)]
    elif start:
        selector = _parse_selector(start, plan)
        first = KINDS.index(selector.get("kind", KINDS[0]))
        kept = [s for s in plan.stages if KINDS.index(s.kind) >= first
                and (s.kind in GLOBAL_KINDS or _in_chain(s, selector))]
    else:
        kept = list(plan.stages)
    if not kept:
        raise ConfigError(f"no stage of this pipeline matches {only or start!r}",
                          hint=f"stages: {', '.join(s.id for s in plan.stages)}")
    return kept
