"""BackendOptions: the base of every engine's own options model, with its replica and dispatch rules."""

from __future__ import annotations

from typing import Self

from harness.settings import ModelConfig, Section

__all__ = ["BackendOptions"]


class BackendOptions(Section):
    """An engine's `backend:` section. Each engine subclasses it with `kind: Literal["<engine>"]`.

    The distributed layer asks the options, never the engine's name, how replicas differ and how requests
    are handed to them.
    """

    kind: str

    def for_replica(self, index: int) -> Self:
        """The options of data-parallel replica `index` (default: the same for every replica)."""
        return self

    def dispatch_chunk(self, offline: bool) -> int:
        """How many consecutive requests the dispatcher gives one replica at a time (default 1)."""
        return 1

    @property
    def reads_model_files(self) -> bool:
        """Whether the engine's tokens depend on the model files (the output cache keys on them; default True)."""
        return True

    @property
    def loads_model_files(self) -> bool:
        """Whether the run's own processes load config.model's files (their sha256 is then recorded in the
        manifest); a remote server's files are not ours to hash (default: reads_model_files)."""
        return self.reads_model_files

    def deviations(self) -> list[str]:
        """Open-division deviations from the reference that these options cause (recorded in the manifest
        and the packaged measurements README); default none."""
        return []

    def reads_checkpoint_directory(self) -> bool:
        """True when the engine loads only HF checkpoint directories: the composition point then hands it a
        converted checkpoint for a GGUF model (the embedded default included). Default False."""
        return False

    def model_problem(self, model: ModelConfig) -> str | None:
        """Why this engine cannot serve `model` (checked when the config is validated); None when it can."""
        return None
