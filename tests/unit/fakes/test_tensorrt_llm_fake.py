"""tests/fakes/tensorrt_llm against the real TensorRT-LLM release it names, and its own behaviour.

Part 1 reads the real sources of the release (tag v1.2.1) from a git mirror of NVIDIA/TensorRT-LLM ($TRTLLM_GIT, or
/work/.mirror/NVIDIA+TensorRT-LLM/repo as the `fetch` tool lays it out) with `git show v1.2.1:<path>` and parses them
with ast (never importing them): the fake's LLM.__init__ and generate_async parameters, the LlmArgs/KvCacheConfig/
SchedulerConfig/CudaGraphConfig fields and SamplingParams fields it accepts must exist there with the same defaults
and value kinds, and the error messages it raises must match a message format string of the release. Without the
mirror or the tag these tests are skipped with the reason (never a silent pass). Nothing here lists the expected
names: they come from the release, so the check is not circular.

Part 2 tests the fake's behaviour: pydantic (lax mode) validation of the LLM arguments, SamplingParams checks,
scheduling under max_batch_size / max_num_tokens with a FIFO queue, KV-cache exhaustion, and a hanging shutdown.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from tests.fake_support import FAKES, fake_trtllm_module

TAG = "v1.2.1"
DEFAULT_MIRROR = Path("/work/.mirror/NVIDIA+TensorRT-LLM/repo")
LLM_PY = "tensorrt_llm/llmapi/llm.py"
ARGS_PY = "tensorrt_llm/llmapi/llm_args.py"
SAMPLING_PY = "tensorrt_llm/sampling_params.py"
CLEAN_ENV = ("TLLM_SPAWN_PROXY_PROCESS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS",
             "FAKE_TRTLLM_HANG_IN_SHUTDOWN", "FAKE_TRTLLM_HANG_IN_CONSTRUCTION", "TLLM_ALLOW_N_GREEDY_DECODING")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The fake's implementation module, fresh knobs, no launcher/MPI variables."""
    yield from fake_trtllm_module(monkeypatch, CLEAN_ENV)


# ---------------------------------------------------------------- reading the release's sources (no import) ----

REQUIRED = "<required>"
UNKNOWN = "<not a literal>"
_ALIASES = {"NonNegativeInt": "int", "PositiveInt": "int", "StrictInt": "int", "NonNegativeFloat": "float",
            "PositiveFloat": "float", "StrictBool": "bool", "StrictStr": "str"}


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """A field as a source states it: its annotation text and its default (REQUIRED, UNKNOWN, 'factory:X', value)."""

    annotation: str
    default: Any


