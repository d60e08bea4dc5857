"""BackendReport: engine-neutral load rows and named sections; merging replicas' reports."""

from __future__ import annotations

from harness.backends.base import BackendReport, UnitLoad, merge_reports


def test_merge_concatenates_load_and_keeps_equal_sections_once_and_differing_ones_per_replica() -> None:
    first = BackendReport((UnitLoad("http://a:1", 3, 30, 0, "0.32.0"),), {"endpoint": {"flavour": "vllm"}, "x": 1})
    second = BackendReport((UnitLoad("http://b:2", 2, 20, 1, "0.32.0"),), {"endpoint": {"flavour": "vllm"}, "x": 2})
    merged = merge_reports([first, second, BackendReport()])
    assert [unit.name for unit in merged.load] == ["http://a:1", "http://b:2"]
    assert merged.sections == {"endpoint": {"flavour": "vllm"}, "x": [1, 2]}
    assert merge_reports([]) == BackendReport()


def test_with_section_adds_a_block_and_leaves_the_original_alone() -> None:
    inner = BackendReport((UnitLoad("u", 1),), {"endpoint": {}})
    outer = inner.with_section("output_cache", {"generated": 1})
    assert outer.load == inner.load and set(outer.sections) == {"endpoint", "output_cache"}
    assert set(inner.sections) == {"endpoint"}
