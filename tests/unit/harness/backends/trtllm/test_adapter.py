"""TrtllmBackend against tests/fakes/tensorrt_llm, a fake of TensorRT-LLM 1.2.1's LLM API surface.

The fake stands in for the real package (which cannot be installed in CI or on the CPU machines): it has the
real names and signatures, streams cumulative RequestOutput token lists asynchronously on the caller's event
loop, and logs every attribute the adapter touches (checked against the release in test_api_surface_*).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.backends.base import BackendInfo
from harness.backends.trtllm.adapter import TrtllmBackend
from harness.config import RunConfig, build_config
from harness.distributed.replicas import backend_setup, create_backend
from harness.errors import BackendError, ConfigError, EnvironmentProblem, PreflightError
from harness.tokenizer import load_tokenizer
from harness.types import GenerationRequest
from tests.fake_support import FAKES, drop_fake_modules, fake_trtllm_module, word_level_tokenizer
from tests.unit.harness.backends.sinks import PerRequestSink

LAUNCHER_ENV = ("TLLM_SPAWN_PROXY_PROCESS", "tllm_mpi_size", "SLURM_NTASKS", "WORLD_SIZE", "SLURM_GPUS_ON_NODE",
                "CUDA_VISIBLE_DEVICES", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS_PER_NODE",
                "OMPI_COMM_WORLD_LOCAL_SIZE")


@pytest.fixture
def fake_trtllm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Put the fake tensorrt_llm on sys.path, with a clean access log and no launcher/Slurm variables."""
    yield from fake_trtllm_module(monkeypatch, LAUNCHER_ENV)


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small real HF tokenizer directory (EOS '</s>' = 2), loaded through harness.tokenizer like Llama 2's."""
    return word_level_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def make_config(tokenizer_path: str, model_path: str = "/models/llama-2-70b-fp8", **settings: Any) -> RunConfig:
    backend = {"kind": "trtllm", **settings.pop("backend", {})}
    data = {"model": {"path": model_path, "tokenizer": tokenizer_path}, "backend": backend, **settings}
    return build_config(data)


class Recorder(PerRequestSink):
    """A TokenSink that keeps every call in order and signals when `expected` requests have ended."""

    def __init__(self, expected: int) -> None:
        self.events: list[tuple[str, int, Any]] = []
        self.expected = expected
        self.done = threading.Event()
        self.lock = threading.Lock()

    def _add(self, event: tuple[str, int, Any], final: bool) -> None:
        with self.lock:
            self.events.append(event)
            if final and sum(1 for e in self.events if e[0] != "first") >= self.expected:
                self.done.set()

    def first_token(self, request_id: int, token_id: int) -> None:
        self._add(("first", request_id, token_id), False)

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        self._add(("complete", request_id, list(token_ids)), True)

    def fail(self, request_id: int, error: BaseException) -> None:
        self._add(("fail", request_id, error), True)

    def of(self, kind: str) -> dict[int, Any]:
        return {rid: value for k, rid, value in self.events if k == kind}


PROMPTS = [(1, 15043, 29892, 590), (1, 450, 7483), (1, 1724, 338, 278, 7483, 310), (1, 306)]


def trtllm(config: RunConfig) -> TrtllmBackend:
    """The adapter with its options and the setup the run would give it (tokenizer from model.tokenizer)."""
    assert config.backend.kind == "trtllm"
    return TrtllmBackend(config.backend, backend_setup(config, load_tokenizer(config.model.tokenizer)))


RECORDERS: dict[int, Recorder] = {}  # backend id -> the sink it was started with


def start(backend: TrtllmBackend) -> BackendInfo:
    """Start the backend with a fresh Recorder as its sink (serve() reads it)."""
    recorder = Recorder(0)
    RECORDERS[id(backend)] = recorder
    return backend.start(recorder)


def serve(backend: TrtllmBackend, want_first: bool, prompts: Sequence[tuple[int, ...]] = PROMPTS) -> Recorder:
    recorder = RECORDERS[id(backend)]
    recorder.done.clear()
    recorder.expected = sum(1 for event in recorder.events if event[0] != "first") + len(prompts)
    requests = [GenerationRequest(request_id=100 + i, sample_index=i, input_ids=p, want_first_token=want_first)
                for i, p in enumerate(prompts)]
    backend.submit(requests)
    assert recorder.done.wait(20), f"backend did not finish: {recorder.events}"
    return recorder


def expected_answer(fake: ModuleType, prompt: tuple[int, ...], backend: TrtllmBackend, eos: int) -> list[int]:
    tokens, reason = fake.fake_tokens(list(prompt), params_of(backend))
    return [*tokens, eos] if reason == "stop" and eos not in tokens else tokens


def params_of(backend: TrtllmBackend) -> Any:
    """A SamplingParams as the adapter builds one for each request."""
    return backend.engine._sampling_params(**backend.engine._sampling_kwargs)