class Release:
    """The real files of one tag of a TensorRT-LLM git mirror, parsed with ast."""

    def __init__(self, mirror: Path, tag: str) -> None:
        self.mirror, self.tag = mirror, tag
        self._trees: dict[str, ast.Module] = {}

    def text(self, path: str) -> str:
        done = subprocess.run(["git", "-C", str(self.mirror), "show", f"{self.tag}:{path}"],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{path} is not in {self.mirror} at {self.tag}: {done.stderr.strip()}"
        return done.stdout

    def tree(self, path: str) -> ast.Module:
        if path not in self._trees:
            self._trees[path] = ast.parse(self.text(path))
        return self._trees[path]


@pytest.fixture(scope="module")
def release() -> Release:
    """The v1.2.1 sources, or a recorded skip saying why they cannot be read."""
    configured = os.environ.get("TRTLLM_GIT")
    mirror = Path(configured) if configured else DEFAULT_MIRROR
    if not mirror.exists():
        pytest.skip(f"no NVIDIA/TensorRT-LLM git mirror at {mirror} (set TRTLLM_GIT, or fetch "
                    "github:NVIDIA/TensorRT-LLM into /work/.mirror): the fake is not checked against the release")
    found = subprocess.run(["git", "-C", str(mirror), "rev-parse", "--verify", "--quiet", f"{TAG}^{{commit}}"],
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        pytest.skip(f"the TensorRT-LLM mirror at {mirror} has no tag {TAG}: the fake is not checked against it")
    return Release(mirror, TAG)


def class_node(tree: ast.Module, name: str) -> ast.ClassDef:
    found = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    assert found, f"class {name} not found"
    return found[0]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return node.attr if isinstance(node, ast.Attribute) else UNKNOWN  # an enum member: its name


def _default(value: ast.expr | None) -> Any:
    if value is None:
        return REQUIRED
    if isinstance(value, ast.Call) and _name(value.func) in ("Field", "PydanticField", "field"):
        for keyword in value.keywords:
            if keyword.arg == "default":
                return _literal(keyword.value)
            if keyword.arg == "default_factory":
                return f"factory:{_name(keyword.value)}"
        if value.args and not (isinstance(value.args[0], ast.Constant) and value.args[0].value is Ellipsis):
            return _literal(value.args[0])
        return REQUIRED
    return _literal(value)


def fields_of(tree: ast.Module, name: str) -> dict[str, FieldSpec]:
    """Public annotated fields of a class, with those of its base classes defined in the same module first."""
    node = class_node(tree, name)
    found: dict[str, FieldSpec] = {}
    local = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    for base in node.bases:
        if _name(base) in local:
            found.update(fields_of(tree, _name(base)))
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                and not stmt.target.id.startswith("_") and "ClassVar" not in ast.unparse(stmt.annotation):
            found[stmt.target.id] = FieldSpec(ast.unparse(stmt.annotation), _default(stmt.value))
    return found


def method_of(tree: ast.Module, class_name: str, method: str) -> ast.FunctionDef:
    found = [n for n in class_node(tree, class_name).body if isinstance(n, ast.FunctionDef) and n.name == method]
    assert found, f"{class_name}.{method} not found"
    return found[0]


def parameters_of(function: ast.FunctionDef) -> list[tuple[str, Any]]:
    """(name, default) of the positional-or-keyword parameters after self, defaults aligned to the end."""
    args = function.args.args[1:]
    defaults = [REQUIRED] * (len(args) - len(function.args.defaults)) + [_literal(d) for d in function.args.defaults]
    return [(arg.arg, default) for arg, default in zip(args, defaults, strict=True)]


def kinds(annotation: str) -> set[str]:
    """The primitive value kinds an annotation admits (int, float, bool, str, None), aliases resolved."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "", annotation)  # Literal values are not kinds
    words = {_ALIASES.get(w, w) for w in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text)}
    found = words & {"int", "float", "bool", "str", "None"}
    return found | {"None"} if "Optional" in words else found


def message_patterns(tree: ast.Module) -> list[tuple[re.Pattern[str], int]]:
    """Every string and f-string of a module as (regex, length of its literal text); {...} matches anything."""
    patterns = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            literal = [str(v.value) for v in node.values if isinstance(v, ast.Constant)]
            parts = [re.escape(str(v.value)) if isinstance(v, ast.Constant) else "(.*?)" for v in node.values]
            patterns.append((re.compile("".join(parts), re.DOTALL), len("".join(literal))))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            patterns.append((re.compile(re.escape(node.value), re.DOTALL), len(node.value)))
    return patterns


def stated(message: str, patterns: list[tuple[re.Pattern[str], int]]) -> bool:
    """Whether a format string produces the message, its literal text being most of it (not a bare f'{e}')."""
    return any(p.fullmatch(message) and literal >= max(12, len(message) // 2) for p, literal in patterns)


def fake_specs(model: Any) -> dict[str, FieldSpec]:
    """The fake pydantic model's fields in the same form as fields_of."""
    specs = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            default: Any = f"factory:{info.default_factory.__name__}"
        else:
            default = REQUIRED if info.is_required() else info.default
        annotation = info.annotation
        text = "Any" if annotation is Any else annotation.__name__ if isinstance(annotation, type) else repr(annotation)
        specs[name] = FieldSpec(text, default)
    return specs


def compare_fields(real: dict[str, FieldSpec], fake: dict[str, FieldSpec], where: str) -> int:
    """Every fake field exists in the release with the same default and value kinds; returns the checks made."""
    missing = sorted(set(fake) - set(real))
    assert not missing, f"{where}: the fake has fields {missing} that {TAG} does not have"
    checks = 0
    for name, spec in fake.items():
        if real[name].default != UNKNOWN:
            assert spec.default == real[name].default, (where, name, spec.default, real[name].default)
            checks += 1
        if spec.annotation != "Any":
            assert kinds(spec.annotation) == kinds(real[name].annotation), (where, name, spec.annotation,
                                                                           real[name].annotation)
            checks += 1
    return checks


# ------------------------------------------------------------------------- part 1: the fake vs the release ----

def test_the_release_tag_is_the_version_the_fake_reports(release: Release, fake: ModuleType) -> None:
    assert f'__version__ = "{fake.STATE.version}"' in release.text("tensorrt_llm/version.py")


@pytest.mark.parametrize(("real_class", "fake_class"), [("LLM", "LLM"), ("_TrtLLM", "EngineLLM")])
def test_llm_init_parameters_are_the_releases(release: Release, fake: ModuleType, real_class: str,
                                              fake_class: str) -> None:
    real = method_of(release.tree(LLM_PY), real_class, "__init__")
    signature = inspect.signature(getattr(fake, fake_class).__init__)
    ours = [(p.name, REQUIRED if p.default is p.empty else p.default) for p in signature.parameters.values()
            if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    assert ours == parameters_of(real)
    assert real.args.kwarg is not None and any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())


def test_generate_async_parameters_are_the_releases(release: Release, fake: ModuleType) -> None:
    real = parameters_of(method_of(release.tree(LLM_PY), "BaseLLM", "generate_async"))
    signature = inspect.signature(fake.LLM.generate_async)
    ours = [(p.name, REQUIRED if p.default is p.empty else p.default) for p in signature.parameters.values()
            if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    assert real[: len(ours)] == ours
    assert all(default != REQUIRED for _, default in real[len(ours):])  # the rest: optional, taken by **kwargs


@pytest.mark.parametrize(("real_class", "fake_class"), [
    ("TorchLlmArgs", "TorchLlmArgs"), ("TrtLlmArgs", "TrtLlmArgs"), ("KvCacheConfig", "KvCacheConfig"),
    ("SchedulerConfig", "SchedulerConfig"), ("CudaGraphConfig", "CudaGraphConfig"),
    ("DynamicBatchConfig", "DynamicBatchConfig")])
def test_accepted_arguments_are_release_fields_with_its_defaults_and_kinds(release: Release, fake: ModuleType,
                                                                           real_class: str, fake_class: str) -> None:
    real = fields_of(release.tree(ARGS_PY), real_class)
    assert compare_fields(real, fake_specs(getattr(fake, fake_class)), real_class) > 0


def test_the_pytorch_only_arguments_are_not_engine_arguments(release: Release, fake: ModuleType) -> None:
    real_trt = fields_of(release.tree(ARGS_PY), "TrtLlmArgs")
    torch_only = set(fake.TorchLlmArgs.model_fields) - set(fake.TrtLlmArgs.model_fields)
    assert torch_only and not torch_only & set(real_trt)


def test_the_scheduler_policies_are_the_releases(release: Release, fake: ModuleType) -> None:
    node = class_node(release.tree(ARGS_PY), "CapacitySchedulerPolicy")
    real = {t.id for stmt in node.body if isinstance(stmt, ast.Assign) for t in stmt.targets if isinstance(t, ast.Name)}
    assert real == {member.name for member in fake.CapacitySchedulerPolicy}


def test_sampling_params_fields_and_defaults_are_the_releases(release: Release, fake: ModuleType) -> None:
    tree = release.tree(SAMPLING_PY)
    decorator = next(d for d in class_node(tree, "SamplingParams").decorator_list if isinstance(d, ast.Call))
    assert {k.arg: _literal(k.value) for k in decorator.keywords} == {"slots": True, "kw_only": True}
    ours = {f.name: FieldSpec(str(f.type), f.default) for f in dataclasses.fields(fake.SamplingParams)}
    assert compare_fields(fields_of(tree, "SamplingParams"), ours, "SamplingParams") > 0


def _fake_messages(fake: ModuleType) -> dict[str, list[str]]:
    """Messages the fake raises, by the release file whose format strings must produce them."""
    def caught(action: Callable[[], Any]) -> str:
        try:
            action()
        except Exception as error:  # any type: only the text is compared
            return str(error)
        raise AssertionError("no error raised")

    sampling = [caught(lambda kw=kw: fake.SamplingParams(**kw)) for kw in (  # type: ignore[misc]
        {"top_p": 2.0}, {"top_k": -1}, {"temperature": -1.0}, {"n": 3, "best_of": 2}, {"best_of": 2},
        {"truncate_prompt_tokens": 0})]
    llm = fake.LLM("/m", skip_tokenizer_init=True, max_num_tokens=4)
    engine = fake.EngineLLM("/m", max_seq_len=8, max_beam_width=1)
    params = fake.SamplingParams(end_id=2, max_tokens=8)

    async def requests() -> list[str]:
        beam = fake.SamplingParams(end_id=2, use_beam_search=True, best_of=2, n=1, max_tokens=1)
        found = [caught(lambda: llm.generate_async([1] * 5, params)),
                 caught(lambda: engine.generate_async([1], params)), caught(lambda: engine.generate_async([1], beam)),
                 caught(lambda: llm.generate_async("text", params)), caught(lambda: llm.generate_async([1], object())),
                 caught(lambda: llm.generate_async([1], fake.SamplingParams()))]
        llm.shutdown()
        return [*found, caught(lambda: llm.generate_async([1], params))]

    llm_messages = [*asyncio.run(requests()), caught(lambda: fake.LLM("/m", build_config=None))]
    args = [caught(lambda: fake.EngineLLM("/m", kv_cache_config=fake.KvCacheConfig(dtype="fp8"))).splitlines()[1]
            .split(", ", 1)[1].split(" [type=")[0]]
    return {SAMPLING_PY: sampling, LLM_PY: llm_messages, ARGS_PY: args,
            "tensorrt_llm/_torch/pyexecutor/py_executor.py": [fake.NO_RESOURCE]}


def test_the_fakes_messages_are_the_releases_format_strings(release: Release, fake: ModuleType) -> None:
    checks = 0
    for path, messages in _fake_messages(fake).items():
        patterns = message_patterns(release.tree(path))
        for message in messages:
            assert stated(message, patterns), f"{path} has no format string for {message!r}"
            checks += 1
    assert checks >= 15


def test_unknown_keys_and_request_errors_use_the_releases_wording(release: Release, fake: ModuleType) -> None:
    """The fake adds ' (unknown to ...)' for test_adapter; the release's text must be the prefix."""
    with pytest.raises(ValueError, match="^LLM got invalid argument: no_such_argument ") as error:
        fake.LLM("/m", no_such_argument=1)
    prefix = str(error.value).split(" (unknown to ")[0]
    assert stated(prefix, message_patterns(release.tree(LLM_PY)))
    errors = release.tree("tensorrt_llm/executor/utils.py")
    assert [_name(b) for b in class_node(errors, "RequestError").bases] == ["RuntimeError"]
    engine = release.tree("tensorrt_llm/_tensorrt_engine/__init__.py")
    assert any(isinstance(n, ast.ImportFrom) and any(a.name == "_TrtLLM" and a.asname == "LLM" for a in n.names)
               for n in ast.walk(engine))


def test_the_source_reader_finds_fields_defaults_kinds_and_messages() -> None:
    """The reader itself, on a snippet shaped like llm_args.py (runs without the mirror)."""
    tree = ast.parse(
        "class Base(StrictBaseModel):\n"
        "    max_batch_size: Optional[int] = Field(default=2048, description='x')\n"
        "    kv_cache_config: KvCacheConfig = Field(default_factory=KvCacheConfig)\n"
        "    model: Union[str, Path] = Field(description='m')\n"
        "    _private: int = PrivateAttr(0)\n"
        "class Torch(Base):\n"
        "    max_batch_size: NonNegativeInt = 0\n"
        "    policy: CapacitySchedulerPolicy = Field(default=CapacitySchedulerPolicy.GUARANTEED_NO_EVICT)\n"
        "    mode: Literal['int', 'x'] = 'x'\n"
        "def f(n):\n"
        "    raise ValueError(f'best_of ({n}) cannot be less than n ({n})')\n")
    fields = fields_of(tree, "Torch")
    assert fields == {"max_batch_size": FieldSpec("NonNegativeInt", 0),
                      "kv_cache_config": FieldSpec("KvCacheConfig", "factory:KvCacheConfig"),
                      "model": FieldSpec("Union[str, Path]", REQUIRED),
                      "policy": FieldSpec("CapacitySchedulerPolicy", "GUARANTEED_NO_EVICT"),
                      "mode": FieldSpec("Literal['int', 'x']", "x")}
    assert (kinds("Optional[List[int]]"), kinds("int | None"), kinds("Literal['int', 'x']")) == (
        {"int", "None"}, {"int", "None"}, set())
    assert kinds(fields["max_batch_size"].annotation) == {"int"}
    patterns = message_patterns(tree)
    assert stated("best_of (1) cannot be less than n (2)", patterns) and not stated("anything else", patterns)
    with pytest.raises(AssertionError, match="has fields"):
        compare_fields({"a": FieldSpec("int", 1)}, {"b": FieldSpec("int", 1)}, "X")
    with pytest.raises(AssertionError):
        compare_fields({"a": FieldSpec("int", 1)}, {"a": FieldSpec("int", 2)}, "X")


# ------------------------------------------------------------------------- part 2: the fake's behaviour ----

def test_llm_arguments_are_coerced_as_pydantic_lax_mode_does(fake: ModuleType) -> None:
    llm = fake.LLM("/m", tensor_parallel_size="2", max_batch_size="8", max_num_tokens=4096.0,
                   enable_chunked_prefill="true", kv_cache_config={"enable_block_reuse": "no"})
    args = llm.args
    assert (args.tensor_parallel_size, args.max_batch_size, args.max_num_tokens) == (2, 8, 4096)
    assert args.enable_chunked_prefill is True and args.kv_cache_config.enable_block_reuse is False
    assert llm.world_size == 2
    assert fake.LLM("/m", max_batch_size=None, max_num_tokens=None, max_beam_width=None).args.model_dump(
        include={"max_batch_size", "max_num_tokens", "max_beam_width"}) == {
        "max_batch_size": 2048, "max_num_tokens": 8192, "max_beam_width": 1}


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"max_batch_size": 8.5}, "max_batch_size\n  Input should be a valid integer, got a number with a fractional part"),
    ({"max_batch_size": "eight"}, "max_batch_size\n  Input should be a valid integer, unable to parse string"),
    ({"enable_chunked_prefill": 2}, "enable_chunked_prefill\n  Input should be a valid boolean, unable to interpret"),
    ({"dtype": 16}, "dtype\n  Input should be a valid string"),
    ({"pipeline_parallel_size": None}, "pipeline_parallel_size\n  Input should be a valid integer"),
    ({"tokenizer_mode": "fast"}, "tokenizer_mode\n  Input should be 'auto' or 'slow'"),
])
def test_wrong_value_types_fail_as_pydantic_errors(fake: ModuleType, kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValidationError) as error:
        fake.LLM("/m", **kwargs)
    assert str(error.value).startswith(f"1 validation error for TorchLlmArgs\n{text}")
    assert fake.STATE.llms == []


