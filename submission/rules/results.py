"""Rules for results/<sys>/<bench>/<scenario>: performance/run_1 detail log, accuracy/ files and scores.

Each rule carries the checker families that fail on it (mlperf-rules.md §3.3-§3.6 and the §9 table);
elsewhere it is a warning, so a tree that is clean here passes every round's checker. Sample counts, latency
limits, accuracy targets and min query counts are the benchmark's facts in the round (harness.benchmarks).
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.artifacts import ACCURACY_LOG, ACCURACY_TXT, DETAIL, SUMMARY
from harness.benchmarks.facts import BenchmarkFacts
from harness.errors import InputError
from harness.logs import DetailLog, parse_detail_log
from harness.rounds import round_spec
from submission.layout import ACCURACY_FILES, PERF_OPTIONAL, PERF_REQUIRED
from submission.rules._base import ALL, TAG_SCRIPTS, Findings
from submission.rules.closed import check_accuracy_targets, metric_values

MIN_DURATION_MS = 600000  # TEST_DURATION_MS of every checker: the rules' minimum run time, not a benchmark fact
MAX_ACCURACY_LOG = 10 * 1024
_V4, _V5, _HEAD = frozenset({"v4"}), frozenset({"v5"}), frozenset({"head"})
_V5_HEAD = frozenset({"v5", "head"})
_HASH = re.compile(r"^hash=([\w\d]+)$")


def _strict(f: Findings) -> frozenset[str]:
    """Fails here when the round judges open results strictly (v5.1), warns elsewhere."""
    return frozenset({f.family}) if round_spec(f.round).strict_open_results else frozenset()


def _exact(f: Findings) -> frozenset[str]:
    """Fails here when the round wants exactly four accuracy files (v4.1, v5.x), warns elsewhere."""
    return frozenset({f.family}) if round_spec(f.round).exact_accuracy_files else frozenset()


def canonical_scenario(name: str, round_name: str) -> str | None:
    """The round's scenario a directory name stands for, ignoring case (HEAD reads `offline` as Offline)."""
    found = [s for s in round_spec(round_name).scenarios if s.lower() == name.lower()]
    return found[0] if found else None


def check_scenario(f: Findings, path: Path, facts: BenchmarkFacts, system_type: str = "datacenter") -> None:
    """All rules for one results scenario dir (its compliance tests: closed.check_compliance); the scenarios
    allowed are the benchmark's for the system description's system_type ("datacenter,edge": both)."""
    scenario = canonical_scenario(path.name, f.round)
    allowed = tuple(dict.fromkeys(s for kind in system_type.split(",") for s in facts.scenarios(kind)))
    if not allowed:  # a system type the benchmark has no scenarios for (the packager refuses it; the checkers only
        # judge it through the system JSON's rules, `system-type`): the benchmark's own scenarios stay valid names
        allowed = tuple(dict.fromkeys(s for kind in facts.system_types for s in facts.scenarios(kind)))
    if scenario is None or scenario not in allowed:
        f.add("scenario-name", path, f"{path.name} is not a scenario of round {f.round} for {facts.name} on a "
              f"{system_type} system",
              f"use {' or '.join(s for s in allowed if s in round_spec(f.round).scenarios)}, in exactly that case"
              if allowed else f"set the system's system_type to {' or '.join(facts.system_types)}")
        return
    if scenario != path.name:
        f.add("scenario-name", path, f"{path.name} is not spelt {scenario}; the checkers accept it (the scenario "
              "comes from the log) but reviewers and result tables expect the official spelling",
              f"rename the directory to {scenario} (and its measurements dir)", frozenset())
    check_performance(f, path / "performance" / "run_1", scenario, facts)
    check_accuracy(f, path / "accuracy", facts)


def _files(f: Findings, where: Path, required: tuple[str, ...], optional: tuple[str, ...], rule: str,
           extra_fails: frozenset[str]) -> bool:
    if not where.is_dir():
        f.add(rule, where, f"{where.name}/ is missing", f"add {', '.join(required)}")
        return False
    present = {p.name for p in where.iterdir()}
    missing = [name for name in required if name not in present]
    for name in missing:
        # HEAD reads only the detail log: a missing summary fails the tag scripts alone.
        fails = TAG_SCRIPTS if name == SUMMARY else ALL
        f.add(rule, where / name, f"{name} is missing", f"copy {name} from the run directory", fails)
    for name in sorted(present - set(required) - set(optional)):
        f.add(rule, where / name, f"{name} is not allowed in {where.name}/",
              f"keep only {', '.join(required)} here", extra_fails)
    return DETAIL not in missing


def check_performance(f: Findings, run: Path, scenario: str, facts: BenchmarkFacts) -> None:
    """performance/run_1: allowed files and the detail-log keys the checker reads."""
    if not _files(f, run, PERF_REQUIRED, PERF_OPTIONAL, "performance-files", TAG_SCRIPTS):
        return
    detail = run / DETAIL
    try:
        log = parse_detail_log(detail)
    except InputError as err:
        f.add("detail-log", detail, err.message, f"copy LoadGen's untouched {DETAIL}")
        return
    _check_settings(f, detail, log, facts)
    _check_metric(f, detail, log, scenario)
    if scenario == "Offline":
        _check_offline(f, detail, log, facts)
    elif scenario == "SingleStream":
        _check_single_stream(f, detail, log, facts)
    else:
        _check_server(f, detail, log, scenario, facts)