def test_offline_returns_generated_ids_with_eos_appended_on_stop(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    backend = trtllm(make_config(tokenizer_path))
    info = start(backend)
    try:
        eos = load_tokenizer(tokenizer_path).eos_token_id
        assert info.eos_token_id == eos == 2 and info.versions == {"tensorrt_llm": "1.2.1"}
        recorder = serve(backend, want_first=False)
    finally:
        backend.stop()
    llm = fake_trtllm.STATE.llms[0]
    assert llm.requests == [list(p) for p in PROMPTS]
    assert recorder.of("first") == {}
    completed = recorder.of("complete")
    assert completed == {100 + i: expected_answer(fake_trtllm, p, backend, eos) for i, p in enumerate(PROMPTS)}
    assert all(tokens[-1] == eos and tokens.count(eos) == 1 for tokens in completed.values())


def test_sampling_params_follow_generation_config(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    config = make_config(tokenizer_path, generation={"max_new_tokens": 64, "min_new_tokens": 2})
    backend = trtllm(config)
    info = start(backend)
    backend.stop()
    params = params_of(backend)
    assert (params.end_id, params.pad_id) == (info.eos_token_id, load_tokenizer(tokenizer_path).pad_token_id)
    assert (params.max_tokens, params.min_tokens, params.top_k, params.detokenize) == (64, 2, 1, False)
    assert params.use_beam_search is False and params.temperature is None


def test_server_reports_first_token_before_completion(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    backend = trtllm(make_config(tokenizer_path, scenario="Server"))
    start(backend)
    try:
        recorder = serve(backend, want_first=True)
    finally:
        backend.stop()
    completed = recorder.of("complete")
    assert set(completed) == {100, 101, 102, 103}
    for request_id, tokens in completed.items():
        kinds = [kind for kind, rid, _ in recorder.events if rid == request_id]
        assert kinds == ["first", "complete"]
        assert recorder.of("first")[request_id] == tokens[0]


def test_end_id_already_in_output_is_not_doubled(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    fake_trtllm.STATE.include_end_id = True
    backend = trtllm(make_config(tokenizer_path))
    info = start(backend)
    try:
        completed = serve(backend, want_first=False).of("complete")
    finally:
        backend.stop()
    assert all(tokens.count(info.eos_token_id) == 1 and tokens[-1] == info.eos_token_id
               for tokens in completed.values())


def test_length_limited_answer_gets_no_eos(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    backend = trtllm(make_config(tokenizer_path, generation={"max_new_tokens": 2}))
    info = start(backend)
    try:
        completed = serve(backend, want_first=False).of("complete")
    finally:
        backend.stop()
    assert all(len(tokens) == 2 and info.eos_token_id not in tokens for tokens in completed.values())


def test_llm_gets_parallel_sizes_and_kv_cache_config(fake_trtllm: ModuleType, tokenizer_path: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLLM_SPAWN_PROXY_PROCESS", "1")
    monkeypatch.setenv("tllm_mpi_size", "16")
    config = make_config(tokenizer_path, backend={
        "tensor_parallel_size": 8, "pipeline_parallel_size": 2, "max_batch_size": 896, "max_num_tokens": 8192,
        "kv_cache_dtype": "fp8", "kv_cache_free_gpu_memory_fraction": 0.85})
    backend = trtllm(config)
    info = start(backend)
    backend.stop()
    llm = fake_trtllm.STATE.llms[0]
    kv = llm.kwargs["kv_cache_config"]
    assert llm.world_size == 16 and llm.kwargs["max_batch_size"] == 896 and llm.kwargs["max_num_tokens"] == 8192
    assert (kv.dtype, kv.free_gpu_memory_fraction, kv.enable_block_reuse) == ("fp8", 0.85, False)
    assert llm.shut_down and "TP8xPP2" in info.name
    assert any("tllm_mpi_size" in note for note in info.notes)


@pytest.mark.parametrize(("reuse", "recorded"), [(False, "off"), (True, "on")])
def test_the_report_records_the_block_reuse_the_llm_was_given(fake_trtllm: ModuleType, tokenizer_path: str,
                                                              reuse: bool, recorded: str) -> None:
    backend = trtllm(make_config(tokenizer_path, backend={"enable_block_reuse": reuse}))
    start(backend)
    row = backend.report().sections["engines"][0]
    backend.stop()
    assert fake_trtllm.STATE.llms[0].kwargs["kv_cache_config"].enable_block_reuse is reuse
    import tensorrt_llm

    assert (row["engine"], row["prefix_caching"], row["version"]) == ("trtllm", recorded, tensorrt_llm.__version__)


def test_engine_dir_uses_tensorrt_engine_llm(fake_trtllm: ModuleType, tokenizer_path: str, tmp_path: Path) -> None:
    engine = tmp_path / "engine_tp2_pp1"
    engine.mkdir()
    (engine / "config.json").write_text(json.dumps({"pretrained_config": {"mapping": {"tp_size": 2, "pp_size": 1}}}))
    for rank in range(2):
        (engine / f"rank{rank}.engine").write_bytes(b"engine")
    config = make_config(tokenizer_path, str(engine), backend={"backend": "tensorrt", "tensor_parallel_size": 2})
    backend = trtllm(config)
    start(backend)
    try:
        completed = serve(backend, want_first=False).of("complete")
    finally:
        backend.stop()
    llm = fake_trtllm.STATE.llms[0]
    assert type(llm).__name__ == "EngineLLM" and llm.model == str(engine) and len(completed) == len(PROMPTS)
    assert not hasattr(llm.kwargs["kv_cache_config"], "dtype") or llm.kwargs["kv_cache_config"].dtype == "auto"
    assert "tensorrt_llm.llmapi.KvCacheConfig(dtype=)" not in fake_trtllm.ACCESSED


def test_engine_built_for_other_layout_is_refused(fake_trtllm: ModuleType, tokenizer_path: str,
                                                  tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"pretrained_config": {"mapping": {"tp_size": 8, "pp_size": 1}}}))
    config = make_config(tokenizer_path, str(tmp_path), backend={
        "backend": "tensorrt", "tensor_parallel_size": 8, "pipeline_parallel_size": 2, "gpu_check": False})
    with pytest.raises(ConfigError, match=r"built for TP 8 x PP 1, but the config asks for TP 8 x PP 2"):
        start(trtllm(config))
    assert fake_trtllm.STATE.llms == []


def test_missing_package_is_an_environment_problem(tokenizer_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_fake_modules()
    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)  # import fails exactly as when not installed
    with pytest.raises(EnvironmentProblem) as caught:
        start(trtllm(make_config(tokenizer_path)))
    assert caught.value.exit_code == 3
    assert "tensorrt_llm" in caught.value.message and "tensorrt-llm" in (caught.value.hint or "")


@pytest.mark.parametrize(("version", "engine", "message"), [
    ("0.17.0", False, "too old"),
    ("1.3.0rc2", True, "no TensorRT engine backend"),
])
def test_unsupported_versions_are_refused(fake_trtllm: ModuleType, tokenizer_path: str, tmp_path: Path,
                                          version: str, engine: bool, message: str) -> None:
    fake_trtllm.STATE.version = version
    settings = {"backend": "tensorrt"} if engine else {}
    with pytest.raises(EnvironmentProblem, match=message):
        start(trtllm(make_config(tokenizer_path, str(tmp_path), backend=settings)))
    assert fake_trtllm.STATE.llms == []


def test_newer_version_runs_with_a_note(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    fake_trtllm.STATE.version = "1.4.0"
    backend = trtllm(make_config(tokenizer_path))
    info = start(backend)
    backend.stop()
    assert any("newer than the release" in note for note in info.notes)


def test_gpu_count_mismatch_is_refused_before_loading(fake_trtllm: ModuleType, tokenizer_path: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed layout launched without trtllm-llmapi-launch: 16 harness ranks with one GPU each."""
    for name, value in (("SLURM_NTASKS", "16"), ("SLURM_GPUS_ON_NODE", "8"), ("SLURM_NTASKS_PER_NODE", "8")):
        monkeypatch.setenv(name, value)
    config = make_config(tokenizer_path, backend={"tensor_parallel_size": 8, "pipeline_parallel_size": 2})
    with pytest.raises(PreflightError, match=r"on 16 harness rank\(s\).*MPI_Comm_spawn") as caught:
        start(trtllm(config))
    assert "trtllm-llmapi-launch" in (caught.value.hint or "")
    assert fake_trtllm.STATE.llms == []


def test_llm_load_failure_becomes_backend_error(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    fake_trtllm.STATE.device_count = 4
    config = make_config(tokenizer_path, backend={"tensor_parallel_size": 8, "gpu_check": False})
    with pytest.raises(BackendError, match="Only 4 GPUs are available, but 8 are required") as caught:
        start(trtllm(config))
    assert caught.value.exit_code == 4


def test_beam_search_offline_and_refused_for_server(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    backend = trtllm(make_config(tokenizer_path, generation={"num_beams": 4}))
    start(backend)
    backend.stop()
    assert (params_of(backend).use_beam_search, params_of(backend).best_of, params_of(backend).n) == (True, 4, 1)
    with pytest.raises(ConfigError, match="num_beams is 4"):
        start(trtllm(make_config(tokenizer_path, scenario="Server", generation={"num_beams": 4})))


def test_beam_search_passes_max_beam_width_so_beam_requests_are_accepted(fake_trtllm: ModuleType,
                                                                        tokenizer_path: str) -> None:
    """Risk 10 of issue 16: LlmArgs.max_beam_width defaults to 1, and the real LLM refuses best_of above it."""
    backend = trtllm(make_config(tokenizer_path, generation={"num_beams": 4}))
    start(backend)
    try:
        recorder = serve(backend, want_first=False)
    finally:
        backend.stop()
    assert fake_trtllm.STATE.llms[0].kwargs["max_beam_width"] == 4
    assert recorder.of("fail") == {} and len(recorder.of("complete")) == len(PROMPTS)


def _engine(tmp_path: Path, **build: int) -> Path:
    engine = tmp_path / "engine"
    engine.mkdir()
    (engine / "config.json").write_text(json.dumps({"pretrained_config": {"mapping": {"tp_size": 1, "pp_size": 1}},
                                                    "build_config": build}))
    (engine / "rank0.engine").write_bytes(b"engine")
    return engine


def test_run_limits_above_the_engines_build_limits_are_refused_before_loading(
        fake_trtllm: ModuleType, tokenizer_path: str, tmp_path: Path) -> None:
    """Risk 10: the engine was built with max_batch_size 512 / max_beam_width 1; the run asked for more."""
    engine = _engine(tmp_path, max_batch_size=512, max_num_tokens=8192, max_seq_len=2048, max_beam_width=1)
    too_big = make_config(tokenizer_path, str(engine), backend={"backend": "tensorrt", "max_batch_size": 1024})
    with pytest.raises(ConfigError, match="max_batch_size is 1024, above the engine's build limit 512"):
        start(trtllm(too_big))
    beams = make_config(tokenizer_path, str(engine), backend={"backend": "tensorrt"}, generation={"num_beams": 2})
    with pytest.raises(ConfigError, match="num_beams is 2, but the engine was built with max_beam_width 1"):
        start(trtllm(beams))
    assert fake_trtllm.STATE.llms == []


def test_prompt_plus_max_new_tokens_above_max_seq_len_is_refused_at_warm_up(
        fake_trtllm: ModuleType, tokenizer_path: str, tmp_path: Path) -> None:
    engine = _engine(tmp_path, max_seq_len=2048)
    backend = trtllm(make_config(tokenizer_path, str(engine), backend={"backend": "tensorrt"}))
    start(backend)
    try:
        assert backend.warm_up(1024, [1]) is None  # 1024 + 1024 fits exactly
        with pytest.raises(ConfigError, match=r"longest prompt \(1025 tokens\) \+ generation.max_new_tokens \(1024\) "
                                              "exceeds max_seq_len 2048"):
            backend.warm_up(1025, [1])
    finally:
        backend.stop()


def test_a_prompt_above_max_num_tokens_fails_that_request_not_the_run(fake_trtllm: ModuleType,
                                                                      tokenizer_path: str) -> None:
    """The real LLM raises RequestError for it (llm.py _check_arguments); the sample fails, nothing hangs."""
    backend = trtllm(make_config(tokenizer_path, backend={"max_num_tokens": 5}))
    start(backend)
    try:
        recorder = serve(backend, want_first=False)
    finally:
        backend.stop()
    failed = recorder.of("fail")
    assert sorted(failed) == [102]  # the one six-token prompt
    assert "should not exceed max_num_tokens (5)" in str(failed[102])


def test_steps_carrying_several_tokens_give_the_same_answers_and_first_tokens(fake_trtllm: ModuleType,
                                                                              tokenizer_path: str) -> None:
    """Overlap scheduler / speculative decoding / stream_interval: a step may add several tokens."""
    fake_trtllm.STATE.tokens_per_step = 3
    backend = trtllm(make_config(tokenizer_path, scenario="Server"))
    start(backend)
    try:
        recorder = serve(backend, want_first=True)
    finally:
        backend.stop()
    eos = load_tokenizer(tokenizer_path).eos_token_id
    expected = {100 + i: expected_answer(fake_trtllm, p, backend, eos) for i, p in enumerate(PROMPTS)}
    assert recorder.of("complete") == expected
    assert recorder.of("first") == {rid: tokens[0] for rid, tokens in expected.items()}


def test_a_mid_stream_failure_fails_the_request_with_its_message(fake_trtllm: ModuleType,
                                                                 tokenizer_path: str) -> None:
    fake_trtllm.STATE.fail_after_tokens = 2
    backend = trtllm(make_config(tokenizer_path, scenario="Server"))
    start(backend)
    try:
        recorder = serve(backend, want_first=True)
    finally:
        backend.stop()
    assert sorted(recorder.of("fail")) == [100 + i for i in range(len(PROMPTS))]
    assert all("forwardAsync" in str(error) for error in recorder.of("fail").values())


def test_an_llm_built_inside_a_multi_rank_world_without_the_launcher_fails_to_load(
        fake_trtllm: ModuleType, tokenizer_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Risk 7: the fake refuses the worker spawn as MPI does inside an srun step (NVIDIA/TensorRT-LLM#5495)."""
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.delenv("TLLM_SPAWN_PROXY_PROCESS", raising=False)
    config = make_config(tokenizer_path, backend={"tensor_parallel_size": 8, "gpu_check": False})
    with pytest.raises(BackendError, match="MPI_Comm_spawn failed"):
        start(trtllm(config))
    with pytest.raises(PreflightError, match="over 2 harness ranks"):  # and the layout check says why first
        start(trtllm(make_config(tokenizer_path, backend={"tensor_parallel_size": 8}, distributed={"replicas": 2})))


def test_cancel_all_fails_requests_not_yet_served(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    backend = trtllm(make_config(tokenizer_path))
    start(backend)
    try:
        backend.cancel_all()
        recorder = serve(backend, want_first=False)
    finally:
        backend.stop()
    failed = recorder.of("fail")
    assert set(failed) == {100, 101, 102, 103} and recorder.of("complete") == {}
    assert all(isinstance(error, BackendError) for error in failed.values())


def test_stop_is_idempotent_and_factory_is_registered(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    config = make_config(tokenizer_path)
    backend = create_backend(config, load_tokenizer(config.model.tokenizer))
    assert isinstance(backend, TrtllmBackend)
    start(backend)
    backend.stop()
    backend.stop()
    assert fake_trtllm.STATE.llms[0].shut_down


def test_cancel_all_aborts_requests_in_flight(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    fake_trtllm.STATE.step_delay_s = 0.05
    backend = trtllm(make_config(tokenizer_path))
    start(backend)
    recorder = RECORDERS[id(backend)]
    recorder.expected = len(PROMPTS)
    try:
        backend.submit([GenerationRequest(request_id=i, sample_index=i, input_ids=p) for i, p in enumerate(PROMPTS)])
        while len(backend._tasks) < len(PROMPTS) or len(fake_trtllm.STATE.llms[0].requests) < len(PROMPTS):
            threading.Event().wait(0.01)
        backend.cancel_all()
        assert recorder.done.wait(20)
    finally:
        backend.stop()
    assert set(recorder.of("fail")) == {0, 1, 2, 3} and recorder.of("complete") == {}
    assert "RequestOutput.abort" in fake_trtllm.ACCESSED


# Every tensorrt_llm name the adapter touches, with where TensorRT-LLM v1.2.1 (tag v1.2.1, commit 376f7e1b, the
# source the 1.2.1 docs link) defines it. Reviewers: check each entry against that tag. Paths are relative to
# tensorrt_llm/. "X(name=)" is a keyword argument or field passed to X; "X.name" an attribute read or call.
# Written from the 1.x sources read while writing the adapter: llmapi/llm_args.py (BaseLlmArgs with
# extra="forbid", KvCacheConfig.dtype "only for the Pytorch backend"), sampling_params.py (tag 1.0.0rc4),
# executor/result.py, _tensorrt_engine/__init__.py, llmapi/trtllm-llmapi-launch. Symbols, not line numbers, are
# cited because line numbers move between patch releases.
_LLM_INIT = "llmapi/llm.py: BaseLLM.__init__(model, tokenizer=None, tokenizer_mode, skip_tokenizer_init, " \
            "trust_remote_code, tensor_parallel_size=1, dtype, revision, tokenizer_revision, **kwargs)"
_LLM_ARGS = "llmapi/llm_args.py: BaseLlmArgs field (reaches LlmArgs through LLM(**kwargs))"
_GENERATE = "llmapi/llm.py: BaseLLM.generate_async(inputs, sampling_params=None, lora_request=None, " \
            "prompt_adapter_request=None, streaming=False, ...) -> RequestOutput"
_SAMPLING = "sampling_params.py: @dataclass(slots=True, kw_only=True) class SamplingParams, field"
_LLM_NAMES = {
    "(model=)": _LLM_INIT, "(skip_tokenizer_init=)": _LLM_INIT, "(tensor_parallel_size=)": _LLM_INIT,
    "(pipeline_parallel_size=)": _LLM_ARGS, "(kv_cache_config=)": _LLM_ARGS, "(max_batch_size=)": _LLM_ARGS,
    "(max_num_tokens=)": _LLM_ARGS, "(max_seq_len=)": _LLM_ARGS,
    ".generate_async": _GENERATE, ".generate_async(streaming=)": _GENERATE,
    ".shutdown": "llmapi/llm.py: BaseLLM.shutdown()",
}
API_SURFACE_V1_2_1: dict[str, str] = {
    "tensorrt_llm.__version__": "version.py: __version__ (imported by __init__.py)",
    "tensorrt_llm.LLM": "__init__.py exports llmapi.LLM (llmapi/llm.py: class LLM(_TorchLLM), PyTorch backend)",
    **{f"tensorrt_llm.LLM{key}": where for key, where in _LLM_NAMES.items()},
    "tensorrt_llm.LLM(enable_chunked_prefill=)": _LLM_ARGS,
    "tensorrt_llm.LLM(scheduler_config=)": _LLM_ARGS + " (BaseLlmArgs.scheduler_config: SchedulerConfig)",
    "tensorrt_llm.LLM(cuda_graph_config=)": _LLM_ARGS + " (TorchLlmArgs.cuda_graph_config: CudaGraphConfig)",
    "tensorrt_llm.LLM(disable_overlap_scheduler=)": _LLM_ARGS + " (TorchLlmArgs.disable_overlap_scheduler)",
    "tensorrt_llm._tensorrt_engine.LLM(scheduler_config=)": _LLM_ARGS + " (BaseLlmArgs.scheduler_config)",
    "tensorrt_llm.LLM(max_beam_width=)": _LLM_ARGS + " (default 1; beam requests above it are refused)",
    "tensorrt_llm._tensorrt_engine.LLM": "_tensorrt_engine/__init__.py: from tensorrt_llm.llmapi.llm import "
                                         "_TrtLLM as LLM",
    **{f"tensorrt_llm._tensorrt_engine.LLM{key}": where for key, where in _LLM_NAMES.items()
       if key not in ("(max_batch_size=)", "(max_num_tokens=)", "(max_seq_len=)")},
    "tensorrt_llm.SamplingParams": "__init__.py exports sampling_params.SamplingParams",
    **{f"tensorrt_llm.SamplingParams({name}=)": _SAMPLING for name in (
        "end_id", "pad_id", "max_tokens", "min_tokens", "detokenize", "top_k", "top_p", "temperature",
        "use_beam_search", "best_of", "length_penalty", "early_stopping", "repetition_penalty", "presence_penalty")},
    "tensorrt_llm.llmapi.KvCacheConfig": "llmapi/__init__.py exports llm_args.KvCacheConfig",
    "tensorrt_llm.llmapi.KvCacheConfig(free_gpu_memory_fraction=)": "llmapi/llm_args.py: KvCacheConfig field",
    "tensorrt_llm.llmapi.KvCacheConfig(enable_block_reuse=)": "llmapi/llm_args.py: KvCacheConfig field",
    "tensorrt_llm.llmapi.KvCacheConfig(dtype=)": "llmapi/llm_args.py: KvCacheConfig.dtype (PyTorch backend only)",
    "RequestOutput.__aiter__": "executor/result.py: GenerationResult.__aiter__/__anext__ (one step per response)",
    "RequestOutput.aresult": "executor/result.py: async GenerationResult.aresult()",
    "RequestOutput.outputs": "executor/result.py: GenerationResultBase.outputs -> list[CompletionOutput]",
    "RequestOutput.abort": "executor/result.py: GenerationResult.abort()",
    "CompletionOutput.token_ids": "executor/result.py: CompletionOutput.token_ids (cumulative in streaming)",
    "CompletionOutput.finish_reason": "executor/result.py: CompletionOutput.finish_reason "
                                      "('stop'|'length'|'timeout'|'cancelled')",
}


def _exercise(tokenizer_path: str, engine_dir: Path, **settings: Any) -> None:
    model = str(engine_dir) if settings.get("backend", {}).get("backend") == "tensorrt" else "/models/llama"
    backend = trtllm(make_config(tokenizer_path, model, **settings))
    start(backend)
    try:
        serve(backend, want_first=settings.get("scenario") == "Server")
    finally:
        backend.stop()


def test_api_surface_matches_the_named_release(fake_trtllm: ModuleType, tokenizer_path: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configuration path of the adapter together touches exactly API_SURFACE_V1_2_1."""
    (tmp_path / "config.json").write_text(json.dumps({"pretrained_config": {"mapping": {"tp_size": 1}}}))
    (tmp_path / "rank0.engine").write_bytes(b"engine")
    monkeypatch.setenv("TLLM_SPAWN_PROXY_PROCESS", "1")
    monkeypatch.setenv("tllm_mpi_size", "2")
    _exercise(tokenizer_path, tmp_path, backend={
        "pipeline_parallel_size": 2, "max_batch_size": 64, "max_num_tokens": 4096, "max_seq_len": 2048,
        "enable_chunked_prefill": True, "kv_cache_dtype": "fp8", "capacity_scheduler_policy": "max_util",
        "cuda_graph_batch_sizes": [1, 8, 64], "cuda_graph_padding": True, "disable_overlap_scheduler": False})
    monkeypatch.setenv("tllm_mpi_size", "1")
    _exercise(tokenizer_path, tmp_path, scenario="Server")
    _exercise(tokenizer_path, tmp_path, generation={"temperature": 0.7, "top_k": 40, "top_p": 0.9,
                                                    "repetition_penalty": 1.1, "presence_penalty": 0.5})
    _exercise(tokenizer_path, tmp_path, generation={"num_beams": 2, "length_penalty": 0.8})
    _exercise(tokenizer_path, tmp_path, backend={"backend": "tensorrt", "capacity_scheduler_policy": "max_util"})
    test_cancel_all_aborts_requests_in_flight(fake_trtllm, tokenizer_path)
    assert sorted(fake_trtllm.ACCESSED) == sorted(API_SURFACE_V1_2_1)


def _run_config(tokenizer_path: str, tmp_path: Path, scenario: str, mode: str) -> RunConfig:
    (tmp_path / "model").mkdir(exist_ok=True)
    return build_config({
        "model": {"path": str(tmp_path / "model"), "tokenizer": tokenizer_path}, "backend": {"kind": "trtllm"},
        "dataset": {"max_samples": 6, "chat_template": False}, "generation": {"max_new_tokens": 12},
        "scenario": scenario, "mode": mode, "output_dir": str(tmp_path / f"run-{scenario}"),
        "loadgen": {"min_duration": 0, "min_query_count": 12, "target_qps": 200}})


def _samples(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_full_offline_run_through_real_loadgen(fake_trtllm: ModuleType, tokenizer_path: str, tmp_path: Path) -> None:
    """harness.runner.run with real LoadGen: every sample's n_tokens is the adapter's answer, EOS included."""
    from harness import runner
    from harness.dataset import load_dataset

    config = _run_config(tokenizer_path, tmp_path, "Offline", "performance")
    outcome = runner.run(config, progress=False)
    assert outcome is not None and outcome.manifest.status.value == "completed", outcome
    prompts = {s.index: list(s.input_ids) for s in load_dataset(config, load_tokenizer(tokenizer_path)).samples}
    params = fake_trtllm.SamplingParams(end_id=2, max_tokens=12, min_tokens=1)
    expected = {}
    for index, prompt in prompts.items():
        tokens, reason = fake_trtllm.fake_tokens(prompt, params)
        expected[index] = len(tokens) + (reason == "stop")
    samples = _samples(outcome.run_dir)
    assert len(samples) >= 12 and {s["qsl_idx"]: s["n_tokens"] for s in samples} == expected
    assert sorted(map(tuple, fake_trtllm.STATE.llms[0].requests)) == sorted(tuple(prompts[s["qsl_idx"]])
                                                                            for s in samples)
    assert fake_trtllm.STATE.llms[0].shut_down


def test_full_server_run_reports_first_tokens(fake_trtllm: ModuleType, tokenizer_path: str, tmp_path: Path) -> None:
    from harness import runner

    outcome = runner.run(_run_config(tokenizer_path, tmp_path, "Server", "performance"), progress=False)
    assert outcome is not None and outcome.manifest.status.value == "completed", outcome
    samples = _samples(outcome.run_dir)
    assert len(samples) >= 12
    assert all(s["issued_ns"] <= s["first_token_ns"] <= s["completed_ns"] and s["n_tokens"] >= 2 for s in samples)


def test_cli_run_without_tensorrt_llm_exits_3_with_install_hint(tokenizer_path: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    drop_fake_modules()
    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)
    with pytest.raises(SystemExit) as exited:
        main(["run", "--set", "backend.kind=trtllm", "--set", f"model.path={tmp_path}", "--set",
              f"model.tokenizer={tokenizer_path}", "--set", "dataset.chat_template=false",
              "--output-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert exited.value.code == 3
    assert "error: backend.kind trtllm needs the tensorrt_llm package" in err and "hint:" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_an_executor_that_never_gets_ready_fails_after_ready_timeout_s(fake_trtllm: ModuleType,
                                                                        tokenizer_path: str) -> None:
    """The fake's LLM(...) blocks forever, as the real one does when PP workers never join (#8961)."""
    from harness.backends.trtllm.adapter import ExecutorNotReady

    fake_trtllm.STATE.hang_in_construction = True
    config = make_config(tokenizer_path, backend={"ready_timeout_s": 0.5})
    began = time.monotonic()
    with pytest.raises(ExecutorNotReady) as caught:
        start(trtllm(config))
    assert 0.5 <= time.monotonic() - began < 10
    message = str(caught.value)
    assert "not ready within backend.ready_timeout_s = 0.5 s" in message and "NVIDIA/TensorRT-LLM#8961" in message
    assert caught.value.exit_code == 4 and caught.value.leaves_native_thread
    assert fake_trtllm.STATE.llms == []


def test_the_cli_run_with_a_hanging_executor_exits_4_and_marks_the_run_failed(tokenizer_path: str,
                                                                              tmp_path: Path) -> None:
    """A real `python -m harness run` process with the fake on its path: it leaves (no teardown wait for the
    abandoned loader thread) with exit 4, one error line, and a manifest marked failed."""
    repo = Path(__file__).resolve().parents[5]
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{FAKES}", "FAKE_TRTLLM_HANG_IN_CONSTRUCTION": "1"}
    for name in LAUNCHER_ENV:
        env.pop(name, None)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--set", "backend.kind=trtllm", "--set", f"model.path={tmp_path}",
         "--set", f"model.tokenizer={tokenizer_path}", "--set", "dataset.chat_template=false", "--set",
         "backend.ready_timeout_s=2", "--set", "dataset.max_samples=4", "--output-dir", str(run_dir), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 4, done.stderr
    assert len(errors) == 1 and "not ready within backend.ready_timeout_s = 2 s" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "ready_timeout_s" in manifest["error"]


def test_nvidia_runtime_settings_reach_the_llm_as_validated_llm_args(fake_trtllm: ModuleType,
                                                                     tokenizer_path: str) -> None:
    """preset h200 fills NVIDIA's settings; explicit keys win; the fake validates them as pydantic LlmArgs do."""
    config = make_config(tokenizer_path, backend={"preset": "h200", "tensor_parallel_size": 8,
                                                  "cuda_graph_batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128],
                                                  "cuda_graph_padding": True, "disable_overlap_scheduler": False})
    start(trtllm(config))
    (llm,) = fake_trtllm.STATE.llms
    assert llm.kwargs["scheduler_config"] == {"capacity_scheduler_policy": "MAX_UTILIZATION"}
    assert llm.kwargs["cuda_graph_config"] == {"batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128], "enable_padding": True}
    assert llm.kwargs["disable_overlap_scheduler"] is False
    assert (llm.kwargs["max_num_tokens"], llm.kwargs["max_batch_size"], llm.kwargs["enable_chunked_prefill"]) == (
        1536, 2048, True)
    assert llm.world_size == 8  # the explicit TP, not the preset's TP1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"scheduler_config": {"capacity_scheduler_policy": "MAX_UTIL"}}, "SchedulerConfig"),
    ({"scheduler_config": {"policy": "MAX_UTILIZATION"}}, "SchedulerConfig"),
    ({"cuda_graph_config": {"batch_sizes": [0]}}, "CudaGraphConfig"),
    ({"cuda_graph_config": {"sizes": [8]}}, "CudaGraphConfig"),
    ({"overlap_scheduler": True}, "unknown"),
])
def test_the_fake_rejects_what_pydantic_llm_args_reject(fake_trtllm: ModuleType, kwargs: dict[str, Any],
                                                        match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fake_trtllm.LLM("/models/x", **kwargs)


def test_engines_refuse_the_pytorch_only_runtime_settings(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    with pytest.raises(ConfigError, match="exist only for the PyTorch backend"):
        make_config(tokenizer_path, backend={"backend": "tensorrt", "cuda_graph_batch_sizes": [8]})
    with pytest.raises(ValueError, match="unknown"):  # TrtLlmArgs has no such field
        fake_trtllm.EngineLLM("/models/engine", disable_overlap_scheduler=True)


class _BatchCounter:
    """A batch-first TokenSink that counts its calls: each complete_batch is one LoadGen QuerySamplesComplete."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.calls = 0
        self.completed: dict[int, list[int]] = {}
        self.failed: dict[int, BaseException] = {}
        self.done = threading.Event()

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        raise AssertionError("no first tokens were asked for")

    def complete_batch(self, completions: Sequence[tuple[int, Sequence[int]]]) -> None:
        self.calls += 1
        self.completed.update((rid, list(ids)) for rid, ids in completions)
        if len(self.completed) + len(self.failed) >= self.expected:
            self.done.set()

    def complete_rows(self, request_ids: Sequence[int], rows: Any) -> None:
        raise AssertionError("the adapter reports lists, not matrices")

    def fail(self, request_id: int, error: BaseException) -> None:
        self.failed[request_id] = error
        self.done.set()


def test_completions_reach_the_sink_in_batches_not_one_call_per_request(fake_trtllm: ModuleType,
                                                                       tokenizer_path: str) -> None:
    """Issue 23: the adapter used to hand LoadGen one sample per call; on the engine core, the requests that finish
    in one loop turn reach the sink (and LoadGen) in one call."""
    fake_trtllm.STATE.step_delay_s = 0.01
    prompts = [(1, 100 + i, 7) for i in range(64)]
    backend = trtllm(make_config(tokenizer_path))
    sink = _BatchCounter(len(prompts))
    backend.start(sink)
    try:
        backend.submit([GenerationRequest(request_id=i, sample_index=i, input_ids=p) for i, p in enumerate(prompts)])
        assert sink.done.wait(20)
    finally:
        backend.stop()
    assert sink.failed == {} and len(sink.completed) == len(prompts)
    lengths = {len(fake_trtllm.fake_tokens(list(p), params_of(backend))[0]) for p in prompts}
    assert sink.calls <= 2 * len(lengths) < len(prompts), (sink.calls, len(lengths))


def test_a_hanging_shutdown_is_abandoned_after_the_bound(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    """LLM.shutdown() that never returns (as one waiting on MPI workers can): stop() gives up after
    backend.stop_timeout_s, fails what was open, and raises the exit-4 error that leaves without teardown."""
    from harness.backends.core import EngineStopHung

    backend = trtllm(make_config(tokenizer_path, backend={"stop_timeout_s": 0.5}))
    start(backend)
    release = threading.Event()
    (llm,) = fake_trtllm.STATE.llms
    llm.shutdown = lambda: release.wait()  # type: ignore[method-assign]
    began = time.monotonic()
    try:
        with pytest.raises(EngineStopHung) as caught:
            backend.stop()
        assert 0.5 <= time.monotonic() - began < 3
    finally:
        release.set()
    assert caught.value.exit_code == 4 and caught.value.leaves_native_thread
    assert "did not shut down within 0.5 s (backend.stop_timeout_s)" in str(caught.value)
    assert backend.stop_problem is not None and "abandoned" in backend.stop_problem
    backend.stop()  # idempotent: the second call returns at once


def test_the_cli_run_with_a_hanging_shutdown_exits_4_within_the_bound(tokenizer_path: str, tmp_path: Path) -> None:
    """A real `python -m harness run` whose TensorRT-LLM shutdown hangs: the run ends with exit 4 within the bound
    (plus start-up), one error line naming the hang, and the manifest marked failed with it."""
    repo = Path(__file__).resolve().parents[5]
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{FAKES}", "FAKE_TRTLLM_HANG_IN_SHUTDOWN": "1"}
    for name in LAUNCHER_ENV:
        env.pop(name, None)
    run_dir = tmp_path / "run"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--set", "backend.kind=trtllm", "--set", f"model.path={tmp_path}",
         "--set", f"model.tokenizer={tokenizer_path}", "--set", "dataset.chat_template=false", "--set",
         "backend.stop_timeout_s=2", "--set", "dataset.max_samples=4", "--output-dir", str(run_dir), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 4, done.stderr
    assert len(errors) == 1 and "did not shut down within 2 s (backend.stop_timeout_s)" in errors[0], done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - began < 90
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "stop_timeout_s" in manifest["error"]
    assert (run_dir / "mlperf_log_detail.txt").is_file()  # what LoadGen wrote before the stop is kept


def test_a_kv_cache_too_small_for_a_request_marks_the_engine_dead_with_the_fix(fake_trtllm: ModuleType,
                                                                               tokenizer_path: str) -> None:
    """The executor loop's 'fail to schedule any pending request' assertion ends it (py_executor.py): the adapter
    says why and what to change once, and every later request fails at once instead of reaching the dead LLM."""
    fake_trtllm.STATE.kv_cache_tokens = 4  # no prompt + max_tokens fits
    backend = trtllm(make_config(tokenizer_path))
    start(backend)
    try:
        recorder = serve(backend, want_first=False)
        later = serve(backend, want_first=False, prompts=PROMPTS[:1])
    finally:
        backend.stop()
    failed = recorder.of("fail")
    assert set(failed) == {100, 101, 102, 103} and recorder.of("complete") == {}
    texts = [str(error) for error in failed.values()]
    assert any("fail to schedule any pending request" in t and "kv_cache_free_gpu_memory_fraction" in t
               for t in texts), texts
    assert str(later.of("fail")[100]).startswith("the TensorRT-LLM engine is dead: fail to schedule")


def test_an_llm_argument_pydantic_refuses_is_named_with_its_field_and_reason(fake_trtllm: ModuleType,
                                                                             tokenizer_path: str) -> None:
    config = make_config(tokenizer_path, backend={"llm_args": {"max_num_tokens": 8.5}})
    with pytest.raises(BackendError) as caught:
        start(trtllm(config))
    message = str(caught.value)
    assert "1 validation error for TorchLlmArgs; max_num_tokens; Input should be a valid integer" in message, message


def test_without_max_batch_size_the_llm_apis_default_is_reported(fake_trtllm: ModuleType, tokenizer_path: str) -> None:
    backend = trtllm(make_config(tokenizer_path))
    info = start(backend)
    backend.stop()
    assert info.max_batch_size == 2048 and "max_batch_size" not in fake_trtllm.STATE.llms[0].kwargs
