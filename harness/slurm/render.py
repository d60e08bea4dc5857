"""Render a stage into a commented, shellcheck-clean sbatch script plus the run config it came from."""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from harness.artifacts import config_text, write_text_atomic
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.redact import is_secret_name
from harness.sections.slurm import SlurmConfig
from harness.slurm.commands import ServerStep
from harness.slurm.mounts import check_visible, host_path, job_mounts
from harness.slurm.stages import JOB_ID, StageCommand, StageOptions, build_stage

SCRIPT_SUFFIX = ".sbatch"
CONFIG_SUFFIX = ".config.yaml"


class _Template(string.Template):
    delimiter = "@"  # bash owns "$"


@dataclass(frozen=True)
class RenderedJob:
    """A job script on disk and the config copy it runs."""

    stage: str
    script_path: Path
    config_path: Path
    text: str


def default_job_dir(root: Path = Path("slurm-jobs")) -> Path:
    """A fresh folder per render/submit call: slurm-jobs/<UTC time>."""
    return root / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def quote_arg(arg: str) -> str:
    """Shell-quote one argv element; ${SLURM_JOB_ID} is the only expansion allowed (inside double quotes)."""
    if JOB_ID not in arg:
        return shlex.quote(arg)
    rest = arg.replace(JOB_ID, "")
    if any(c in rest for c in '"$`\\!\n'):
        raise ConfigError(f"argument {arg!r} mixes {JOB_ID} with shell-special characters",
                          hint="use a plain path around ${SLURM_JOB_ID}")
    return f'"{arg}"'


def sbatch_lines(slurm: SlurmConfig, stage: str, command: StageCommand, log_dir: Path) -> list[str]:
    """The #SBATCH header: typed fields first, then the validated extra_args."""
    layout = command.layout
    options = [f"--job-name={slurm.job_name}-{stage}"]
    options += [f"--partition={slurm.partition}"] if slurm.partition else []
    options += [f"--account={slurm.account}"] if slurm.account else []
    options += [f"--nodes={layout.nodes}", f"--ntasks-per-node={layout.ntasks_per_node}"]
    if command.needs_gpus and layout.gpus_per_node and slurm.request_gpus:
        options.append(f"--gpus-per-node={layout.gpus_per_node}")
    options += [f"--cpus-per-task={slurm.cpus_per_task}"] if slurm.cpus_per_task else []
    options += [f"--time={slurm.time_limit}", f"--output={log_dir / stage}-%j.out"]
    options += [f"--chdir={slurm.workdir}"] if slurm.workdir else []
    options += list(slurm.extra_args)
    for option in options:
        if any(c.isspace() for c in option):
            raise ConfigError(f"sbatch option {option!r} contains whitespace, which #SBATCH cannot carry",
                              hint="render into a folder whose path has no spaces")
    return [f"#SBATCH {option}" for option in options]


