"""Round-aware paths of the official submission tree: <division>/<org>/{systems,code|src,measurements,results,...}.

The division (open or closed) and the round are parameters; the benchmark names come from the one table of
benchmark facts (harness.benchmarks.registry). v4.0-v5.1 keep measurements/ and compliance/ as top-level dirs
beside results/ and the code in code/; v6.0 and v6.1 move measurements (as measurements.json) and TEST06 into
results/<sys>/<bench>/<scenario>/ and rename code/ to src/ (mlperf-rules.md §1.1, §1.5). Pure: no file is touched here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.artifacts import ACCURACY_LOG, ACCURACY_TXT, DETAIL, SUMMARY, TRACE
from harness.benchmarks.registry import BENCHMARK_NAMES, benchmarks_of_round
from harness.errors import ConfigError
from harness.rounds import ROUNDS, RoundSpec, round_spec

__all__ = ["ACCURACY_FILES", "BENCHMARKS", "DEFAULT_DIVISION", "DIVISIONS", "PERF_OPTIONAL", "PERF_REQUIRED",
           "RESULTS_JSON", "TEST06", "RoundLayout", "Tree", "check_division", "check_name", "round_benchmarks",
           "round_layout"]

DIVISIONS = ("open", "closed")  # the divisions this tool packages and checks ("network" is neither)
DEFAULT_DIVISION = "open"
BENCHMARKS = BENCHMARK_NAMES  # every benchmark some round knows; round_benchmarks() gives one round's
# LoadGen's file names come from the one table of the run-directory contract (harness.artifacts), so the
# tree, our checker's rules and the runs cannot spell them differently.
RESULTS_JSON = "results.json"  # the checkers also allow it in performance/run_1 (written by some harnesses)
PERF_REQUIRED = (SUMMARY, DETAIL)
PERF_OPTIONAL = (ACCURACY_LOG, TRACE, RESULTS_JSON)
ACCURACY_FILES = (SUMMARY, DETAIL, ACCURACY_TXT, ACCURACY_LOG)
TEST06 = "TEST06"


@dataclass(frozen=True)
class RoundLayout:
    """How one round lays out the tree and which files it requires."""

    name: str
    scenarios: tuple[str, ...]
    needs_mlperf_conf: bool
    measurements_in_results: bool
    code_dir: str

    @property
    def measure_files(self) -> tuple[str, ...]:
        """Non-empty files every measurements dir must hold, besides its JSON."""
        return ("mlperf.conf", "user.conf", "README.md") if self.needs_mlperf_conf else ("user.conf", "README.md")


def _layout(spec: RoundSpec) -> RoundLayout:
    return RoundLayout(spec.name, spec.scenarios, spec.passes_mlperf_conf, spec.measurements_in_results, spec.code_dir)


_LAYOUTS = {name: _layout(round_spec(name)) for name in ROUNDS}  # harness.rounds is the one table


def round_layout(name: str) -> RoundLayout:
    """The layout of a round, or a ConfigError listing the rounds."""
    try:
        return _LAYOUTS[name]
    except KeyError:
        raise ConfigError(f"--round is {name!r}; expected one of {', '.join(_LAYOUTS)}",
                          hint=f"pass --round {' or '.join(_LAYOUTS)}") from None


def round_benchmarks(name: str) -> tuple[str, ...]:
    """The benchmarks the round's official checker knows (llama2-70b-99 is not part of v6.1)."""
    return benchmarks_of_round(name)


def check_division(value: str) -> str:
    """A division this tool writes: open or closed, exactly (the tag checkers compare case-sensitively)."""
    if value not in DIVISIONS:
        raise ConfigError(f"--division is {value!r}; expected one of {', '.join(DIVISIONS)}",
                          hint="pass --division open (the default) or --division closed")
    return value


@dataclass(frozen=True)
class Tree:
    """Paths inside one submitter directory of one round."""

    root: Path
    submitter: str
    layout: RoundLayout
    division: str = DEFAULT_DIVISION

    @property
    def org(self) -> Path:
        """<division>/<submitter>."""
        return self.root / self.division / self.submitter

    def system_json(self, system: str) -> Path:
        """systems/<system>.json."""
        return self.org / "systems" / f"{system}.json"

    def code(self, benchmark: str, implementation: str) -> Path:
        """code/<benchmark>/<implementation> (src/ from v6.0)."""
        return self.org / self.layout.code_dir / benchmark / implementation

    def scenario(self, system: str, benchmark: str, scenario: str) -> Path:
        """results/<system>/<benchmark>/<scenario>."""
        return self.org / "results" / system / benchmark / scenario

    def performance(self, system: str, benchmark: str, scenario: str) -> Path:
        """results/.../<scenario>/performance/run_1."""
        return self.scenario(system, benchmark, scenario) / "performance" / "run_1"

    def accuracy(self, system: str, benchmark: str, scenario: str) -> Path:
        """results/.../<scenario>/accuracy."""
        return self.scenario(system, benchmark, scenario) / "accuracy"

    def measurements(self, system: str, benchmark: str, scenario: str) -> Path:
        """measurements/<system>/<benchmark>/<scenario> (the results scenario dir from v6.0)."""
        if self.layout.measurements_in_results:
            return self.scenario(system, benchmark, scenario)
        return self.org / "measurements" / system / benchmark / scenario

    def measurements_json(self, system: str, benchmark: str, scenario: str, implementation: str) -> Path:
        """<system>_<implementation>_<scenario>.json (measurements.json from v6.0)."""
        name = ("measurements.json" if self.layout.measurements_in_results
                else f"{system}_{implementation}_{scenario}.json")
        return self.measurements(system, benchmark, scenario) / name

    def compliance(self, system: str, benchmark: str, scenario: str, test: str = TEST06) -> Path:
        """compliance/<system>/<benchmark>/<scenario>/<test> (inside the results scenario dir from v6.0)."""
        if self.layout.measurements_in_results:
            return self.scenario(system, benchmark, scenario) / test
        return self.org / "compliance" / system / benchmark / scenario / test

    def calibration(self) -> Path:
        """<division>/<submitter>/calibration.md: how quantized weights were calibrated (closed; v5.1 checks it)."""
        return self.org / "calibration.md"


def check_name(kind: str, value: str) -> str:
    """A name that becomes a directory or file name: no spaces, no leading dot, no separators."""
    if not value or value.startswith(".") or any(c.isspace() or c in "/\\" for c in value):
        raise ConfigError(f"{kind} is {value!r}; the checker refuses names with spaces, a leading '.' or '/'",
                          hint=f"choose a {kind} of letters, digits, '-', '_' and '.'")
    return value
