"""Container paths of a Pyxis job: the mounts a job gets (the job folder added), and the check that each path is seen.

A path a job uses inside the container (the config copy, the run directory, model, tokenizer, dataset,
calibration file, engine) is only there when it lies under the destination of a `slurm.container_mounts`
entry; a relative path is relative to `slurm.container_workdir` (Pyxis' --container-workdir), not to the
host's working directory. Without a container the host paths are used as they are and nothing is checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from harness.errors import ConfigError
from harness.sections.slurm import SlurmConfig

__all__ = ["Mount", "check_visible", "container_path", "host_path", "job_mounts"]


@dataclass(frozen=True)
class Mount:
    """One SRC:DST[:FLAGS] entry."""

    source: PurePosixPath
    destination: PurePosixPath
    flags: str = ""

    @classmethod
    def parse(cls, text: str) -> Mount:
        """'SRC:DST[:FLAGS]' (already validated by SlurmConfig)."""
        parts = text.split(":")
        return cls(PurePosixPath(parts[0]), PurePosixPath(parts[1]), parts[2] if len(parts) > 2 else "")

    def text(self) -> str:
        """Back to SRC:DST[:FLAGS]."""
        return f"{self.source}:{self.destination}" + (f":{self.flags}" if self.flags else "")


def _under(path: PurePosixPath, root: PurePosixPath) -> bool:
    return path == root or root in path.parents


def job_mounts(slurm: SlurmConfig, job_dir: str) -> tuple[str, ...]:
    """slurm.container_mounts plus JOB_DIR:JOB_DIR when no mount shows the job folder under its own name.

    The script passes the config copy by its host path, so the job folder must be visible at the same path.
    """
    mounts = [Mount.parse(m) for m in slurm.container_mounts]
    folder = PurePosixPath(job_dir)
    for mount in mounts:
        if _under(folder, mount.source) and mount.source == mount.destination:
            return slurm.container_mounts
    return (*slurm.container_mounts, f"{folder}:{folder}")


def container_path(path: str, slurm: SlurmConfig, what: str) -> PurePosixPath:
    """The absolute path the container sees for a config path (relative ones are under container_workdir)."""
    pure = PurePosixPath(path)
    if pure.is_absolute():
        return pure
    if slurm.container_workdir is None:
        raise ConfigError(f"{what} {path!r} is relative, but inside the container it would be relative to the image's "
                          "working directory, which this job does not set",
                          hint="use an absolute path on a mounted shared filesystem, or set slurm.container_workdir")
    return PurePosixPath(slurm.container_workdir) / pure


def check_visible(paths: Iterable[tuple[str, str | None]], slurm: SlurmConfig, job_dir: str) -> None:
    """Refuse a job whose container would not see one of its paths; (what, path) pairs, None paths skipped."""
    if not slurm.uses_container:
        return
    mounts = [Mount.parse(m) for m in job_mounts(slurm, job_dir)]
    destinations = ", ".join(str(m.destination) for m in mounts)
    for what, path in paths:
        if path is None:
            continue
        inside = container_path(path, slurm, what)
        if not any(_under(inside, m.destination) for m in mounts):
            raise ConfigError(
                f"{what} {inside} is not under any container mount (destinations: {destinations}); the container "
                "would not see it, and what it writes there would be lost with the container",
                hint=f"add a slurm.container_mounts entry whose destination holds it, e.g. "
                     f"'{inside.parents[-2] if len(inside.parents) > 1 else inside}:"
                     f"{inside.parents[-2] if len(inside.parents) > 1 else inside}'")


def host_path(path: str, slurm: SlurmConfig, job_dir: str) -> str:
    """Where a path the container writes lies on the host (for the job's own checks after the step)."""
    if not slurm.uses_container:
        return path
    inside = container_path(path, slurm, "path")
    best: Mount | None = None
    for mount in (Mount.parse(m) for m in job_mounts(slurm, job_dir)):
        if _under(inside, mount.destination) and (best is None or len(mount.destination.parts) > len(
                best.destination.parts)):
            best = mount
    if best is None:
        raise ConfigError(f"{inside} is not under any container mount", hint="add a slurm.container_mounts entry")
    return str(best.source / inside.relative_to(best.destination))
