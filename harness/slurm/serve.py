"""serve* stages: one serving-engine step per replica (trtllm-serve or vLLM), then the harness once as their client.

Layouts come from the GPUs one server spans (TP x PP for trtllm-serve, slurm.servers.tensor_parallel_size for
vLLM) and slurm.gpus_per_node: a server of G >= node GPUs spans G / node-GPUs whole nodes (TP8 x PP2 on
2 x 8 GPUs: one server, 16 ranks); smaller servers pack node-GPUs / G to a node (eight TP1 servers on one
node). Server i listens on slurm.servers.port + i. The client is the configured run with backend.kind
endpoint: its URLs are the servers' nodes and ports, found from the allocation when the job runs.

Cross-query prefix caching is prohibited in the closed division (mlcommons/inference #2445) and on by default in
vLLM and TensorRT-LLM, so the servers start with it off unless the config says otherwise: vLLM gets
`--no-enable-prefix-caching` unless slurm.servers.args has `--enable-prefix-caching`; trtllm-serve's YAML holds
`kv_cache_config.enable_block_reuse: false` unless backend.enable_block_reuse (or backend.llm_args) turns it on.
The client config records the rendered setting as backend.server_prefix_caching.

Streamed tokens per event (the first token always travels alone, so TTFT is not delayed): vLLM servers get
`--stream-interval N` from backend.server_stream_interval (vLLM 0.32.0 `vllm/engine/arg_utils.py`, SchedulerConfig
stream_interval, default 1), or keep the one slurm.servers.args gives (both at once are refused); trtllm-serve has no
such flag (TensorRT-LLM 1.2.1 `tensorrt_llm/commands/serve.py`): `stream_interval` is a PyTorch-backend LLM argument
(TorchLlmArgs), so it goes into the --extra_llm_api_options YAML from backend.llm_args.stream_interval. The client
config records the rendered value as backend.server_stream_interval (null where the start leaves the server default).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.backends.endpoint.options import EndpointOptions
from harness.backends.trtllm.options import TrtllmOptions
from harness.backends.trtllm.serving import block_reuse, llm_api_yaml, serve_argv
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.slurm.commands import ServerStep, StageBuilder, StageCommand, StageOptions, TasksLayout

__all__ = ["PLACEHOLDER_HOST", "client_config", "serve_builder", "server_steps"]

PLACEHOLDER_HOST = "server-url-set-by-the-job.invalid"  # RFC 2606: never resolves; the job passes the real URLs
VLLM_CACHING_ON, VLLM_CACHING_OFF = "--enable-prefix-caching", "--no-enable-prefix-caching"  # vLLM's boolean flag
VLLM_STREAM_INTERVAL = "--stream-interval"  # vLLM's SchedulerConfig.stream_interval (tokens per streamed output)
ClientArgv = Callable[[RunConfig, StageOptions], tuple[str, tuple[str, ...]]]  # -> (run dir, argv)


def _engine(config: RunConfig) -> tuple[str, int]:
    """(flavour, GPUs per server) for the config's backend; other backends cannot be served."""
    backend = config.backend
    if isinstance(backend, TrtllmOptions):
        return "trtllm-serve", backend.gpus_per_replica
    if isinstance(backend, EndpointOptions) and backend.flavour == "vllm":
        return "vllm", config.slurm.servers.tensor_parallel_size
    raise ConfigError(f"serve stages start trtllm-serve (backend.kind trtllm) or vLLM (backend.kind endpoint, "
                      f"flavour vllm) servers; the config has backend.kind {backend.kind!r}",
                      hint="set backend.kind: trtllm, or backend.kind: endpoint with backend.flavour: vllm")


def _model(config: RunConfig) -> str:
    if config.model.path is None:
        raise ConfigError("serve stages need model.path (the checkpoint or engine the servers load)",
                          hint="set model.path to a directory on a mounted shared filesystem")
    return config.model.path


