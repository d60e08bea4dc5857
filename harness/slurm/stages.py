"""Stage registry: a stage name -> a builder (RunConfig, StageOptions) -> StageCommand that a job script runs.

The built-in stages are composed here explicitly: smoke (harness.slurm.smoke: the in-image check of the
entry points, PMIx, UCX and fabric variables of the other stages), preflight, run, accuracy, compliance, their serve*
variants (servers per replica + the harness as their HTTP client, harness.slurm.serve), and the
TensorRT-LLM preparation stages (quantize, convert, build) from harness.slurm.trtllm, which also puts
trtllm-llmapi-launch in front of a run that serves one TP x PP model. Nothing registers itself at import.
`register()` adds a stage at run time (harness pipeline registers its jobs); rendering, submission and
pipelines then treat it like the built-in stages.
"""

from __future__ import annotations

from harness.config import RunConfig
from harness.errors import ConfigError
from harness.slurm import serve, smoke, trtllm
from harness.slurm.commands import JOB_ID, StageBuilder, StageCommand, StageOptions, TasksLayout

__all__ = ["JOB_ID", "StageBuilder", "StageCommand", "StageOptions", "TasksLayout", "build_stage", "builder",
           "register", "stage_names"]

_REGISTRY: dict[str, StageBuilder] = {}


def register(name: str, builder: StageBuilder, *, replace: bool = False) -> None:
    """Make a stage available to `harness slurm render|submit|pipeline`."""
    if not name.isidentifier():
        raise ConfigError(f"stage name {name!r} is not an identifier", hint="use e.g. 'quantize' or 'build'")
    if name in _REGISTRY and not replace:
        raise ConfigError(f"stage {name!r} is already registered", hint="pass replace=True to override it")
    _REGISTRY[name] = builder


def builder(name: str) -> StageBuilder:
    """The builder registered under name (to wrap it, e.g. with a launcher), or ConfigError."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown Slurm stage {name!r}; registered stages: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def stage_names() -> list[str]:
    """The registered stage names, in registration order."""
    return list(_REGISTRY)


def build_stage(name: str, config: RunConfig, options: StageOptions) -> StageCommand:
    """The StageCommand of a registered stage for this config."""
    builder = _REGISTRY.get(name)
    if builder is None:
        raise ConfigError(f"unknown Slurm stage {name!r}; registered stages: {', '.join(_REGISTRY)}",
                          hint="pick one of the registered stages")
    return builder(config, options)


def _replica_layout(config: RunConfig) -> TasksLayout:
    slurm = config.slurm
    return TasksLayout(slurm.nodes, slurm.ntasks_per_node, slurm.gpus_per_node, mpi=True)


def _run_dir(config: RunConfig, options: StageOptions, label: str) -> str:
    """The run directory; inside a container a relative one is made absolute under container_workdir (a
    relative path would land in the container's own file system and be lost with it)."""
    path = options.run_dir or config.output_dir or f"runs/{label}-{JOB_ID}"
    slurm = config.slurm
    if slurm.uses_container and not path.startswith("/") and slurm.container_workdir:
        path = f"{slurm.container_workdir.rstrip('/')}/{path}"
    return path


def _data_paths(config: RunConfig) -> tuple[tuple[str, str | None], ...]:
    return (("model.path", config.model.path), ("model.tokenizer", config.model.tokenizer),
            ("dataset.path", config.dataset.path))


def _harness_run_dir(config: RunConfig, options: StageOptions, mode: str | None) -> tuple[str, tuple[str, ...]]:
    run_dir = _run_dir(config, options, mode or config.mode.value)
    argv: tuple[str, ...] = (config.slurm.python, "-m", "harness", "run", "--config", options.config_path)
    argv += ("--mode", mode) if mode else ()
    return run_dir, (*argv, "--output-dir", run_dir)


def compliance_test(config: RunConfig) -> str:
    """The audit test a compliance stage runs: the config's compliance_test, else the benchmark's first one (Llama:
    TEST06; gpt-oss-120b: TEST07; render the stage again with `--set compliance_test=TEST09` for the other)."""
    tests = config.facts.compliance_tests
    test = config.compliance_test or tests[0]
    if test not in tests:
        raise ConfigError(f"compliance_test is {test} but {config.benchmark} has {', '.join(tests)}",
                          hint=f"set compliance_test to one of {', '.join(tests)}")
    return test


def _compliance_run_dir(config: RunConfig, options: StageOptions) -> tuple[str, tuple[str, ...]]:
    test = compliance_test(config)
    run_dir = _run_dir(config, options, test)
    return run_dir, (config.slurm.python, "-m", "compliance", "run", test, "--config", options.config_path,
                     "--output-dir", run_dir)


def _run_like(config: RunConfig, run_dir: str, argv: tuple[str, ...], description: str) -> StageCommand:
    return StageCommand(trtllm.launcher_argv(config, argv), description, config.slurm.gpus_per_node > 0,
                        _replica_layout(config), run_dir=run_dir, paths=_data_paths(config))


def _run_stage(config: RunConfig, options: StageOptions) -> StageCommand:
    return _run_like(config, *_harness_run_dir(config, options, None),
                     f"LoadGen {config.scenario.value} {config.mode.value} run, {config.backend.kind} backend")


def _accuracy_stage(config: RunConfig, options: StageOptions) -> StageCommand:
    return _run_like(config, *_harness_run_dir(config, options, "accuracy"),
                     f"LoadGen {config.scenario.value} accuracy run + ROUGE, {config.backend.kind} backend")


def _compliance_stage(config: RunConfig, options: StageOptions) -> StageCommand:
    return _run_like(config, *_compliance_run_dir(config, options),
                     f"{compliance_test(config)} compliance run + verification, {config.backend.kind} backend")


def _preflight_stage(config: RunConfig, options: StageOptions) -> StageCommand:
    report = options.run_dir or f"preflight-{JOB_ID}.json"
    argv = (config.slurm.python, "-m", "harness", "preflight", "--config", options.config_path, "--json", report)
    return StageCommand(argv, "network preflight: inventory, MPI all-pairs, NCCL busbw, RDMA ports",
                        config.slurm.gpus_per_node > 0, _replica_layout(config))


def _smoke_targets(config: RunConfig, options: StageOptions) -> list[StageCommand]:
    """The stages whose entry points the smoke stage checks: options.extra['stages'] (a pipeline's, comma
    separated), else every registered stage that this config can render."""
    folder = options.config_path.rsplit("/", 1)[0] if "/" in options.config_path else "."
    listed = [n for n in options.extra.get("stages", "").split(",") if n and n != smoke.SMOKE]
    commands = []
    for name in listed or [n for n in _REGISTRY if n not in (smoke.SMOKE, "preflight")]:
        try:
            commands.append(build_stage(name, config, StageOptions(config_path=f"{folder}/{name}.config.yaml")))
        except ConfigError:
            if listed:
                raise
    return commands


register("preflight", _preflight_stage)
register("run", _run_stage)
register("accuracy", _accuracy_stage)
register("compliance", _compliance_stage)
register("serve", serve.serve_builder(lambda c, o: _harness_run_dir(c, o, None), "LoadGen run"))
register("serve_accuracy", serve.serve_builder(lambda c, o: _harness_run_dir(c, o, "accuracy"),
                                               "LoadGen accuracy run + ROUGE"))
register("serve_compliance", serve.serve_builder(_compliance_run_dir, "compliance run + verification"))
for _name, _build in trtllm.preparation_builders().items():
    register(_name, _build)
register(smoke.SMOKE, smoke.smoke_builder(_smoke_targets))
