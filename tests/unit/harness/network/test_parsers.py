"""nccl-tests and perftest output parsing (fixtures follow their documented formats), and the busbw formula."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from harness.network.parsers import NcclTestsRow, bus_bandwidth, parse_nccl_tests, parse_perftest

DATA = Path(__file__).resolve().parents[3] / "data" / "network"


def test_all_reduce_perf_rows_average_and_peak() -> None:
    result = parse_nccl_tests((DATA / "all_reduce_perf.txt").read_text())
    assert len(result.rows) == 5
    assert result.rows[-1] == NcclTestsRow(134217728, 3401.2, 39.46, 59.19, 59.24, 0)
    assert (result.avg_busbw_gbyte_s, result.peak_busbw_gbyte_s, result.wrong) == (24.9834, 59.24, 0)


def test_wrong_results_are_summed_and_na_is_tolerated() -> None:
    text = ("  1024  256  float  sum  -1  33.1  0.03  0.05  2  32.9  0.03  0.05  1\n"
            "  2048  512  float  sum  -1  34.0  0.06  0.09  N/A  33.0  0.06  0.09  N/A\n")
    result = parse_nccl_tests(text)
    assert (result.wrong, result.avg_busbw_gbyte_s) == (2, None)


@pytest.mark.parametrize("text", ["", "# only comments\n", "hello world"])
def test_output_without_rows_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="no result rows"):
        parse_nccl_tests(text)


def test_ib_write_bw_mb_per_sec_is_converted_to_gbit_per_sec() -> None:
    (row,) = parse_perftest((DATA / "ib_write_bw.txt").read_text())
    assert (row.size_bytes, row.iterations) == (65536, 5000)
    assert row.average_gbit_s == pytest.approx(11043.21 * 2**20 * 8 / 1e9)
    (gbits,) = parse_perftest((DATA / "ib_write_bw_gbits.txt").read_text())
    assert gbits.average_gbit_s == 92.64
    assert round(row.average_gbit_s, 2) == gbits.average_gbit_s


def test_perftest_without_header_or_rows_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no '#bytes"):
        parse_perftest("Couldn't connect to localhost:18515\n")
    header = (DATA / "ib_write_bw.txt").read_text().split(" 65536")[0]
    with pytest.raises(InputError, match="no result rows"):
        parse_perftest(header)


@pytest.mark.parametrize(("ranks", "busbw"), [(1, 0.0), (2, 1.0), (4, 1.5), (8, 1.75)])
def test_bus_bandwidth_uses_the_nccl_tests_all_reduce_factor(ranks: int, busbw: float) -> None:
    algbw, bus = bus_bandwidth(2_000_000_000, 2.0, ranks)
    assert (algbw, bus) == (1.0, busbw)


def test_bus_bandwidth_refuses_a_zero_time() -> None:
    with pytest.raises(InputError):
        bus_bandwidth(1, 0.0, 2)
