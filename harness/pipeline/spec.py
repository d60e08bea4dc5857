"""The pipeline file: which benchmarks, scenarios and stages to run, with which run config and overrides.

Relative paths in the file (run_config, output_dir, submission.system) are resolved against the file's
own directory, so a pipeline behaves the same from any working directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.benchmarks.registry import DEFAULT_BENCHMARK
from harness.config import Benchmark, read_yaml
from harness.errors import ConfigError
from harness.types import Scenario

StageKind = Literal["accuracy", "performance", "test06", "test07", "test09", "package", "check"]
# test06/test07/test09: a compliance run of that test, planned for the benchmarks whose facts list it
RUN_KINDS: tuple[str, ...] = ("accuracy", "performance", "test06", "test07", "test09")
COMPLIANCE_KINDS: tuple[str, ...] = ("test06", "test07", "test09")
GLOBAL_KINDS: tuple[str, ...] = ("package", "check")
KINDS: tuple[str, ...] = RUN_KINDS + GLOBAL_KINDS
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")  # as `submission package --code-commit` accepts (submission/code.py)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubmissionOptions(_Section):
    """What `submission package` and `submission check` need."""

    submitter: str = Field(..., min_length=1, description="organisation name (<division>/<ORG>)")
    system: str = Field(..., min_length=1, description="systems/<system_desc_id>.json")
    round: str | None = Field(None, description="default: the run config's round")
    division: Literal["open", "closed"] = Field("open", description="the tree's division "
                                                "(`submission package --division`; closed adds the closed rules)")
    package_args: list[str] = Field(default_factory=list, description="extra `submission package` flags")
    check_args: list[str] = Field(default_factory=list, description="extra `submission check` flags")
    code_url: str | None = Field(None, description="public https:// repository holding the code "
                                                   "(`submission package --code-url`); with code_commit")
    code_commit: str | None = Field(None, description="the commit of code_url that produced the runs "
                                                      "(`--code-commit`, 7-40 hex digits)")

    @field_validator("code_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError(f"is {value!r}; expected a public https:// repository URL")
        return value

    @field_validator("code_commit")
    @classmethod
    def _commit_hash(cls, value: str | None) -> str | None:
        if value is not None and not _COMMIT.match(value):
            raise ValueError(f"is {value!r}; expected a git commit hash (7-40 lowercase hex digits)")
        return value

    @model_validator(mode="after")
    def _pinned_together(self) -> SubmissionOptions:
        if (self.code_url is None) != (self.code_commit is None):
            raise ValueError("code_url and code_commit go together; give both (or neither: the installed source "
                             "is copied into code/)")
        if "--division" in self.package_args:
            raise ValueError("package_args repeats --division; set it only as division")
        if self.code_url is not None and {"--code-url", "--code-commit"} & set(self.package_args):
            raise ValueError("package_args repeats --code-url/--code-commit; set them only as code_url/code_commit")
        return self

    @property
    def code_args(self) -> tuple[str, ...]:
        """The `submission package` flags that pin the code, or none."""
        if self.code_url is None or self.code_commit is None:
            return ()
        return ("--code-url", self.code_url, "--code-commit", self.code_commit)


def _default_benchmarks() -> list[Benchmark]:
    return [DEFAULT_BENCHMARK]


def _default_stages() -> list[StageKind]:
    return ["accuracy", "performance", "test06", "test07", "test09", "package", "check"]


class PipelineSpec(_Section):
    """A pipeline file, validated."""

    run_config: str | dict[str, Any] | None = Field(
        None, description="run config YAML path, or an inline mapping; null = the embedded default")
    set: list[str] = Field(default_factory=list, description="key.path=value overrides for every run")
    benchmarks: list[Benchmark] = Field(default_factory=_default_benchmarks, min_length=1)
    scenarios: list[Scenario] = Field(default_factory=lambda: [Scenario.OFFLINE, Scenario.SERVER], min_length=1)
    stages: list[StageKind] = Field(default_factory=_default_stages, min_length=1)
    stage_set: dict[str, list[str]] = Field(default_factory=dict,
                                            description="overrides for one run stage kind (accuracy, ...)")
    scenario_set: dict[Scenario, list[str]] = Field(default_factory=dict, description="overrides per scenario")
    output_dir: str = Field("pipeline", description="where run dirs, configs, logs and state go")
    cache: bool = Field(True, description="accuracy stages keep per-sample outputs so a killed run resumes")
    submission: SubmissionOptions | None = None
    executor: Literal["local", "slurm"] = "local"

    @field_validator("benchmarks", "scenarios", "stages")
    @classmethod
    def _no_repeats(cls, values: list[Any]) -> list[Any]:
        if len(set(values)) != len(values):
            raise ValueError(f"lists a value twice ({', '.join(str(v) for v in values)}); name each once")
        return values

    @field_validator("stage_set")
    @classmethod
    def _run_kinds_only(cls, values: dict[str, list[str]]) -> dict[str, list[str]]:
        wrong = [k for k in values if k not in RUN_KINDS]
        if wrong:
            raise ValueError(f"has key(s) {', '.join(wrong)}; expected run stage kinds: {', '.join(RUN_KINDS)}")
        return values


def _describe(err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        dotted = ".".join(str(p) for p in problem["loc"]) or "(pipeline)"
        if problem["type"] == "extra_forbidden":
            lines.append(f"unknown key {dotted!r}; pipeline keys: {', '.join(PipelineSpec.model_fields)}")
        else:
            seen = problem.get("input")
            lines.append(f"{dotted}: {problem['msg']}" + ("" if isinstance(seen, dict) else f" (got {seen!r})"))
    return "; ".join(lines)


def load_pipeline(path: Path) -> tuple[PipelineSpec, Path]:
    """Read and validate a pipeline file; return it with the directory its relative paths start from."""
    data = read_yaml(path)
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: {_describe(err)}",
                          hint="see docs/pipeline.md for the pipeline file's keys (run settings go under "
                               "run_config: or set:)") from None
    needs_submission = [k for k in spec.stages if k in GLOBAL_KINDS]
    if needs_submission and spec.submission is None and "stages" in data:
        raise ConfigError(f"{path}: stages {', '.join(needs_submission)} need a submission: section",
                          hint="add submission: {submitter: ORG, system: systems/X.json}, or drop those stages")
    return spec, path.resolve().parent
