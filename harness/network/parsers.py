"""Parse nccl-tests (all_reduce_perf ...) and perftest (ib_write_bw ...) text output into numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import InputError

_AVG_BUSBW = re.compile(r"#\s*Avg bus bandwidth\s*:\s*([0-9.]+)")
_PERFTEST_HEADER = re.compile(r"#bytes\s+#iterations\s+BW peak\[(MB|Gb)/sec\]\s+BW average\[(MB|Gb)/sec\]")
MEBIBYTE = 1 << 20  # perftest's "MB" is 2^20 bytes


@dataclass(frozen=True)
class NcclTestsRow:
    """One message size of an nccl-tests run (out-of-place and in-place bus bandwidth in GB/s)."""

    size_bytes: int
    time_us: float
    algbw_gbyte_s: float
    busbw_gbyte_s: float
    inplace_busbw_gbyte_s: float
    wrong: int | None


@dataclass(frozen=True)
class NcclTestsResult:
    """All rows, nccl-tests' own average, and the peak bus bandwidth."""

    rows: tuple[NcclTestsRow, ...]
    avg_busbw_gbyte_s: float | None

    @property
    def peak_busbw_gbyte_s(self) -> float:
        """Best bus bandwidth over sizes and in/out-of-place."""
        return max(max(r.busbw_gbyte_s, r.inplace_busbw_gbyte_s) for r in self.rows)

    @property
    def wrong(self) -> int:
        """Sum of #wrong over all rows (data validation errors)."""
        return sum(r.wrong or 0 for r in self.rows)


def _wrong(text: str) -> int | None:
    return None if text == "N/A" else int(text)


def parse_nccl_tests(text: str, source: str = "nccl-tests output") -> NcclTestsResult:
    """Rows start with the size in bytes; the last eight columns are time/algbw/busbw/#wrong twice."""
    rows = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 10 or not words[0].isdigit():
            continue
        try:
            out_place, in_place = words[-8:-4], words[-4:]
            rows.append(NcclTestsRow(int(words[0]), float(out_place[0]), float(out_place[1]), float(out_place[2]),
                                     float(in_place[2]), _wrong(out_place[3])))
        except ValueError:
            raise InputError(f"{source}: unreadable result row {line.strip()!r}",
                             hint="pass the unmodified stdout of all_reduce_perf") from None
    if not rows:
        raise InputError(f"{source}: no result rows (lines starting with a byte size)",
                         hint="pass the stdout of an nccl-tests binary such as all_reduce_perf")
    average = _AVG_BUSBW.search(text)
    return NcclTestsResult(tuple(rows), float(average.group(1)) if average else None)


@dataclass(frozen=True)
class PerftestRow:
    """One message size of a perftest bandwidth run, in Gb/s (10^9 bits)."""

    size_bytes: int
    iterations: int
    peak_gbit_s: float
    average_gbit_s: float


def _to_gbit(value: float, unit: str) -> float:
    return value if unit == "Gb" else value * MEBIBYTE * 8 / 1e9


def parse_perftest(text: str, source: str = "perftest output") -> tuple[PerftestRow, ...]:
    """ib_write_bw/ib_read_bw/ib_send_bw result rows, with MB/sec (2^20 bytes) converted to Gb/s."""
    header = _PERFTEST_HEADER.search(text)
    if header is None:
        raise InputError(f"{source}: no '#bytes #iterations BW peak[...] BW average[...]' header",
                         hint="pass the stdout of the client side of ib_write_bw")
    unit = header.group(2)
    rows = []
    for line in text[header.end():].splitlines():
        words = line.split()
        if len(words) >= 4 and words[0].isdigit() and words[1].isdigit():
            rows.append(PerftestRow(int(words[0]), int(words[1]), _to_gbit(float(words[2]), header.group(1)),
                                    _to_gbit(float(words[3]), unit)))
    if not rows:
        raise InputError(f"{source}: the header has no result rows under it",
                         hint="the test may have failed; read its full output")
    return tuple(rows)


def bus_bandwidth(size_bytes: int, seconds: float, ranks: int) -> tuple[float, float]:
    """All-reduce (algbw, busbw) in GB/s as nccl-tests computes them: busbw = algbw * 2(n-1)/n."""
    if seconds <= 0 or ranks < 1:
        raise InputError(f"all-reduce timing needs seconds > 0 and ranks >= 1 (got {seconds}, {ranks})")
    algbw = size_bytes / seconds / 1e9
    return algbw, algbw * 2 * (ranks - 1) / ranks
