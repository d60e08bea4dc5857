"""RunConfig: the one frozen, validated description of a run, loaded from YAML plus --set overrides."""

from __future__ import annotations

import copy
import weakref
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from harness.backends.hf.options import HfOptions
from harness.backends.registry import options_models
from harness.benchmarks.facts import BenchmarkFacts
from harness.benchmarks.registry import BENCHMARK_NAMES, DEFAULT_BENCHMARK, benchmark_facts, check_in_round
from harness.errors import ConfigError, InputError
from harness.measurements import MeasurementsDir, measurements_dir, read_user_conf
from harness.redact import MARKER, is_secret_name
from harness.rounds import DEFAULT_ROUND, ROUNDS, round_spec
from harness.sections.preflight import PreflightConfig
from harness.sections.slurm import SlurmConfig
from harness.settings import (
    DatasetConfig,
    DistributedConfig,
    GenerationConfig,
    LoadGenConfig,
    ModelConfig,
    Section,
)
from harness.types import Scenario, TestMode

__all__ = ["BackendConfig", "Benchmark", "DatasetConfig", "DistributedConfig", "GenerationConfig", "LoadGenConfig",
           "ModelConfig", "Round", "RunConfig", "apply_overrides", "build_config", "describe_validation_error",
           "embedded_default_path", "load_config", "read_yaml", "with_updates"]

Round = Literal[ROUNDS]  # type: ignore[valid-type]  # the names of harness.rounds' table
Benchmark = Literal[BENCHMARK_NAMES]  # type: ignore[valid-type]  # the names of harness.benchmarks' table

