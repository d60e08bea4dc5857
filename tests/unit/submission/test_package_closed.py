"""submission package --division closed: the closed division's refusals, each a not-submittable reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.benchmarks.registry import benchmark_facts
from harness.errors import ConfigError, InputError
from submission.cli import main
from submission.package import PackageRequest, package_submission
from submission.rules.closed import accuracy_problems
from tests.unit.submission import trees

BENCH = "llama2-70b-99.9"


def _request(tmp_path: Path, runs: list[Path], round_name: str = "v6.1", **extra: object) -> PackageRequest:
    values: dict[str, object] = {"allow_unsubmittable": True, "division": "closed"} | extra
    return PackageRequest(round_name, "MyOrg", trees.system_file(str(values["division"])), runs,
                          tmp_path / "tree", **values)  # type: ignore[arg-type]


def test_accuracy_is_compared_as_the_checker_compares() -> None:
    facts = benchmark_facts(BENCH, "v6.1")
    at_limits = {m.key: m.lower for m in facts.metrics}
    line = str(at_limits)
    assert accuracy_problems(facts, [line, "hash=ab"], "head") == []  # value >= target passes at equality
    rouge1 = facts.metric("rouge1")
    tokens = facts.metric("tokens_per_sample")
    assert rouge1 is not None and tokens is not None and tokens.upper is not None
    below = accuracy_problems(facts, [str(at_limits | {"rouge1": rouge1.lower - 1e-4})], "head")
    assert len(below) == 1 and below[0].startswith("rouge1 ") and "below" in below[0]
    above = accuracy_problems(facts, [str(at_limits | {"tokens_per_sample": tokens.upper + 0.1})], "head")
    assert len(above) == 1 and "upper limit" in above[0]
    missing = accuracy_problems(facts, [str({k: v for k, v in at_limits.items() if k != "rouge2"})], "head")
    assert len(missing) == 1 and missing[0].startswith("rouge2 cannot be read")


def test_closed_tree_of_fake_short_runs_lists_every_closed_reason(tmp_path: Path) -> None:
    runs = list(trees.fake_runs().values())
    result = package_submission(_request(tmp_path, runs))
    reasons = "\n".join(result.unsubmittable)
    for scenario in ("Offline", "Server"):
        assert f"{BENCH} {scenario}: closed needs a TEST06 run" in reasons
    assert "closed: rouge1 " in reasons  # the fake's answers on the smoke set miss the targets
    assert "closed needs >= 600000 ms (a shortened run)" in reasons
    assert "closed allows no deviation from the reference" in reasons
    assert f"closed: {BENCH} Offline: the measurements JSON's starting_weights_filename" in reasons
    readme = (tmp_path / "tree/closed/MyOrg/results" / trees.SYSTEM.stem / BENCH / "Offline/README.md").read_text()
    assert "closed division" in readme and readme.index("NOT A VALID SUBMISSION") < readme.index("## Hardware")
    assert "closed needs a TEST06 run" in readme
    assert (tmp_path / "tree/closed/MyOrg/calibration.md").is_file()


def test_closed_tree_is_refused_without_allow_unsubmittable(tmp_path: Path) -> None:
    runs = list(trees.fake_runs().values())
    # the example system describes TensorRT-LLM, so the fake's contradictions are named first
    with pytest.raises(InputError, match="^(provenance contradiction|not submittable): ") as err:
        package_submission(_request(tmp_path, runs, allow_unsubmittable=False))
    assert "\n" not in err.value.message and not (tmp_path / "tree").exists()


def test_closed_needs_offline_and_server_or_interactive(tmp_path: Path) -> None:
    runs = [p for (scenario, _), p in trees.fake_runs().items() if scenario == "Offline"]
    result = package_submission(_request(tmp_path, runs))
    assert any(r.startswith(f"{BENCH}: closed needs Server or Interactive runs too") for r in result.unsubmittable)
    result = package_submission(_request(tmp_path / "v5.0", runs, "v5.0"))
    assert any(r.startswith(f"{BENCH}: closed needs Server runs too") for r in result.unsubmittable)


def test_system_division_must_equal_the_division(tmp_path: Path) -> None:
    runs = list(trees.fake_runs().values())
    request = _request(tmp_path, runs)
    request = PackageRequest(**{**request.__dict__, "system_file": trees.SYSTEM})
    with pytest.raises(InputError, match="division is 'open' but --division is 'closed'") as err:
        package_submission(request)
    assert "\n" not in err.value.message


def test_llama2_70b_99_is_refused_in_v6_1_also_through_both_benchmarks(tmp_path: Path) -> None:
    runs = list(trees.fake_runs().values())
    with pytest.raises(ConfigError, match="--both-benchmarks: benchmark llama2-70b-99 is not part of round v6.1"):
        package_submission(_request(tmp_path, runs, both_benchmarks=True))
    result = package_submission(_request(tmp_path / "v6.0", runs, "v6.0", both_benchmarks=True))
    assert {b for b, _ in result.scenarios} == {"llama2-70b-99", BENCH}


def test_cli_division_flag_and_unknown_division(tmp_path: Path) -> None:
    runs = trees.fake_runs()
    with pytest.raises(SystemExit) as exit_:
        main(trees.package_args(runs, tmp_path / "tree", "v6.1", "--division", "network"))
    assert exit_.value.code == 2
    args = trees.package_args(runs, tmp_path / "tree", "v6.1", "--division", "closed")
    args[args.index("--system") + 1] = str(trees.system_file("closed"))
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0 and (tmp_path / "tree/closed/MyOrg").is_dir()


def test_gpt_oss_accuracy_reads_exact_match_and_ignores_an_absent_upper_only_limit() -> None:
    facts = benchmark_facts("gpt-oss-120b", "v6.1")
    assert accuracy_problems(facts, ["'exact_match': 82.300", "hash=ab"], "head") == []
    low = accuracy_problems(facts, ["'exact_match': 82.290", "hash=ab"], "head")
    assert len(low) == 1 and "exact_match 82.29 is below the gpt-oss-120b target 82.2987" in low[0]
    assert "exact_match cannot be read" in accuracy_problems(facts, ["FINAL SCORE: 90%"], "head")[0]
    printed = accuracy_problems(facts, ["'exact_match': 90.0", "'tokens_per_sample': 11000.0"], "head")
    assert len(printed) == 1 and "above the gpt-oss-120b upper limit" in printed[0]


@pytest.mark.parametrize(("mode", "generation", "expected"), [
    ("accuracy", {"max_new_tokens": 32768, "temperature": 1.0, "top_p": 1.0, "top_k": 0}, []),
    ("performance", {"max_new_tokens": 10240, "temperature": 1.0, "top_p": 1.0, "top_k": 0}, []),
    ("performance", {"max_new_tokens": 32768, "temperature": 1.0}, ["max_new_tokens is 32768; closed fixes 10240"]),
    ("accuracy", {"max_new_tokens": 32768, "temperature": 0.0, "top_k": 1},
     ["sampling is temperature 0.0, top_k 1; closed fixes the reference's sampling (temperature 1.0, top_p 1.0, "
      "top_k 0, num_beams 1)"]),
])
def test_closed_fixes_gpt_oss_sampling_and_the_cap_of_each_mode(tmp_path: Path, mode: str,
                                                                 generation: dict[str, object],
                                                                 expected: list[str]) -> None:
    from submission.inputs import RunInput, _closed_generation

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"mode": mode, "generation": generation}))
    found = _closed_generation(RunInput(tmp_path, None), benchmark_facts("gpt-oss-120b"))  # type: ignore[arg-type]
    assert len(found) == len(expected) and all(e in f for e, f in zip(expected, found, strict=True)), found