def _single_quote(value: str) -> str:
    """Always quote (shlex.quote leaves '=eth0' bare, which reads as '==' after the assignment)."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def env_block(slurm: SlurmConfig) -> str:
    """export lines for the fabric environment (slurm.env), plus unbuffered Python output for the log."""
    lines = ["# Fabric environment from slurm.env in the run config."] if slurm.env else []
    for name, value in sorted(slurm.env.items()):
        if is_secret_name(name):  # never written to disk: the job takes it from the environment sbatch runs in
            lines += [f"# {name} looks secret: its value is not written here; export it before sbatch.",
                      f': "${{{name}:?{name} is not set: export it in the shell that runs sbatch}}"',
                      f"export {name}"]
        else:
            lines.append(f"export {name}={_single_quote(value)}")
    lines.append("export PYTHONUNBUFFERED=1")
    return "\n".join(lines) + "\n"


def container_flags(slurm: SlurmConfig, job_dir: str) -> list[str]:
    """Pyxis flags: image, mounts (the job folder added when no mount shows it), working directory."""
    if not slurm.container_image:
        return []
    flags = [f"--container-image={shlex.quote(slurm.container_image)}",
             f"--container-mounts={shlex.quote(','.join(job_mounts(slurm, job_dir)))}"]
    if slurm.container_workdir:
        flags.append(f"--container-workdir={shlex.quote(slurm.container_workdir)}")
    return flags


def srun_flags(slurm: SlurmConfig, command: StageCommand, job_dir: str = "/") -> list[str]:
    """srun flags: task count, MPI plugin, fail-fast, and the Pyxis container flags."""
    layout = command.layout
    flags = [f"--ntasks={layout.ntasks}", f"--mpi={slurm.mpi}" if layout.mpi else "--mpi=none",
             f"--kill-on-bad-exit={int(command.fail_fast)}"]
    return flags + container_flags(slurm, job_dir)


def _argv_text(argv: tuple[str, ...]) -> str:
    return " ".join(quote_arg(a) for a in argv)


def _requires(slurm: SlurmConfig, command: StageCommand, job_dir: str) -> str:
    checks = []
    for what, path in command.requires:
        where = quote_arg(host_path(path, slurm, job_dir))
        message = _single_quote(f"{what} {path} is missing (host path {host_path(path, slurm, job_dir)})")
        checks.append(f"if [ ! -e {where} ]; then\n  echo {message} >&2\n  exit 2\nfi\n")
    return "".join(checks)


def _launch(slurm: SlurmConfig, command: StageCommand, job_dir: str) -> str:
    parts = ["srun", *srun_flags(slurm, command, job_dir), _argv_text(command.argv)]
    line = _requires(slurm, command, job_dir) + " \\\n  ".join(parts)
    if command.run_dir is None:
        return line
    return (f"rc=0\n{line} || rc=$?\nverdict=0\ncheck_run {quote_arg(host_path(command.run_dir, slurm, job_dir))}"
            ' || verdict=$?\nexit "$(job_status "$rc" "$verdict")"')


def _launch_comment(slurm: SlurmConfig, command: StageCommand) -> str:
    where = f" inside the Pyxis container {slurm.container_image}" if slurm.container_image else ""
    if command.layout.mpi:
        loadgen = "; rank 0 runs LoadGen" if command.run_dir is not None else ""
        return (f"One task per MPI rank{where}.\n# Open MPI ranks find each other through PMIx "
                f"(srun --mpi={slurm.mpi}){loadgen}.\n"
                + ("# --kill-on-bad-exit ends every rank as soon as one fails." if command.fail_fast else
                   "# Every rank runs to its end (no --kill-on-bad-exit): each reports its own checks."))
    return f"{command.layout.ntasks} plain task(s){where}, no MPI."


def _check_run(stage: str, command: StageCommand) -> str:
    if command.run_dir is None:
        return ""
    template = _Template(resources.files("harness.slurm").joinpath("templates/check_run.sh.tmpl").read_text())
    return template.substitute(stage=stage)


def _server_launch(slurm: SlurmConfig, stage: str, step: ServerStep, job_dir: str) -> str:
    flags = [f"--nodes={step.nodes}", f"--ntasks={step.ntasks}", f"--ntasks-per-node={step.tasks_per_node}",
             f"--relative={step.first_node}", "--exact", f"--job-name={stage}-server{step.index}",
             f"--mpi={slurm.mpi}" if step.mpi else "--mpi=none", "--kill-on-bad-exit=1"]
    flags += [f"--gpus-per-node={step.gpus_per_node}"] if step.gpus_per_node else []
    flags += [f"--output={job_dir}/{stage}-%j-server{step.index}.out", *container_flags(slurm, job_dir)]
    line = " \\\n  ".join(["srun", *flags, _argv_text(step.argv) + " &"])
    return f"# {step.description}\n{line}\nSERVER_PIDS+=(\"$!\")"


_ADDRESS_RULES = {
    "hostname": '  echo "$node"',
    "nodeaddr": '  scontrol show node "$node" | tr \' \' \'\\n\' | sed -n \'s/^NodeAddr=//p\'',
}


def _serve_text(stage: str, config: RunConfig, command: StageCommand, job_dir: Path, source: str | None) -> str:
    slurm, folder = config.slurm, str(job_dir)
    assert command.run_dir is not None
    urls = ",".join(f"http://$(node_address {step.first_node}):{step.port}" for step in command.servers)
    client_flags = ["--nodes=1", "--ntasks=1", "--relative=0", "--exact", f"--job-name={stage}-client", "--mpi=none",
                    "--kill-on-bad-exit=1", *container_flags(slurm, folder)]
    urls_arg = ' --set "backend.urls=[${SERVER_URLS}]"'  # the one argument built when the job runs
    client = " \\\n  ".join(["srun", *client_flags, _argv_text(command.argv) + urls_arg])
    template = _Template(resources.files("harness.slurm").joinpath("templates/serve.sh.tmpl").read_text())
    return template.substitute(
        stage=stage, description=" ".join(command.description.split()), config_path=job_dir / f"{stage}{CONFIG_SUFFIX}",
        source_note=f", written from {source}" if source else "",
        rendered_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), script_path=job_dir / f"{stage}{SCRIPT_SUFFIX}",
        sbatch_lines="\n".join(sbatch_lines(slurm, stage, command, job_dir)), env_block=env_block(slurm),
        server_count=len(command.servers), address=slurm.servers.address,
        address_rule=_ADDRESS_RULES[slurm.servers.address], stop_timeout_s=int(slurm.servers.stop_timeout_s),
        check_run=_check_run(stage, command),
        servers="\n\n".join(_server_launch(slurm, stage, step, folder) for step in command.servers),
        urls=urls, ready_timeout_s=int(slurm.servers.ready_timeout_s), client=client,
        server_log=f"{folder}/{stage}-${{SLURM_JOB_ID}}-server$i.out",
        run_dir=quote_arg(host_path(command.run_dir, slurm, folder)))


def _command(stage: str, config: RunConfig, job_dir: Path, extra: Mapping[str, str] | None = None) -> StageCommand:
    """Build the stage and refuse it when its container would not see a path it uses."""
    config_path = job_dir / f"{stage}{CONFIG_SUFFIX}"
    command = build_stage(stage, config, StageOptions(config_path=str(config_path), extra=dict(extra or {})))
    paths = [("the config copy", str(config_path)), ("the run directory", command.run_dir), *command.paths]
    check_visible(paths, config.slurm, str(job_dir))
    return command


def render_text(stage: str, config: RunConfig, job_dir: Path, source: str | None = None,
                extra: Mapping[str, str] | None = None) -> str:
    """The script text for a stage; job_dir is where the script, its config copy and the logs live."""
    job_dir = job_dir.resolve()
    return _render(stage, config, _command(stage, config, job_dir, extra), job_dir, source)


def _render(stage: str, config: RunConfig, command: StageCommand, job_dir: Path, source: str | None) -> str:
    if command.servers:
        return _serve_text(stage, config, command, job_dir, source)
    template = _Template(resources.files("harness.slurm").joinpath("templates/sbatch.sh.tmpl").read_text())
    return template.substitute(
        stage=stage, description=" ".join(command.description.split()), config_path=job_dir / f"{stage}{CONFIG_SUFFIX}",
        source_note=f", written from {source}" if source else "",
        rendered_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        script_path=job_dir / f"{stage}{SCRIPT_SUFFIX}",
        sbatch_lines="\n".join(sbatch_lines(config.slurm, stage, command, job_dir)),
        env_block=env_block(config.slurm), ntasks=command.layout.ntasks, check_run=_check_run(stage, command),
        launch_comment=_launch_comment(config.slurm, command), launch=_launch(config.slurm, command, str(job_dir)))


def render_job(stage: str, config: RunConfig, job_dir: Path, source: str | None = None,
               overwrite: bool = False, extra: Mapping[str, str] | None = None) -> RenderedJob:
    """Write <job_dir>/<stage>.sbatch and <job_dir>/<stage>.config.yaml (+ the stage's files); refuse to replace
    them unasked. The config copy is the client's for serve* stages (backend.kind endpoint). extra reaches the
    stage builder (StageOptions.extra; e.g. the smoke stage's 'stages')."""
    job_dir = job_dir.resolve()
    command = _command(stage, config, job_dir, extra)
    text = _render(stage, config, command, job_dir, source)
    script, config_copy = job_dir / f"{stage}{SCRIPT_SUFFIX}", job_dir / f"{stage}{CONFIG_SUFFIX}"
    extra = [(Path(name), body) for name, body in command.files]
    for path in (script, config_copy, *(p for p, _ in extra)):
        if path.exists() and not overwrite:
            raise ConfigError(f"{path} already exists", hint="pass --overwrite or choose another --job-dir")
    job_dir.mkdir(parents=True, exist_ok=True)
    copy = command.client_config or config
    write_text_atomic(config_copy, config_text(copy.model_dump(mode="json")))  # secret-looking values redacted
    for path, body in extra:
        write_text_atomic(path, body)
    write_text_atomic(script, text)
    script.chmod(0o755)
    return RenderedJob(stage, script, config_copy, text)
