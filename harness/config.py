"""RunConfig: the one frozen, validated description of a run, loaded from YAML plus --set overrides."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import ConfigError, InputError
from harness.network.config import PreflightConfig
from harness.redact import MARKER, is_secret_name
from harness.rounds import DEFAULT_ROUND, round_spec
from harness.slurm.config import SlurmConfig
from harness.types import Scenario, TestMode

Round = Literal["v4.0", "v4.1", "v5.0", "v5.1", "v6.0"]
Benchmark = Literal["llama2-70b-99", "llama2-70b-99.9"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # .inf / .nan are never a rate


class ModelConfig(_Section):
    """Which model the backend serves and which tokenizer decodes its output."""

    path: str | None = Field(None, description="HF checkpoint dir or .gguf file; null = embedded SmolLM2-135M")
    tokenizer: str | None = Field(None, description="tokenizer dir or .gguf; default: path")
    name: str | None = Field(None, description="display name for reports; default: derived from path")
    eos_token_id: int | None = Field(None, description="override the tokenizer's EOS id")

    @property
    def is_embedded(self) -> bool:
        """True when the embedded SmolLM2 default is used."""
        return self.path is None


class DatasetConfig(_Section):
    """The QSL: the MLCommons OpenOrca pickle, or the embedded smoke dataset."""

    path: str | None = Field(None, description="open_orca_gpt4_tokenized_llama.sampled_24576.pkl; null = smoke set")
    max_samples: int | None = Field(None, ge=1, description="use only the first N samples (not submittable)")
    chat_template: bool = Field(True, description="smoke set: wrap prompts in the tokenizer's chat template")


class GenerationConfig(_Section):
    """Decoding parameters; the defaults are the MLCommons reference (greedy, 1024 new tokens)."""

    max_new_tokens: int = Field(1024, ge=2)
    min_new_tokens: int = Field(1, ge=0)
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy (reference)")
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    num_beams: int = Field(1, ge=1)
    repetition_penalty: float = Field(1.0, gt=0.0)
    presence_penalty: float = 0.0
    length_penalty: float = 1.0
    early_stopping: bool = True

    @model_validator(mode="after")
    def _min_not_above_max(self) -> GenerationConfig:
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens ({self.min_new_tokens}) exceeds max_new_tokens ({self.max_new_tokens})"
            )
        return self

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic argmax (with one beam)."""
        return self.temperature == 0.0

    def deviations(self) -> list[str]:
        """Every field that differs from the reference, as 'name: reference -> value'."""
        reference = GenerationConfig()
        return [
            f"generation.{name}: {getattr(reference, name)!r} -> {getattr(self, name)!r}"
            for name in type(self).model_fields
            if getattr(self, name) != getattr(reference, name)
        ]


class LoadGenConfig(_Section):
    """LoadGen overrides, under LoadGen's own user.conf names, written into the run's user.conf."""

    target_qps: float | None = Field(None, gt=0)
    min_duration: int | None = Field(None, ge=0, description="ms")
    max_duration: int | None = Field(None, ge=0, description="ms")
    min_query_count: int | None = Field(None, ge=1)
    max_query_count: int | None = Field(None, ge=0)
    performance_sample_count_override: int | None = Field(None, ge=1)
    server_coalesce_queries: bool | None = None


class FakeConfig(_Section):
    """Instant test backends; runs made with them are never submittable."""

    kind: Literal["fake"] = "fake"
    behaviour: Literal["echo", "fixed", "oracle"] = "fixed"
    output_tokens: int = Field(294, ge=1, description="fixed: tokens per answer, EOS included")
    delay_ms: float = Field(0.0, ge=0, description="simulated time per request")
    first_token_delay_ms: float = Field(0.0, ge=0)
    eos_token_id: int = 2
    max_batch_size: int = Field(1024, ge=1, description="without delays: answers reported per batch of this "
                                                         "many queued requests (one LoadGen call each)")


class HfConfig(_Section):
    """PyTorch/transformers backend: CPU or CUDA, HF checkpoint directory or GGUF file."""

    kind: Literal["hf"] = "hf"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda)(:\d+)?$",
                        description="auto, cpu, cuda or cuda:N (auto:N = GPU N if CUDA is available)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_batch_size: int = Field(8, ge=1)
    batch_wait_ms: float = Field(20.0, ge=0, description="Server: wait this long to fill a batch")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: all cores")
    decode: Literal["auto", "static", "generate"] = Field(
        "auto", description="static: static KV cache + CUDA graphs (greedy Llama); generate: transformers "
                            "generate(); auto: static on CUDA when the model and sampling allow it")


