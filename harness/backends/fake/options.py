"""FakeOptions: the `backend:` section of the instant test backends."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.backends.options import BackendOptions

__all__ = ["FakeOptions"]


class FakeOptions(BackendOptions):
    """Instant test backends; runs made with them are never submittable."""

    kind: Literal["fake"] = "fake"
    behaviour: Literal["echo", "fixed", "oracle"] = "fixed"
    output_tokens: int = Field(294, ge=1, description="fixed: tokens per answer, EOS included")
    delay_ms: float = Field(0.0, ge=0, description="simulated time per request")
    first_token_delay_ms: float = Field(0.0, ge=0)
    eos_token_id: int = 2
    start_delay_s: float = Field(0.0, ge=0, description="simulated model load: start() takes this long")
    stop_delay_s: float = Field(0.0, ge=0, description="simulated engine shutdown: stop() takes this long")
    max_batch_size: int = Field(1024, ge=1, description="without delays: answers reported per batch of this "
                                                         "many queued requests (one LoadGen call each)")

    @property
    def reads_model_files(self) -> bool:
        """The fake never reads a model: its answers depend on its options alone."""
        return False