def _check_settings(f: Findings, detail: Path, log: DetailLog, facts: BenchmarkFacts) -> None:
    if log["requested_use_token_latencies"] is not True:
        f.add("token-latencies", detail, "requested_use_token_latencies is not true",
              "run with LoadGen model name llama2-70b so mlperf.conf enables token latencies")
    if log.num_errors():
        f.add("loadgen-errors", detail, f"LoadGen logged {log.num_errors()} error(s): "
              f"{'; '.join(str(m.value) for m in log.errors[:2])}", "fix the cause and rerun", TAG_SCRIPTS)
    samples = facts.performance_samples
    if (log["effective_performance_sample_count"] or 0) < samples:
        f.add("performance-sample-count", detail, "effective_performance_sample_count is "
              f"{log['effective_performance_sample_count']}; expected >= {samples}",
              f"run the full {samples}-sample QSL")
    seeds = round_spec(f.round).seeds
    expected = {"effective_qsl_rng_seed": seeds.qsl, "effective_sample_index_rng_seed": seeds.sample_index,
                "effective_schedule_rng_seed": seeds.schedule}
    for key, value in expected.items():
        if log[key] != value:
            f.add("seeds", detail, f"{key} is {log[key]}; round {f.round} needs {value}",
                  f"run with the LoadGen of round {f.round} ({round_spec(f.round).loadgen_pip})")
    if log["result_validity"] != "VALID":
        f.add("result-validity", detail, f"result_validity is {log['result_validity']}",
              "meet min duration, min queries, latency limits and early stopping", _strict(f))
    duration = log["effective_min_duration_ms"]
    if duration is not None and duration < MIN_DURATION_MS:
        fails = ALL if round_spec(f.round).enforces_min_duration else frozenset()
        f.add("min-duration", detail, f"effective_min_duration_ms is {duration}; expected >= {MIN_DURATION_MS}",
              "do not lower min_duration in user.conf (v4.0 only warns; v4.1 and later fail)", fails)
    if f.family != "v4" and log["effective_sample_concatenate_permutation"] is not True:
        f.add("equal-issue", detail, "effective_sample_concatenate_permutation is not true",
              "do not turn off sample_concatenate_permutation", _strict(f))


def _metric_key(f: Findings, scenario: str) -> str:
    if scenario == "Offline":
        return "result_tokens_per_second"
    if scenario == "SingleStream":  # HEAD's RESULT_FIELD_BENCHMARK_OVERWRITE (llama3.1-8b-edge); the tags' default
        return "result_90.00_percentile_latency_ns" if f.family == "head" else "early_stopping_latency_ss"
    return "result_completed_samples_per_sec" if f.family == "v4" else "result_completed_tokens_per_second"


def _check_metric(f: Findings, detail: Path, log: DetailLog, scenario: str) -> None:
    key = _metric_key(f, scenario)
    value = log[key]
    if not isinstance(value, (int, float)) or value <= 0:
        f.add("metric", detail, f"{key} is {value}; the checker counts no result",
              "package a finished performance run")


def _check_offline(f: Findings, detail: Path, log: DetailLog, facts: BenchmarkFacts) -> None:
    spq = log["effective_samples_per_query"] or 0
    if spq < facts.performance_samples:  # OFFLINE_MIN_SPQ_SINCE_V4; HEAD checks it in closed only
        f.add("samples-per-query", detail, f"effective_samples_per_query is {spq}; expected >= "
              f"{facts.performance_samples}", "do not lower Offline min_query_count; set target_qps to the real "
              "throughput", f.unless_open(TAG_SCRIPTS))
    needed = facts.min_queries.get("Offline", 1)
    if (log["effective_min_query_count"] or 0) < needed:
        f.add("min-query-count", detail, f"effective_min_query_count is {log['effective_min_query_count']}; "
              f"expected >= {needed}", f"do not set min_query_count below {needed}")


def _check_single_stream(f: Findings, detail: Path, log: DetailLog, facts: BenchmarkFacts) -> None:
    """SingleStream is judged by early stopping (every checker); its min query count only warns (the checkers
    read it only for scenarios without early stopping)."""
    if log["early_stopping_met"] is not True:
        f.add("early-stopping", detail, f"early_stopping_met is {log['early_stopping_met']}",
              "run more queries (min_query_count) so that early stopping is met")
    needed = facts.min_queries.get("SingleStream", 1)
    if (log["effective_min_query_count"] or 0) < needed:
        f.add("min-query-count", detail, f"effective_min_query_count is {log['effective_min_query_count']}; "
              f"expected >= {needed}", f"do not set min_query_count below {needed}", frozenset())


