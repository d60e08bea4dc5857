"""The one table of per-round facts: seeds, mlperf.conf, LoadGen builds, scenarios, tree layout, checker family.

Everything else that differs by round derives from it: the `Round` literal of the run config, the
submission tree layout (submission/layout.py) and the per-round flags of our checker's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

from harness.errors import ConfigError

__all__ = ["DEFAULT_ROUND", "ROUNDS", "RoundSpec", "Seeds", "round_spec"]

DEFAULT_ROUND = "v6.1"


@dataclass(frozen=True)
class Seeds:
    """The three LoadGen seeds the submission checker demands for a round."""

    qsl: int
    sample_index: int
    schedule: int


@dataclass(frozen=True)
class RoundSpec:
    """What a round requires of LoadGen and of the run's configuration files."""

    name: str
    seeds: Seeds
    # True: seeds come from the mlperf.conf we pass to FromConfig (v4.x LoadGen).
    # False: mlperf.conf is compiled into LoadGen and only user.conf is passed.
    passes_mlperf_conf: bool
    # LoadGen versions (prefixes of the installed distribution version) that produce this round.
    loadgen_versions: tuple[str, ...]
    loadgen_pip: str
    scenarios: tuple[str, ...]
    # Which official checker judges the round: the v4.x or v5.x tag script, or the modular one at HEAD.
    checker_family: Literal["v4", "v5", "head"]
    # Submission tree: measurements (and TEST06) inside the results scenario dir, and the code folder's name.
    measurements_in_results: bool = False
    code_dir: str = "code"
    # Checker rules only some rounds apply.
    checks_unused_systems: bool = False  # every systems/*.json and measurements/<sys> needs results
    needs_server_or_interactive: bool = False  # each benchmark needs a Server or Interactive result, even in open
    enforces_min_duration: bool = True  # effective_min_duration_ms < 600000 fails (the v4.0 script only warns)
    requires_accuracy_detail: bool = True  # accuracy/mlperf_log_detail.txt must exist (v4.0 does not read it)
    # LoadGen <= 4.1 with this round's mlperf.conf (equal issue on in Offline): when samples_per_query is a multiple
    # of the performance sample count, GenerateQueries pads min_queries from 1 to that count, i.e. 24,576 queries
    # of 24,576 samples (fixed in mlcommons/inference #2031, LoadGen 5.0). Checked before a run starts.
    offline_equal_issue_pads_queries: bool = False
    # The v5.1 script judges open results like closed ones: an INVALID or equal-issue-off performance run, LoadGen
    # errors in the accuracy log and an unparsable accuracy.txt fail (v5.0 accepts all four, measured).
    strict_open_results: bool = False
    exact_accuracy_files: bool = False  # accuracy/ holds exactly its four files (v4.1, v5.x; measured)

    @property
    def mlperf_conf_text(self) -> str | None:
        """The official mlperf.conf of the round, shipped with the project, or None."""
        if not self.passes_mlperf_conf:
            return None
        return resources.files("harness").joinpath(f"data/mlperf-{self.name}.conf").read_text()

    def loadgen_matches(self, version: str) -> bool:
        """Whether an installed LoadGen version can produce this round's logs."""
        return any(version == v or version.startswith(v + ".") for v in self.loadgen_versions)


_SPECS = {
    "v4.0": RoundSpec(
        "v4.0",
        Seeds(13281865557512327830, 198141574272810017, 7575108116881280410),
        passes_mlperf_conf=True,
        loadgen_versions=("4.0", "4.0.1"),
        loadgen_pip="pip install 'mlcommons-loadgen==4.0.1'",
        scenarios=("Offline", "Server"),
        checker_family="v4",
        enforces_min_duration=False,
        requires_accuracy_detail=False,
    ),
    "v4.1": RoundSpec(
        "v4.1",
        Seeds(3066443479025735752, 10688027786191513374, 14962580496156340209),
        passes_mlperf_conf=True,
        loadgen_versions=("4.1",),
        loadgen_pip="build LoadGen from the v4.1 tag of mlcommons/inference (loadgen/), from a clean tree",
        scenarios=("Offline", "Server"),
        checker_family="v4",
        offline_equal_issue_pads_queries=True,
        exact_accuracy_files=True,
    ),
    "v5.0": RoundSpec(
        "v5.0",
        Seeds(6023615788873153749, 15036839855038426416, 9933818062894767841),
        passes_mlperf_conf=False,
        loadgen_versions=tuple(f"5.0.{n}" for n in range(8, 22)),
        loadgen_pip="pip install 'mlcommons-loadgen==5.0.21'",
        scenarios=("Offline", "Server"),
        checker_family="v5",
        exact_accuracy_files=True,
    ),
    "v5.1": RoundSpec(
        "v5.1",
        Seeds(1780908523862526354, 14771362308971278857, 18209322760996052031),
        passes_mlperf_conf=False,
        loadgen_versions=("5.0.22", "5.0.23", "5.0.24", "5.0.25", "5.1"),
        loadgen_pip="pip install 'mlcommons-loadgen==5.1.2'",
        scenarios=("Offline", "Server", "Interactive", "SingleStream"),
        checker_family="v5",
        checks_unused_systems=True,
        needs_server_or_interactive=True,
        strict_open_results=True,
        exact_accuracy_files=True,
    ),
    "v6.0": RoundSpec(
        "v6.0",
        Seeds(2465351861681999779, 14276810075590677512, 3936089224930324775),
        passes_mlperf_conf=False,
        # 6.0.0-6.0.4 carry the v5.1 seeds; 6.0.5 (#2437) to 6.0.15 the v6.0 ones (field-2026.md §1.1)
        loadgen_versions=tuple(f"6.0.{n}" for n in range(5, 16)),
        loadgen_pip="pip install 'mlcommons-loadgen==6.0.15'",
        scenarios=("Offline", "Server", "Interactive", "SingleStream"),
        checker_family="head",
        measurements_in_results=True,
        code_dir="src",
    ),
    "v6.1": RoundSpec(
        "v6.1",
        # inference #2611 (LoadGen 6.0.16); 6.0.17 only reformats two .cc files
        Seeds(2085463073848966840, 2747215439041700203, 16159082839903944936),
        passes_mlperf_conf=False,
        loadgen_versions=("6.0.16", "6.0.17"),
        loadgen_pip="pip install 'mlcommons-loadgen==6.0.17'",
        scenarios=("Offline", "Server", "Interactive", "SingleStream"),
        checker_family="head",
        measurements_in_results=True,
        code_dir="src",
    ),
}


ROUNDS: tuple[str, ...] = tuple(_SPECS)


def round_spec(name: str) -> RoundSpec:
    """The spec of a round, or a ConfigError naming the rounds we know."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ConfigError(
            f"round is {name!r}; expected one of {', '.join(ROUNDS)}",
            hint=f"set round: {DEFAULT_ROUND} (the default) or another round listed above",
        ) from None