def test_kv_cache_config_and_engine_arguments_are_validated(fake: ModuleType) -> None:
    assert fake.KvCacheConfig().free_gpu_memory_fraction == 0.9
    with pytest.raises(ValidationError, match=r"1 validation error for KvCacheConfig\nfree_gpu_memory_fraction\n"
                                              "  Input should be less than or equal to 1"):
        fake.KvCacheConfig(free_gpu_memory_fraction=1.5)
    with pytest.raises(ValidationError, match="host_cache\n  Extra inputs are not permitted"):
        fake.KvCacheConfig(host_cache=1)
    with pytest.raises(ValidationError, match="TrtLlmArgs\n.*KvCacheConfig.dtype is not supported by the TensorRT"):
        fake.EngineLLM("/engine", kv_cache_config=fake.KvCacheConfig(dtype="fp8"))
    with pytest.raises(ValueError, match=r"specific to TensorRT backend .*\['build_config'\]"):
        fake.LLM("/m", build_config={})
    with pytest.raises(ValueError, match="^LLM got invalid argument: max_tokens"):
        fake.LLM("/m", max_tokens=8)


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"top_p": 1.5}, ValueError, r"require 0 <= top_p <= 1, got top_p=1.5"),
    ({"top_k": -1}, ValueError, r"require top_k >= 0, got top_k=-1"),
    ({"temperature": -0.5}, ValueError, r"require temperature >= 0"),
    ({"n": 2, "best_of": 1}, ValueError, r"best_of \(1\) cannot be less than n \(2\)"),
    ({"n": 2, "top_k": 1}, ValueError, r"Greedy decoding in the LLM API does not allow multiple returns"),
    ({"top_p": "0.5"}, TypeError, r"'<' not supported"),  # a dataclass: no coercion, the comparison fails
])
def test_sampling_params_validate_as_the_dataclass_does(fake: ModuleType, kwargs: dict[str, Any],
                                                        error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        fake.SamplingParams(**kwargs)


def test_n_greedy_returns_need_the_environment_switch(fake: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLLM_ALLOW_N_GREEDY_DECODING", "1")
    assert fake.SamplingParams(n=2, top_k=1).best_of == 2


def test_a_non_int_max_tokens_fails_the_request_not_the_constructor(fake: ModuleType) -> None:
    params = fake.SamplingParams(end_id=2, max_tokens="8")  # accepted: SamplingParams checks no types
    llm = fake.LLM("/m", skip_tokenizer_init=True)

    async def run() -> None:
        result = llm.generate_async([1, 2, 3], params)  # accepted too
        await result

    with pytest.raises(fake.RequestError, match="max_tokens='8' is not an int"):
        asyncio.run(run())


def _serve(llm: Any, fake: ModuleType, prompts: list[list[int]], max_tokens: int = 6,
           streaming: bool = False) -> tuple[list[Any], list[tuple[str, int]]]:
    """Submit every prompt at once (in order), then collect results (or exceptions) and first/done events."""
    events: list[tuple[str, int]] = []

    async def consume(index: int, result: Any) -> Any:
        try:
            async for _ in result:
                if ("first", index) not in events:
                    events.append(("first", index))
        except fake.RequestError as error:
            return error
        events.append(("done", index))
        return result.outputs[0].token_ids

    async def run() -> list[Any]:
        params = fake.SamplingParams(end_id=2, max_tokens=max_tokens, min_tokens=max_tokens)
        results = [llm.generate_async(p, params, streaming=streaming) for p in prompts]
        return list(await asyncio.gather(*(consume(i, r) for i, r in enumerate(results))))

    return asyncio.run(run()), events


def test_requests_beyond_max_batch_size_wait_in_fifo_order(fake: ModuleType) -> None:
    fake.STATE.step_delay_s = 0.01
    llm = fake.LLM("/m", skip_tokenizer_init=True, max_batch_size=2)
    answers, events = _serve(llm, fake, [[1, 10 + i] for i in range(5)], streaming=True)
    assert all(len(tokens) == 6 for tokens in answers)
    assert (llm.peak_running, llm.peak_queued) == (2, 3)
    order = [index for kind, index in events if kind == "first"]
    assert order == [0, 1, 2, 3, 4]
    assert events.index(("first", 2)) > min(events.index(("done", 0)), events.index(("done", 1)))


def test_a_step_spends_at_most_max_num_tokens(fake: ModuleType) -> None:
    """Prompts of 5 tokens with max_num_tokens 8: one new context per step (5 + 5 > 8), the rest queue."""
    llm = fake.LLM("/m", skip_tokenizer_init=True, max_num_tokens=8)
    answers, _ = _serve(llm, fake, [[1, 2, 3, 4, i] for i in range(3)])
    assert all(len(tokens) == 6 for tokens in answers)
    assert llm.peak_queued == 2 and llm.peak_running == 3


def test_chunked_prefill_admits_prompts_longer_than_max_num_tokens(fake: ModuleType) -> None:
    chunked = fake.LLM("/m", skip_tokenizer_init=True, max_num_tokens=4, enable_chunked_prefill=True)
    answers, _ = _serve(chunked, fake, [[1] * 10, [2] * 3])
    assert [len(tokens) for tokens in answers] == [6, 6]
    plain = fake.LLM("/m", skip_tokenizer_init=True, max_num_tokens=4)

    async def run() -> None:
        plain.generate_async([1] * 10, fake.SamplingParams(end_id=2))

    with pytest.raises(ValueError, match=r"prompt length \(10.0\), query length \(0\) should not exceed "
                                         r"max_num_tokens \(4\)"):
        asyncio.run(run())


@pytest.mark.parametrize("cap", ["state", "kv_cache_config"])
def test_requests_wait_for_free_kv_cache_blocks(fake: ModuleType, cap: str) -> None:
    """64 tokens = 2 blocks of 32; each request reserves prompt 3 + max_tokens 6 -> 1 block: 2 run, 2 wait."""
    if cap == "state":
        fake.STATE.kv_cache_tokens = 64
        llm = fake.LLM("/m", skip_tokenizer_init=True)
    else:
        llm = fake.LLM("/m", skip_tokenizer_init=True, kv_cache_config=fake.KvCacheConfig(max_tokens=64))
    answers, _ = _serve(llm, fake, [[1, 2, i] for i in range(4)])
    assert all(len(tokens) == 6 for tokens in answers)
    assert (llm.peak_running, llm.peak_queued) == (2, 2)


def test_a_request_that_can_never_fit_the_kv_cache_fails_once_nothing_runs(fake: ModuleType) -> None:
    """1 block of 32 tokens: prompt 3 + 6 fits, prompt 40 + 6 never does; it waits, then the executor gives up."""
    fake.STATE.kv_cache_tokens = 32
    llm = fake.LLM("/m", skip_tokenizer_init=True)
    answers, events = _serve(llm, fake, [[1, 2, 3], [5] * 40])
    assert len(answers[0]) == 6 and ("done", 0) in events
    assert isinstance(answers[1], fake.RequestError) and str(answers[1]) == fake.NO_RESOURCE
    later, _ = _serve(llm, fake, [[1, 2, 3]])  # the executor loop has ended: later requests fail too
    assert isinstance(later[0], fake.RequestError)


def test_aborting_a_waiting_request_cancels_it(fake: ModuleType) -> None:
    fake.STATE.step_delay_s = 0.01
    llm = fake.LLM("/m", skip_tokenizer_init=True, max_batch_size=1)

    async def run() -> tuple[str | None, str | None]:
        params = fake.SamplingParams(end_id=2, max_tokens=4, min_tokens=4)
        first, second = llm.generate_async([1, 2], params), llm.generate_async([3, 4], params)
        second.abort()
        await first
        await second
        return first.outputs[0].finish_reason, second.outputs[0].finish_reason

    assert asyncio.run(run()) == ("length", "cancelled")


def test_a_hanging_shutdown_never_returns(fake: ModuleType) -> None:
    fake.STATE.hang_in_shutdown = True
    llm = fake.LLM("/m")
    worker = threading.Thread(target=llm.shutdown, daemon=True)  # left blocked; a daemon does not hold the exit
    worker.start()
    worker.join(0.5)
    assert worker.is_alive() and llm.shut_down


def test_a_slow_shutdown_takes_shutdown_delay_s_and_then_refuses_requests(fake: ModuleType) -> None:
    fake.STATE.shutdown_delay_s = 0.3
    llm = fake.LLM("/m", skip_tokenizer_init=True)
    began = time.monotonic()
    llm.shutdown()
    assert time.monotonic() - began >= 0.3

    async def run() -> None:
        llm.generate_async([1], fake.SamplingParams(end_id=2))

    with pytest.raises(RuntimeError, match="LLM is shutting down"):
        asyncio.run(run())


@pytest.mark.parametrize("hang", [False, True])
def test_the_environment_switch_hangs_shutdown_in_a_subprocess(hang: bool) -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from tensorrt_llm import _fake; llm = _fake.LLM('/m'); "
            "print('built', flush=True); llm.shutdown(); print('returned', flush=True)")
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    if hang:
        env["FAKE_TRTLLM_HANG_IN_SHUTDOWN"] = "1"
    with subprocess.Popen([sys.executable, "-c", code, FAKES], env=env, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "built"
            if hang:
                with pytest.raises(subprocess.TimeoutExpired):
                    child.wait(timeout=1.5)
            else:
                assert child.wait(timeout=60) == 0 and child.stdout.read().strip() == "returned"
        finally:
            child.kill()
