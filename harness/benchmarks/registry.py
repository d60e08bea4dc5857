"""THE table of benchmarks: name -> facts, collected from each benchmark folder (one line per folder).

A new benchmark is a folder `harness/benchmarks/<family>/` with `facts.py` (its `BENCHMARKS` tuple of
BenchmarkFacts), its dataset loader and scorer, plus one line in FAMILIES. The run config's `benchmark`
literal, the user.conf, the accuracy verdict, our checker's rules and the submission layout derive from it.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from harness.benchmarks.facts import BenchmarkFacts
from harness.errors import ConfigError
from harness.rounds import ROUNDS

__all__ = [
    "BENCHMARK_NAMES",
    "DEFAULT_BENCHMARK",
    "accuracy_keys",
    "benchmark_facts",
    "benchmarks_of_round",
    "check_in_round",
    "family_module",
]

FAMILIES = {
    "llama2_70b": "harness.benchmarks.llama2_70b.facts",
    "llama3_1_8b": "harness.benchmarks.llama3_1_8b.facts",
    "gpt_oss_120b": "harness.benchmarks.gpt_oss_120b.facts",
}

_TABLE: dict[str, BenchmarkFacts] = {
    facts.name: facts for module in FAMILIES.values() for facts in import_module(module).BENCHMARKS
}
BENCHMARK_NAMES: tuple[str, ...] = tuple(_TABLE)
DEFAULT_BENCHMARK = "llama2-70b-99.9"  # the one Llama 2 70B variant every round since v4.0 carries


def benchmark_facts(name: str, round_name: str | None = None) -> BenchmarkFacts:
    """The facts of a benchmark (as the given round states them), or a ConfigError naming the known ones."""
    try:
        facts = _TABLE[name]
    except KeyError:
        raise ConfigError(f"benchmark is {name!r}; expected one of {', '.join(BENCHMARK_NAMES)}",
                          hint="set benchmark: to one of the names above") from None
    return facts if round_name is None else facts.in_round(round_name)


def benchmarks_of_round(round_name: str) -> tuple[str, ...]:
    """The benchmarks the round's checker knows, in table order."""
    return tuple(name for name, facts in _TABLE.items() if round_name in facts.rounds)


def check_in_round(name: str, round_name: str) -> BenchmarkFacts:
    """The benchmark's facts in a round that carries it, else a one-line ConfigError with the reason and fix."""
    facts = benchmark_facts(name, round_name)
    if round_name not in facts.rounds:
        carried = [r for r in ROUNDS if r in facts.rounds]
        others = ", ".join(benchmarks_of_round(round_name)) or "none"
        raise ConfigError(
            f"benchmark {name} is not part of round {round_name} (its checker rejects it as an unknown model; "
            f"rounds with {name}: {', '.join(carried)})",
            hint=f"use a benchmark of {round_name} ({others}) or a round that has {name}")
    return facts


def accuracy_keys(name: str) -> tuple[str, ...]:
    """The summary keys the benchmark's checker judges (its metrics), for tables; ROUGE-1/2/L for an unknown name
    (a run directory of another harness version)."""
    if name not in _TABLE:
        return ("rouge1", "rouge2", "rougeL")
    return tuple(dict.fromkeys(m.key for m in _TABLE[name].metrics))


def family_module(name: str, part: str) -> ModuleType:
    """A part of the benchmark's folder (`dataset`: its loader, `evaluate`: its scorer), imported when first used."""
    return import_module(f"harness.benchmarks.{benchmark_facts(name).family}.{part}")