def _server_argv(config: RunConfig, flavour: str, port: int, options_file: str) -> list[str]:
    servers = config.slurm.servers
    model = _model(config)
    if flavour == "trtllm-serve":
        assert isinstance(config.backend, TrtllmOptions)
        beams = config.generation.num_beams
        return serve_argv(config.backend, model, config.model.tokenizer, servers.bind_host, port, options_file,
                          beams, servers.args)
    # vllm/entrypoints/openai/cli_args.py: --model, --host, --port, --tensor-parallel-size (engine args)
    argv = ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", servers.bind_host,
            "--port", str(port), "--tensor-parallel-size", str(servers.tensor_parallel_size)]
    if config.model.tokenizer:
        argv += ["--tokenizer", config.model.tokenizer]
    if not _vllm_caching(config):
        argv.append(VLLM_CACHING_OFF)
    if isinstance(config.backend, EndpointOptions) and config.backend.server_stream_interval is not None:
        argv += [VLLM_STREAM_INTERVAL, str(config.backend.server_stream_interval)]
    return [*argv, *servers.args]


def _args_stream_interval(args: tuple[str, ...]) -> int | None:
    """The --stream-interval that slurm.servers.args gives vLLM (`--stream-interval N` or `--stream-interval=N`)."""
    found: str | None = None
    for index, arg in enumerate(args):
        if arg == VLLM_STREAM_INTERVAL:
            found = args[index + 1] if index + 1 < len(args) else ""
        elif arg.startswith(VLLM_STREAM_INTERVAL + "="):
            found = arg.partition("=")[2]
    if found is None:
        return None
    if not found.isdigit() or int(found) < 1:
        raise ConfigError(f"slurm.servers.args gives vLLM {VLLM_STREAM_INTERVAL} {found!r}; expected a whole number "
                          "of tokens >= 1", hint="set backend.server_stream_interval: N instead (and remove it "
                                                 "from slurm.servers.args)")
    return int(found)


def _stream_interval(config: RunConfig) -> int | None:
    """The rendered servers' tokens per streamed event: vLLM's --stream-interval, trtllm-serve's stream_interval
    LLM argument; None where the start leaves the server's default."""
    backend = config.backend
    if isinstance(backend, TrtllmOptions):
        value = backend.llm_args.get("stream_interval")
        if value is None:
            return None
        if backend.backend != "pytorch":
            raise ConfigError(f"backend.llm_args.stream_interval is set, but backend.backend is {backend.backend!r}: "
                              "TensorRT-LLM takes stream_interval for the PyTorch backend only (TorchLlmArgs)",
                              hint="use backend.backend: pytorch, or remove backend.llm_args.stream_interval")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"backend.llm_args.stream_interval is {value!r}; expected a whole number of tokens >= 1",
                              hint="set backend.llm_args.stream_interval: N (tokens per streamed event), or remove it")
        return value
    given = _args_stream_interval(config.slurm.servers.args)
    option = backend.server_stream_interval if isinstance(backend, EndpointOptions) else None
    if option is not None and given is not None:
        raise ConfigError(f"the vLLM servers' stream interval is given twice: backend.server_stream_interval {option} "
                          f"and slurm.servers.args {VLLM_STREAM_INTERVAL} {given}",
                          hint=f"keep backend.server_stream_interval and remove {VLLM_STREAM_INTERVAL} from "
                               "slurm.servers.args")
    return option if option is not None else given


def _vllm_caching(config: RunConfig) -> bool:
    """Whether the vLLM servers cache prefixes across queries: only when slurm.servers.args turns it on."""
    args = config.slurm.servers.args
    return VLLM_CACHING_ON in args and VLLM_CACHING_OFF not in args


def _prefix_caching(config: RunConfig, flavour: str) -> str:
    """The rendered servers' cross-query prefix caching, on or off."""
    if isinstance(config.backend, TrtllmOptions):
        on = block_reuse(config.backend, config.generation.num_beams)
    else:
        on = flavour == "vllm" and _vllm_caching(config)
    return "on" if on else "off"