BackendConfig = Annotated[Union[options_models()], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007


class RunConfig(Section):
    """Everything that defines one LoadGen test. Frozen: overrides build a new object."""

    round: Round = DEFAULT_ROUND  # type: ignore[assignment]  # Literal default
    benchmark: Benchmark = DEFAULT_BENCHMARK  # type: ignore[assignment]  # Literal default
    scenario: Scenario = Scenario.OFFLINE
    mode: TestMode = TestMode.PERFORMANCE
    model: ModelConfig = ModelConfig()
    dataset: DatasetConfig = DatasetConfig()
    generation: GenerationConfig = GenerationConfig()
    loadgen: LoadGenConfig = LoadGenConfig()
    backend: BackendConfig = Field(default_factory=HfOptions)
    distributed: DistributedConfig = DistributedConfig()
    slurm: SlurmConfig = SlurmConfig()
    preflight: PreflightConfig = PreflightConfig()
    output_dir: str | None = Field(None, description="run directory; default runs/<time>-<scenario>-<mode>")
    overwrite: bool = Field(False, description="replace an existing run directory")
    compliance_test: Literal["TEST06", "TEST07", "TEST09"] | None = Field(None, description="set by `compliance run`")
    cache: str | None = Field(None, description="accuracy mode: directory of per-sample output caches; "
                              "an interrupted run with the same inputs resumes from it (null = off)")
    system: str | None = Field(None, description="systems/<id>.json this run is for: the LoadGen settings in "
                               "measurements/<id>/<benchmark>/<scenario>/user.conf apply below explicit ones")

    @model_validator(mode="before")
    @classmethod
    def _plain_values(cls, data: Any) -> Any:
        """Every string one line of text and every integer a 64-bit one, whatever the key (names, paths and
        counts flow into manifests, READMEs, scripts and LoadGen's int64 settings)."""
        _check_plain(data, [])
        return _measured_loadgen(_reference_lengths(data))

    @model_validator(mode="after")
    def _benchmark_in_round(self) -> RunConfig:
        try:
            check_in_round(self.benchmark, self.round)
        except ConfigError as error:
            raise ValueError(f"{error.message}; {error.hint}") from None
        return self

    @model_validator(mode="after")
    def _scenario_exists_in_round(self) -> RunConfig:
        spec = round_spec(self.round)
        if self.scenario.value not in spec.scenarios:
            raise ValueError(
                f"scenario {self.scenario.value} does not exist in round {self.round} "
                f"(scenarios: {', '.join(spec.scenarios)}); Interactive needs round v5.1 or newer"
            )
        return self

    @model_validator(mode="after")
    def _scenario_of_the_benchmark(self) -> RunConfig:
        facts = self.facts
        allowed = [s for system_type in facts.system_types for s in facts.scenarios(system_type)]
        if self.scenario.value not in allowed and self.scenario.value in round_spec(self.round).scenarios:
            raise ValueError(f"scenario {self.scenario.value} is not a scenario of {self.benchmark} in round "
                             f"{self.round} (its scenarios: {', '.join(dict.fromkeys(allowed))})")
        return self

    @model_validator(mode="after")
    def _backend_serves_model(self) -> RunConfig:
        problem = self.backend.model_problem(self.model)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def facts(self) -> BenchmarkFacts:
        """The benchmark's facts as this run's round states them (harness.benchmarks.registry)."""
        return benchmark_facts(self.benchmark, self.round)

    @property
    def loadgen_model_name(self) -> str:
        """The model name passed to FromConfig (never the benchmark dir name)."""
        return self.facts.loadgen_name(self.scenario.value)

    def measurements_dir(self) -> MeasurementsDir | None:
        """measurements/<system>/<benchmark>/<scenario> of the run's system description, or None."""
        if self.system is None:
            return None
        return measurements_dir(Path(self.system), self.benchmark, self.scenario.value)

    def measurements_record(self) -> dict[str, Any]:
        """What the manifest says about the measurements folder: where, and the LoadGen values it gave."""
        found = self.measurements_dir()
        if found is None:
            return {}
        given = (read_user_conf(found.user_conf, (self.loadgen_model_name,), self.scenario.loadgen_scenario)
                 if found.user_conf.is_file() else {})
        return {"system": found.system, "dir": str(found.path), "user_conf": given,
                "applied": {k: v for k, v in given.items() if getattr(self.loadgen, k) == v}}

    def deviations(self) -> list[str]:
        """Open-division deviations from the reference implementation."""
        found = self.generation.deviations(self.facts.generation, accuracy=self.mode is TestMode.ACCURACY)
        found += self.backend.deviations()
        if self.dataset.max_samples is not None:
            found.append(f"dataset.max_samples: all -> {self.dataset.max_samples}")
        return found


_INT64 = 1 << 63


def _measured_loadgen(data: Any) -> Any:
    """LoadGen values from the system's measurements/ user.conf, for every loadgen key the config leaves out."""
    if not isinstance(data, Mapping) or not data.get("system"):
        return data
    name = str(data.get("benchmark", DEFAULT_BENCHMARK))
    try:
        scenario = Scenario(str(getattr(data.get("scenario"), "value", data.get("scenario", Scenario.OFFLINE.value))))
    except ValueError:
        return data  # the scenario field's own validation names the choices
    if name not in BENCHMARK_NAMES:
        return data
    found = measurements_dir(Path(str(data["system"])), name, scenario.value)
    if not found.user_conf.is_file():
        return data
    facts = benchmark_facts(name)
    given = read_user_conf(found.user_conf, (facts.loadgen_name(scenario.value),), scenario.loadgen_scenario)
    loadgen = dict(data.get("loadgen") or {})
    for key, value in given.items():
        if loadgen.get(key) is None:
            loadgen[key] = value
    return {**data, "loadgen": loadgen}


def _reference_lengths(data: Any) -> Any:
    """Fill the generation settings the config leaves out with the benchmark's reference: max_new_tokens (the
    cap of the run's mode: gpt-oss-120b caps performance runs lower), min_new_tokens, and temperature, top_p and
    top_k (greedy for most benchmarks; gpt-oss-120b samples at temperature 1.0)."""
    if not isinstance(data, Mapping):
        return data
    name = data.get("benchmark", DEFAULT_BENCHMARK)
    if name not in BENCHMARK_NAMES:
        return data  # the Literal names the known benchmarks in its error
    generation = data.get("generation")
    if generation is None or isinstance(generation, Mapping):
        reference = benchmark_facts(str(name)).generation
        mode = str(getattr(data.get("mode"), "value", data.get("mode", TestMode.PERFORMANCE.value)))
        filled = dict(generation or {})
        defaults = {"max_new_tokens": reference.cap(accuracy=mode == TestMode.ACCURACY.value),
                    "min_new_tokens": reference.min_new_tokens, "temperature": reference.temperature,
                    "top_p": reference.top_p, "top_k": reference.top_k}
        for key, value in defaults.items():
            if filled.get(key) is None:
                filled[key] = value
        data = {**data, "generation": filled}
    return data


def _check_plain(value: Any, where: list[str]) -> None:
    dotted = ".".join(where) or "the config"
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, [*where, str(key)])
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, [*where, str(index)])
    elif isinstance(value, str) and any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise ConfigError(f"{dotted}: {value!r} holds a control character (a newline?); expected one line of text",
                          hint=f"remove the line break or control character from {dotted}")
    elif isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        raise ConfigError(f"{dotted}: {value} is out of range; expected a 64-bit integer (|n| < 2**63)",
                          hint=f"set {dotted} to a realistic value")


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with the same key twice (safe_load keeps the last, silently)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice in one mapping",
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def embedded_default_path() -> Path:
    """The YAML file that defines the embedded CPU default (SmolLM2 + smoke dataset)."""
    return Path(str(resources.files("harness").joinpath("data/embedded-default.yaml")))


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing or malformed file."""
    try:
        text = path.read_text()
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist", hint="pass an existing --config FILE") from None
    except IsADirectoryError:
        raise InputError(f"config file {path} is a directory; expected a YAML file",
                         hint="pass --config FILE (examples/ has one per common setup)") from None
    except UnicodeDecodeError:
        raise InputError(f"config file {path} is not text (not UTF-8); expected a YAML file") from None
    except OSError as err:
        raise InputError(f"cannot read config file {path}: {err.strerror or err}",
                         hint="check the file's permissions") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(f"{path} is not valid YAML{at}: {problem}", hint="fix the file (YAML mapping of config keys)"
                         ) from None
    if data is None and not text.strip():
        raise InputError(f"{path} is empty; expected a YAML mapping of config keys",
                         hint="write the keys to change, or leave --config out for the defaults")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path} holds a {type(data).__name__}; expected a mapping of config keys")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b.c=value' into (['a','b','c'], value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r} is not key.path=value", hint="e.g. --set generation.max_new_tokens=256")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _merge(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    merged = dict(base)
    head, rest = path[0], path[1:]
    if rest:
        inner = merged.get(head)
        merged[head] = _merge(inner if isinstance(inner, dict) else {}, rest, value)
    else:
        merged[head] = value
    return merged


def build_config(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Validate a config mapping after applying 'key.path=value' overrides. A `backend.kind` override applies first
    (it drops the other kind's options from the mapping), so the other `backend.*` overrides apply to the new kind
    wherever they stand on the command line."""
    parsed = [parse_override(text) for text in overrides]
    parsed.sort(key=lambda item: item[0] != ["backend", "kind"])  # stable: kinds first, the rest in their order
    for path, value in parsed:
        if path == ["backend", "kind"] and isinstance(data.get("backend"), dict) \
                and data["backend"].get("kind", "hf") != value:
            data = {**data, "backend": {}}  # another backend kind: the old kind's options do not apply
        data = _merge(data, path, value)
    return _validated(data)


