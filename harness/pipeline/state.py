"""The pipeline state file: per stage, its fingerprint, status and result, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.artifacts import utc_now, write_json_atomic
from harness.errors import InputError

STATE_FILE = "pipeline-state.json"
StageStatus = Literal["running", "completed", "failed", "interrupted"]


class StageRecord(BaseModel):
    """What the pipeline knows about one stage's last attempt."""

    model_config = ConfigDict(extra="forbid")

    status: StageStatus
    fingerprint: str
    inputs: dict[str, str] = Field(default_factory=dict)
    verdict: Literal["pass", "fail"] | None = None
    result: str | None = Field(None, description="token that changes whenever the stage's output changes")
    output: str | None = None
    command: list[str] = Field(default_factory=list)
    exit_code: int | None = None
    reason: str | None = None
    started_at: str = ""
    ended_at: str | None = None


class PipelineState(BaseModel):
    """pipeline-state.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    hash_memo: dict[str, list[Any]] = Field(default_factory=dict)


class StateFile:
    """Loads the state once and saves it atomically after every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = self._load()

    def _load(self) -> PipelineState:
        if not self.path.is_file():
            return PipelineState()
        try:
            return PipelineState.model_validate_json(self.path.read_text())
        except ValueError as err:
            raise InputError(f"{self.path} is not a valid pipeline state file: {str(err).splitlines()[0]}",
                             hint="move it away; the pipeline then re-runs every stage") from None

    def record(self, stage_id: str) -> StageRecord | None:
        """The last attempt of a stage, if any."""
        return self.state.stages.get(stage_id)

    def start(self, stage_id: str, fingerprint: str, inputs: dict[str, str], command: list[str],
              output: str | None) -> None:
        """Mark a stage running (before its process starts)."""
        self.state.stages[stage_id] = StageRecord(status="running", fingerprint=fingerprint, inputs=inputs, result=None,
                                                  command=command, output=output, started_at=utc_now())
        self.save()

    def finish(self, stage_id: str, status: StageStatus, **fields: Any) -> StageRecord:
        """Record how a stage ended."""
        record = self.state.stages[stage_id].model_copy(update={"status": status, "ended_at": utc_now(), **fields})
        self.state.stages[stage_id] = record
        self.save()
        return record

    def save(self) -> None:
        """Write the state atomically."""
        write_json_atomic(self.path, self.state.model_dump(mode="json"))