class TrtllmConfig(_Section):
    """TensorRT-LLM LLM API (1.x): an HF/ModelOpt checkpoint (pytorch) or a trtllm-build engine dir (tensorrt)."""

    kind: Literal["trtllm"] = "trtllm"
    backend: Literal["pytorch", "tensorrt"] = Field(
        "pytorch", description="pytorch: model.path is an HF checkpoint; tensorrt: an engine dir (TRT-LLM <= 1.2)")
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_batch_size: int | None = Field(None, ge=1, description="null = TensorRT-LLM's default")
    max_num_tokens: int | None = Field(None, ge=1, description="null = TensorRT-LLM's default")
    max_seq_len: int | None = Field(None, ge=2)
    kv_cache_free_gpu_memory_fraction: float = Field(0.9, gt=0.0, le=1.0)
    kv_cache_dtype: Literal["auto", "fp8"] = Field("auto", description="pytorch only; engines fix it at quantize time")
    enable_block_reuse: bool = Field(False, description="KV-cache prefix reuse (off: each sample is independent)")
    enable_chunked_prefill: bool = False
    gpu_check: bool = Field(True, description="refuse to start when allocated GPUs != TP x PP x replicas")
    llm_args: dict[str, Any] = Field(default_factory=dict, description="extra LLM(...) keyword arguments, verbatim")
    stages: dict[str, str] = Field(default_factory=dict, description="quantize/convert/build for `harness slurm`: "
                                   "preset, work_dir, hf_model_dir, trtllm_examples, modelopt_examples")

    @model_validator(mode="after")
    def _engine_fixes_kv_dtype(self) -> TrtllmConfig:
        if self.backend == "tensorrt" and self.kv_cache_dtype != "auto":
            raise ValueError(
                f"kv_cache_dtype {self.kv_cache_dtype!r} has no effect on a tensorrt engine (it is fixed when the "
                "checkpoint is quantized); use kv_cache_dtype: auto and quantize with --kv_cache_dtype fp8")
        return self

    @property
    def gpus_per_replica(self) -> int:
        """GPUs one model instance spans: tensor x pipeline parallel size."""
        return self.tensor_parallel_size * self.pipeline_parallel_size


BackendConfig = Annotated[FakeConfig | HfConfig | TrtllmConfig, Field(discriminator="kind")]


class DistributedConfig(_Section):
    """Data-parallel replicas over MPI (rank 0 runs LoadGen)."""

    replicas: int = Field(1, ge=1)
    loadgen_rank_hosts_replica: bool = True
    worker_timeout_s: float = Field(20.0, gt=0, description="a silent worker fails the run after this")


class RunConfig(_Section):
    """Everything that defines one LoadGen test. Frozen: overrides build a new object."""

    round: Round = DEFAULT_ROUND  # type: ignore[assignment]  # Literal default
    benchmark: Benchmark = "llama2-70b-99"
    scenario: Scenario = Scenario.OFFLINE
    mode: TestMode = TestMode.PERFORMANCE
    model: ModelConfig = ModelConfig()
    dataset: DatasetConfig = DatasetConfig()
    generation: GenerationConfig = GenerationConfig()
    loadgen: LoadGenConfig = LoadGenConfig()
    backend: BackendConfig = Field(default_factory=HfConfig)
    distributed: DistributedConfig = DistributedConfig()
    slurm: SlurmConfig = SlurmConfig()
    preflight: PreflightConfig = PreflightConfig()
    output_dir: str | None = Field(None, description="run directory; default runs/<time>-<scenario>-<mode>")
    overwrite: bool = Field(False, description="replace an existing run directory")
    compliance_test: Literal["TEST06"] | None = Field(None, description="set by `compliance run`")
    cache: str | None = Field(None, description="accuracy mode: directory of per-sample output caches; "
                              "an interrupted run with the same inputs resumes from it (null = off)")

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
    def _trtllm_needs_model_path(self) -> RunConfig:
        if isinstance(self.backend, TrtllmConfig) and self.model.path is None:
            raise ValueError("backend.kind trtllm needs model.path (an HF checkpoint or a trtllm-build engine dir); "
                             "the embedded SmolLM2 GGUF runs only on the hf backend")
        return self

    @property
    def loadgen_model_name(self) -> str:
        """The model name passed to FromConfig (never the benchmark dir name)."""
        return "llama2-70b-interactive" if self.scenario is Scenario.INTERACTIVE else "llama2-70b"

    def deviations(self) -> list[str]:
        """Open-division deviations from the reference implementation."""
        found = self.generation.deviations()
        if self.dataset.max_samples is not None:
            found.append(f"dataset.max_samples: all -> {self.dataset.max_samples}")
        return found


def embedded_default_path() -> Path:
    """The YAML file that defines the embedded CPU default (SmolLM2 + smoke dataset)."""
    return Path(str(resources.files("harness").joinpath("data/embedded-default.yaml")))


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing or malformed file."""
    try:
        data = yaml.safe_load(path.read_text())
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
        raise InputError(f"{path} is not valid YAML: {err}".splitlines()[0]) from None
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
    """Validate a config mapping after applying 'key.path=value' overrides."""
    for text in overrides:
        path, value = parse_override(text)
        if path == ["backend", "kind"] and isinstance(data.get("backend"), dict) \
                and data["backend"].get("kind", "hf") != value:
            data = {**data, "backend": {}}  # another backend kind: the old kind's options do not apply
        data = _merge(data, path, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err), hint=_hint_for(err)) from None


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a run config: the embedded default when path is None, else the file, then overrides."""
    data = read_yaml(path if path is not None else embedded_default_path())
    return build_config(data, overrides)


def apply_overrides(config: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """A new RunConfig with overrides applied on top of config."""
    return build_config(config.model_dump(mode="json"), overrides)


def _backend_models() -> dict[str, type[BaseModel]]:
    members = BackendConfig.__origin__.__args__  # type: ignore[attr-defined]  # Annotated[Union[...]]
    return {m.model_fields["kind"].default: m for m in members}


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