# id(config) -> (the mapping it was validated from, before the values derived from the benchmark and the system's
# measurements were filled in; its JSON then). Updates start from that mapping, so a changed benchmark or scenario
# derives them anew; a model_copy (another JSON) falls back to the dump. Entries leave with their config.
_GIVEN: dict[int, tuple[dict[str, Any], str]] = {}


def _validated(data: dict[str, Any]) -> RunConfig:
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err), hint=_hint_for(err)) from None
    key = id(config)
    _GIVEN[key] = (copy.deepcopy(data), config.model_dump_json())
    weakref.finalize(config, _GIVEN.pop, key, None)
    return config


def _source(config: RunConfig) -> dict[str, Any]:
    """What updates start from: the mapping the config was given (derived values not yet filled), else its dump."""
    given = _GIVEN.get(id(config))
    if given is not None and config.model_dump_json() == given[1]:
        return copy.deepcopy(given[0])
    return config.model_dump(mode="python")


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a run config: the embedded default when path is None, else the file, then overrides."""
    data = read_yaml(path if path is not None else embedded_default_path())
    return build_config(data, overrides)


def apply_overrides(config: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """A new RunConfig with overrides applied on top of config."""
    return build_config(_source(config), overrides)


def with_updates(config: RunConfig, updates: Mapping[str, Any]) -> RunConfig:
    """A new, re-validated RunConfig with typed values set at dotted keys ({"distributed.replicas": 2}).

    The CLI's typed flags come through here, never as `--set` text: a value keeps its Python type, so an
    output directory named 2024, yes or null stays that string.
    """
    data = _source(config)
    for dotted, value in updates.items():
        data = _merge(data, dotted.split("."), value)
    return _validated(data)


def _backend_models() -> dict[str, type[BaseModel]]:
    return {m.model_fields["kind"].default: m for m in options_models()}


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: Any = RunConfig
    if len(loc) >= 3 and loc[0] == "backend" and str(loc[1]) in _backend_models():
        model, loc = _backend_models()[str(loc[1])], loc[2:]
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None:
            return []
    return sorted(model.model_fields)


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem: dotted key path, value seen, what is allowed."""
    lines = []
    for problem in err.errors():
        raw_loc = tuple(problem["loc"])
        loc = tuple(p for i, p in enumerate(raw_loc) if not (i == 1 and raw_loc[0] == "backend"
                                                           and str(p) in _backend_models()))
        dotted = ".".join(str(p) for p in loc) or "(config)"
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(raw_loc)) or "see `harness config show`"
            lines.append(f"unknown key {dotted!r}; allowed keys here: {allowed}")
        else:
            seen = problem.get("input")
            seen_text = "" if isinstance(seen, dict) else f" (got {seen!r})"
            if is_secret_name(dotted.rsplit(".", 1)[-1]) and seen_text:
                seen_text = f" (got {MARKER})"
            lines.append(f"{dotted}: {problem['msg']}{seen_text}")
    return "; ".join(lines)


def _hint_for(err: ValidationError) -> str:
    return "fix the key in your --config file or --set flag; `harness config show` prints every key"
