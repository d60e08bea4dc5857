"""`harness sweep`: one closed-loop level per concurrency against the configured backend (MLPerf Endpoints style).

Modules:
    level   one level: the backend started, at most `in_flight` requests outstanding, per-sample timings
    run     the levels in order: the sweep directory, level.json / samples.jsonl per level, sweep.json
"""