def server_steps(config: RunConfig, options_file: str) -> tuple[ServerStep, ...]:
    """The server steps of the layout, or ConfigError naming the nodes the layout needs."""
    flavour, gpus = _engine(config)
    _stream_interval(config)  # refuses a contradictory or invalid stream interval before anything is rendered
    slurm = config.slurm
    count = slurm.servers.count or config.distributed.replicas
    node_gpus = slurm.gpus_per_node
    if node_gpus == 0:
        raise ConfigError("serve stages need slurm.gpus_per_node (the layout packs servers onto nodes by GPU count)",
                          hint="set slurm.gpus_per_node, e.g. 8 (and slurm.request_gpus: false for a CPU dry run)")
    if gpus >= node_gpus:
        if gpus % node_gpus:
            raise ConfigError(f"a server spans {gpus} GPUs, not a whole number of {node_gpus}-GPU nodes",
                              hint="pick TP x PP as a multiple of slurm.gpus_per_node, or smaller than it")
        span, per_node = gpus // node_gpus, 1
        needed = count * span
    else:
        if node_gpus % gpus:
            raise ConfigError(f"{node_gpus} GPUs per node do not split into {gpus}-GPU servers",
                              hint="pick a server size that divides slurm.gpus_per_node")
        span, per_node = 1, node_gpus // gpus
        needed = -(-count // per_node)
    if needed != slurm.nodes:
        raise ConfigError(f"{count} server(s) of {gpus} GPU(s) on {node_gpus}-GPU nodes need {needed} node(s), but "
                          f"slurm.nodes is {slurm.nodes}", hint=f"set slurm.nodes: {needed}, or change the count")
    request = slurm.request_gpus
    steps = []
    for index in range(count):
        port = slurm.servers.port + index
        first = index * span if span > 1 else index // per_node
        tasks = gpus if flavour == "trtllm-serve" else 1  # trtllm: one rank per GPU; vLLM spawns its own workers
        steps.append(ServerStep(
            index=index, first_node=first, nodes=span, ntasks=tasks,
            gpus_per_node=(min(gpus, node_gpus) if request else 0), port=port,
            argv=tuple(_server_argv(config, flavour, port, options_file)),
            description=f"{flavour} server {index}: {gpus} GPU(s) on node(s) {first}"
                        + (f"-{first + span - 1}" if span > 1 else "") + f", port {port}",
            mpi=flavour == "trtllm-serve"))
    return tuple(steps)


def client_config(config: RunConfig, steps: tuple[ServerStep, ...]) -> RunConfig:
    """The run as an endpoint client of the servers (URLs are placeholders until the job sets them)."""
    flavour, _ = _engine(config)
    urls = tuple(f"http://{PLACEHOLDER_HOST}:{step.port}" for step in steps)
    base = config.backend.model_dump() if isinstance(config.backend, EndpointOptions) else {}
    backend = EndpointOptions.model_validate({
        **base, "kind": "endpoint", "urls": urls, "flavour": flavour, "model": _model(config),
        "ready_timeout_s": config.slurm.servers.ready_timeout_s,
        "server_prefix_caching": _prefix_caching(config, flavour),
        "server_stream_interval": _stream_interval(config)})
    return config.model_copy(update={"backend": backend, "distributed": config.distributed.model_copy(
        update={"replicas": 1})})


def serve_builder(client: ClientArgv, what: str) -> StageBuilder:
    """A serve* stage: the servers of the layout, then `client` (harness run / compliance run) once."""
    def build(config: RunConfig, options: StageOptions) -> StageCommand:
        options_file = options.config_path.removesuffix(".config.yaml") + ".llm_api.yaml"
        steps = server_steps(config, options_file)
        endpoint_config = client_config(config, steps)
        run_dir, argv = client(endpoint_config, options)
        files: tuple[tuple[str, str], ...] = ()
        if isinstance(config.backend, TrtllmOptions):
            files = ((options_file, llm_api_yaml(config.backend, config.generation.num_beams)),)
        slurm = config.slurm
        per_node = max(sum(step.tasks_per_node for step in steps if step.first_node <= node < step.first_node
                           + step.nodes) for node in range(slurm.nodes))
        layout = TasksLayout(slurm.nodes, per_node + 1, slurm.gpus_per_node, mpi=False)  # + 1: the client
        flavour = steps[0].argv[1] if steps[0].argv[0] == "trtllm-llmapi-launch" else "vLLM"
        return StageCommand(argv, f"{what} through {len(steps)} {flavour} server(s)", True, layout,
                            run_dir=run_dir, paths=(("model.path", config.model.path),
                                                    ("model.tokenizer", config.model.tokenizer)),
                            servers=steps, client_config=endpoint_config, files=files)
    return build
