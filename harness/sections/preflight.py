"""PreflightConfig: thresholds that make `harness preflight` fail, and the counter-capture switch (pure pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PreflightConfig(BaseModel):
    """Limits the fabric must meet; a null limit is reported but never fails the preflight."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # rates and limits are finite

    max_mpi_latency_us: float | None = Field(None, gt=0, description="fail above this MPI half round trip (us)")
    min_mpi_bandwidth_gbit_s: float | None = Field(None, gt=0, description="fail below this MPI pair Gb/s")
    min_nccl_busbw_gbyte_s: float | None = Field(
        None, gt=0, description="fail below this NCCL all-reduce bus bandwidth, GB/s as nccl-tests prints it")
    min_ib_write_bw_gbit_s: float | None = Field(None, gt=0, description="fail below this ib_write_bw average Gb/s")
    require_rdma: bool = Field(False, description="fail when no RDMA device with an ACTIVE port exists")
    roce_version: Literal["RoCE v2", "RoCE v1", "IB", "any"] = Field(
        "RoCE v2", description="GID type a RoCE port must offer (when RDMA devices exist)")
    mpi_message_bytes: int = Field(4 << 20, ge=1, description="message size of the MPI bandwidth probe")
    mpi_iterations: int = Field(20, ge=1, description="ping-pong round trips per rank pair")
    nccl_bytes: int = Field(64 << 20, ge=1024, description="all-reduce size of the NCCL probe")
    capture_counters: bool = Field(True, description="snapshot RDMA/NIC counters before and after each run")
