"""submission.system: the system-description model, its shipped JSON Schema, and placeholder refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from submission import system
from tests.unit.submission.trees import SYSTEM


def _example() -> dict[str, object]:
    data: dict[str, object] = json.loads(SYSTEM.read_text())
    return data


def test_shipped_schema_is_the_models_export() -> None:
    assert system.shipped_schema() == system.json_schema()


def test_schema_requires_the_35_checker_keys() -> None:
    schema = system.shipped_schema()
    assert len(schema["required"]) == 35
    assert "accelerator_on-chip_memories" in schema["required"]
    assert schema["additionalProperties"] is False


def test_example_two_node_roce_descriptor_validates() -> None:
    loaded = system.load_system(SYSTEM)
    assert loaded.number_of_nodes == 2
    assert loaded.accelerators_per_node == 8
    assert system.problems(_example()) == []


@pytest.mark.parametrize("placeholder", ["N/A", "TBD", "", "unknown", "-", "<fill me>"])
def test_placeholder_in_a_meaningful_key_is_refused_with_key_and_example(placeholder: str) -> None:
    data = _example() | {"host_networking": placeholder}
    found = system.problems(data, "systems/x.json")
    assert found == [f"systems/x.json: host_networking is {json.dumps(placeholder)}; placeholders are refused; "
                     'set e.g. "RoCE v2, 400 Gb/s per GPU"']


def test_placeholder_is_allowed_where_the_checker_accepts_empty() -> None:
    assert system.problems(_example() | {"hw_notes": "", "system_type_detail": "N/A"}) == []


@pytest.mark.parametrize(("change", "fragment"), [
    ({"is_network": False}, "is_network is false; omit the key"),
    ({"is_network": "false"}, "is_network is \"false\"; omit the key"),
    ({"framework": 7}, "framework is 7; input should be a valid string"),
    ({"number_of_nodes": "two"}, "number_of_nodes is \"two\""),
    ({"system_type": "datacenter, edge"}, "system_type is \"datacenter, edge\""),
    ({"division": "Open"}, "division is \"Open\""),
    ({"status": "released"}, "status is \"released\"; expected one of available, preview, rdi"),
    ({"host_memory_capcity": "2 TB"}, "host_memory_capcity is not a system-description key"),
])
def test_values_the_checker_rejects_are_named(change: dict[str, object], fragment: str) -> None:
    found = system.problems(_example() | change)
    assert any(fragment in line for line in found), found


def test_missing_key_is_named_with_an_example() -> None:
    data = _example()
    del data["cooling"]
    assert system.problems(data, "f.json") == ['f.json: cooling is missing; set e.g. "air-cooled"']


def test_power_keys_are_accepted() -> None:
    assert system.problems(_example() | {"power_management": "", "system_power_only": "no"}) == []


def test_load_system_raises_one_input_error_listing_all(tmp_path: Path) -> None:
    path = tmp_path / "sys.json"
    path.write_text(json.dumps(_example() | {"cooling": "N/A", "framework": "TBD"}))
    with pytest.raises(InputError) as err:
        system.load_system(path)
    assert "cooling" in err.value.message and "framework" in err.value.message


def test_load_system_refuses_non_json(tmp_path: Path) -> None:
    path = tmp_path / "sys.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="is not valid JSON"):
        system.load_system(path)


@pytest.mark.parametrize("name", ["my system.json", ".hidden.json"])
def test_system_id_refuses_names_the_checker_refuses(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError):
        system.system_id(tmp_path / name)


CPU_ONLY = {"accelerators_per_node": "0", "accelerator_model_name": "N/A", "accelerator_memory_capacity": "N/A",
            "accelerator_memory_configuration": "N/A", "accelerator_host_interconnect": "N/A",
            "accelerator_interconnect": "N/A", "framework": "vLLM 0.32.0 (CPU)"}


@pytest.mark.parametrize("count", ["0", 0])
def test_a_cpu_only_system_may_say_n_a_for_its_accelerators(count: object, tmp_path: Path) -> None:
    """As published CPU submissions write it: accelerators_per_node "0" and the accelerator fields "N/A"."""
    data = _example() | CPU_ONLY | {"accelerators_per_node": count}
    assert system.problems(data) == []
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps(data))
    assert system.load_system(path).accelerators_per_node == 0


def test_a_cpu_only_system_still_refuses_placeholders_elsewhere_and_empty_accelerator_fields() -> None:
    data = _example() | CPU_ONLY | {"host_networking": "N/A", "accelerator_model_name": ""}
    found = system.problems(data, "s.json")
    assert any(line.startswith("s.json: host_networking is \"N/A\"; placeholders are refused") for line in found)
    assert any(line.startswith("s.json: accelerator_model_name is \"\"; placeholders are refused") for line in found)


def test_accelerator_placeholders_are_refused_when_the_system_has_accelerators() -> None:
    found = system.problems(_example() | {"accelerator_model_name": "N/A"}, "s.json")
    assert found == ['s.json: accelerator_model_name is "N/A"; placeholders are refused; set e.g. '
                     '"NVIDIA H100-SXM-80GB"']
    assert any("accelerators_per_node is \"none\"" in line
               for line in system.problems(_example() | {"accelerators_per_node": "none"}))