def _check_server(f: Findings, detail: Path, log: DetailLog, scenario: str, facts: BenchmarkFacts) -> None:
    ttft = log["result_first_token_99.00_percentile_latency_ns"]
    tpot = log["result_time_per_output_token_99.00_percentile_ns"]
    # A Server-mode run: every checker applies the Server limits (HEAD reads the scenario from the log, so an
    # Interactive run is held to them too); the v5.1 script also applies Interactive's to an Interactive dir.
    server = facts.latency["Server"].ns
    tight_limits = facts.latency["Interactive"].ns if "Interactive" in facts.latency else server
    for name, value, limit, tight in (("TTFT", ttft, server[0], tight_limits[0]),
                                      ("TPOT", tpot, server[1], tight_limits[1])):
        if not isinstance(value, (int, float)) or value >= limit:
            f.add("latency", detail, f"{name} p99 is {value} ns; the limit is < {limit} ns",
                  "lower target_qps until the latency limits hold")
        elif scenario == "Interactive" and value >= tight:
            f.add("latency", detail, f"{name} p99 is {value} ns; Interactive needs < {tight} ns",
                  "lower target_qps until the Interactive limits hold", _V5)
    if log["early_stopping_met"] is False:
        f.add("early-stopping", detail, "early_stopping_met is false", "run longer or at a lower target_qps",
              _HEAD)
    target = log["effective_target_latency_ns"]
    if target is not None and target > 20_000_000_000:
        f.add("target-latency", detail, f"effective_target_latency_ns is {target}; expected <= 2e10",
              "do not set target_latency in user.conf")


def check_accuracy(f: Findings, acc: Path, facts: BenchmarkFacts) -> None:
    """accuracy/: exactly its four files, a parsable accuracy.txt with hash, a truncated log, no errors."""
    if not acc.is_dir():
        f.add("accuracy-files", acc, "accuracy/ is missing", "add the accuracy run's files")
        return
    present = {p.name for p in acc.iterdir()}
    if ACCURACY_TXT not in present:
        f.add("accuracy-files", acc / ACCURACY_TXT, f"{ACCURACY_TXT} is missing",
              "add the scoring output (submission package writes it with the hash line)")
    for name in sorted(set(ACCURACY_FILES) - present - {ACCURACY_TXT}):
        if name == ACCURACY_LOG:
            fails = _V5_HEAD
        elif name == DETAIL:  # HEAD crashes without it; v4.1 and v5.x fail
            fails = ALL if round_spec(f.round).requires_accuracy_detail else frozenset()
        else:
            fails = _strict(f) | _V5
        f.add("accuracy-files", acc / name, f"{name} is missing", f"add {name}", fails)
    for name in sorted(present - set(ACCURACY_FILES)):
        f.add("accuracy-files", acc / name, f"{name} is not allowed in accuracy/",
              "accuracy/ must hold exactly its four files; move extra files out", _exact(f))
    log = acc / ACCURACY_LOG
    if log.is_file() and log.stat().st_size > MAX_ACCURACY_LOG:
        f.add("accuracy-log-size", log, f"{log.stat().st_size} bytes; the limit is {MAX_ACCURACY_LOG}",
              "truncate it (submission package does, keeping the original)", f.unless_open(_HEAD))
    if ACCURACY_TXT in present:
        _check_accuracy_txt(f, acc / ACCURACY_TXT, facts)
    if DETAIL in present:
        _check_accuracy_detail(f, acc / DETAIL, facts)


def _check_accuracy_txt(f: Findings, path: Path, facts: BenchmarkFacts) -> None:
    lines = path.read_text(errors="replace").splitlines()
    if not any(_HASH.match(line) for line in lines):
        f.add("accuracy-hash", path, "no hash= line (closed needs the sha256 of the untruncated log)",
              "truncate with submission package, which appends it", f.unless_open())
    v4 = [key for key, values in metric_values(facts, lines, "v4").items() if values]
    v5 = [key for key, values in metric_values(facts, lines, "v5").items() if values]
    if not v5:
        f.add("accuracy-parse", path, "no metric can be read (numpy 2 prints np.float64(...))",
              "print plain floats: {'rouge1': 44.43, ...}", _strict(f))
    elif len(v4) < len(facts.metrics):
        f.add("accuracy-parse", path, f"only {', '.join(sorted(v4))} can be read", "print plain floats",
              frozenset())
    check_accuracy_targets(f, path, facts, lines)


def _check_accuracy_detail(f: Findings, detail: Path, facts: BenchmarkFacts) -> None:
    try:
        log = parse_detail_log(detail)
    except InputError as err:
        f.add("detail-log", detail, err.message, "copy LoadGen's untouched accuracy-run detail log")
        return
    if log.num_errors():
        f.add("accuracy-loadgen-errors", detail, f"LoadGen logged {log.num_errors()} error(s) in the accuracy run "
              "(the v5.1 checker crashes on it)", "fix the cause and rerun the accuracy run",
              f.unless_open(_strict(f) | _HEAD))
    count = log["effective_accuracy_sample_count"] or log["qsl_reported_total_count"]
    if count != facts.accuracy_samples:
        f.add("accuracy-sample-count", detail, f"the accuracy run covered {count} samples; expected "
              f"{facts.accuracy_samples}", "score the full dataset", _HEAD)
