"""The system description (`systems/<system_desc_id>.json`): model, JSON Schema, validation with fixes.

The 35 keys are the same for every round v4.0 through v6.0 (mlperf-rules.md §2.1); 26 of them must be
meaningful. A CPU-only system says `accelerators_per_node: "0"` (or 0) and may then write "N/A" in the accelerator
fields, as published CPU submissions do. Text fields are JSON strings because the official checker
concatenates them into its CSV (a number crashes it); `is_network` is refused because a JSON boolean crashes
v4.0/v5.1 and the string "false" makes HEAD demand 13 network keys (§2.2).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, ValidationError, WithJsonSchema

from harness.errors import InputError
from harness.safe_paths import not_there

SCHEMA_FILE = "system_description.schema.json"
PLACEHOLDERS = frozenset({"", "n/a", "na", "tbd", "tba", "unknown", "-", "none", "null", "todo", "?"})
STATUSES = ("available", "preview", "rdi")
SYSTEM_TYPES = ("datacenter", "datacenter,edge", "edge,datacenter")  # the ones Llama 2 70B runs on
ANY_SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")  # the checker's; the packager
# matches the type against each benchmark's facts
DIVISIONS = ("open", "closed", "network")
# Keys a CPU-only system (accelerators_per_node "0") may fill with a placeholder such as "N/A".
ACCELERATOR_KEYS = ("accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
                    "accelerator_memory_configuration", "accelerator_host_interconnect", "accelerator_interconnect")
# Keys the checker only warns about (power fields); v5.1 added system_power_only.
POWER_KEYS = (
    "power_management", "filesystem", "boot_firmware_version", "management_firmware_version",
    "other_hardware", "number_of_type_nics_installed", "nics_enabled_firmware", "nics_enabled_os",
    "nics_enabled_connected", "network_speed_mbit", "power_supply_quantity_and_rating_watts",
    "power_supply_details", "disk_drives", "disk_controllers", "system_power_only",
)

# A real example for every key the checker needs to be meaningful (quoted in refusals).
EXAMPLES: dict[str, str | int] = {
    "division": "open",
    "submitter": "MyOrg",
    "status": "available",
    "system_name": "2 nodes x 8x NVIDIA H100-SXM-80GB, RoCE v2",
    "system_type": "datacenter",
    "number_of_nodes": 2,
    "host_processor_model_name": "Intel(R) Xeon(R) Platinum 8480C",
    "host_processors_per_node": 2,
    "host_processor_core_count": 56,
    "host_memory_capacity": "2 TB",
    "host_memory_configuration": "32x 64 GB DDR5-4800",
    "host_storage_capacity": "30 TB",
    "host_storage_type": "NVMe SSD",
    "host_network_card_count": "8x 400 Gb/s ConnectX-7",
    "host_networking": "RoCE v2, 400 Gb/s per GPU",
    "host_networking_topology": "rail-optimised leaf-spine, one NIC per GPU",
    "accelerators_per_node": 8,
    "accelerator_model_name": "NVIDIA H100-SXM-80GB",
    "accelerator_memory_capacity": "80 GB",
    "accelerator_memory_configuration": "HBM3",
    "accelerator_host_interconnect": "PCIe Gen5 x16",
    "accelerator_interconnect": "18x 4th Gen NVLink, 900 GB/s",
    "cooling": "air-cooled",
    "framework": "TensorRT-LLM 0.9.0, CUDA 12.3",
    "operating_system": "Ubuntu 22.04.4 LTS",
    "other_software_stack": "NVIDIA driver 550.54, NCCL 2.19, Open MPI 4.1",
}


def _text(description: str) -> Any:
    return Field(description=description)


# A count of nodes, sockets, cores or GPUs: positive and of a size a real system has (a typo of 10**30 is refused).
Count = Annotated[int, Field(gt=0, le=100_000)]


def _zero_text(value: Any) -> Any:
    return 0 if value == "0" else value


# GPUs per node: 0 for a CPU-only system, also as the string "0" that published CPU submissions write.
AcceleratorCount = Annotated[int, BeforeValidator(_zero_text), Field(ge=0, le=100_000), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 100_000}, {"const": "0"}]})]


class SystemDescription(BaseModel):
    """systems/<system_desc_id>.json: every key the checker requires, typed as the checker needs."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True,
                              json_schema_extra={"additionalProperties": False})

    division: StrictStr = _text("division dir name, exactly: open | closed | network")
    submitter: StrictStr = _text("the submitter dir name (compared case-insensitively)")
    status: StrictStr = _text("available | preview | rdi")
    system_name: StrictStr = _text("human-readable system name")
    system_type: StrictStr = _text("datacenter (Llama 2 70B exists only there); no spaces")
    system_type_detail: StrictStr = _text("cloud, on-premise ...; may be empty")
    number_of_nodes: Count = Field(description="nodes in the system under test")
    host_processor_model_name: StrictStr = _text("CPU model")
    host_processors_per_node: Count = Field(description="CPU sockets per node")
    host_processor_core_count: Count = Field(description="cores per CPU socket")
    host_processor_frequency: StrictStr = _text("may be empty")
    host_processor_caches: StrictStr = _text("may be empty")
    host_processor_interconnect: StrictStr = _text("may be empty")
    host_memory_capacity: StrictStr = _text("memory per node, e.g. 2 TB")
    host_memory_configuration: StrictStr = _text("DIMM layout, e.g. 32x 64 GB DDR5")
    host_storage_capacity: StrictStr = _text("storage per node")
    host_storage_type: StrictStr = _text("e.g. NVMe SSD")
    host_network_card_count: StrictStr = _text("NICs per node, with speed")
    host_networking: StrictStr = _text("the inter-node fabric, e.g. RoCE v2 400 Gb/s")
    host_networking_topology: StrictStr = _text("fabric topology")
    accelerators_per_node: AcceleratorCount = Field(description="GPUs per node; \"0\" (or 0) for a CPU-only system")
    accelerator_model_name: StrictStr = _text("GPU model")
    accelerator_memory_capacity: StrictStr = _text("memory per GPU")
    accelerator_memory_configuration: StrictStr = _text("e.g. HBM3")
    accelerator_host_interconnect: StrictStr = _text("e.g. PCIe Gen5 x16")
    accelerator_interconnect: StrictStr = _text("GPU-GPU link inside a node, e.g. NVLink")
    accelerator_interconnect_topology: StrictStr = _text("may be empty")
    accelerator_frequency: StrictStr = _text("may be empty")
    accelerator_on_chip_memories: StrictStr = Field(alias="accelerator_on-chip_memories",
                                                    description="may be empty")
    cooling: StrictStr = _text("air-cooled, liquid-cooled ...")
    framework: StrictStr = _text("inference framework and version")
    operating_system: StrictStr = _text("OS name and version")
    other_software_stack: StrictStr = _text("driver, CUDA, NCCL, MPI versions")
    hw_notes: StrictStr = _text("may be empty")
    sw_notes: StrictStr = _text("may be empty")


REQUIRED_KEYS: tuple[str, ...] = tuple(
    (info.alias or name) for name, info in SystemDescription.model_fields.items())
MEANINGFUL_KEYS: tuple[str, ...] = tuple(EXAMPLES)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a system description (what submission/schemas/ ships)."""
    schema = SystemDescription.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "MLPerf Inference system description (systems/<system_desc_id>.json)"
    schema["required"] = list(REQUIRED_KEYS)
    for key in POWER_KEYS:
        schema["properties"][key] = {"description": "power field; the checker only warns about it"}
    for key in MEANINGFUL_KEYS:
        prop = schema["properties"][key]
        if prop.get("type") == "string":
            prop["minLength"] = 1
    return schema


def shipped_schema() -> dict[str, Any]:
    """The JSON Schema file shipped in the package."""
    text = resources.files("submission").joinpath(f"schemas/{SCHEMA_FILE}").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def is_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        text = value.strip()
        return text.lower() in PLACEHOLDERS or (text.startswith("<") and text.endswith(">"))
    return value is None or value is False or value == 0


def is_cpu_only(data: dict[str, Any]) -> bool:
    """accelerators_per_node is 0 or "0": the accelerator fields may say "N/A"."""
    return data.get("accelerators_per_node") in (0, "0")


def _may_be_placeholder(data: dict[str, Any], key: str) -> bool:
    """A CPU-only system's accelerator fields (a non-empty text such as "N/A", or the count 0)."""
    value = data[key]
    return is_cpu_only(data) and key in ACCELERATOR_KEYS and (value in (0, "0") or (
        isinstance(value, str) and value.strip() != ""))


def _refuse(where: str, key: str, problem: str) -> str:
    example = EXAMPLES.get(key)
    fix = f"; set e.g. {json.dumps(example)}" if example is not None else ""
    return f"{where}: {key} {problem}{fix}"


def problems(data: dict[str, Any], where: str = "system description") -> list[str]:
    """Every reason this system description would fail the checker, one line each (empty = fine)."""
    empty = [key for key in MEANINGFUL_KEYS
             if key in data and is_placeholder(data[key]) and not _may_be_placeholder(data, key)]
    found = [_refuse(where, key, f"is {json.dumps(data[key])}; placeholders are refused") for key in empty]
    found += _schema_problems(data, where, skip=set(empty))
    found += _value_problems(data, where)
    if not found:
        found = [f"{where}: {err}" for err in _shipped_schema_errors(data)]
    return list(dict.fromkeys(found))


def _shipped_schema_errors(data: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(shipped_schema())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
            for e in validator.iter_errors(data)]


def _schema_problems(data: dict[str, Any], where: str, skip: set[str]) -> list[str]:
    found = []
    if "is_network" in data:
        found.append(f"{where}: is_network is {json.dumps(data['is_network'])}; omit the key (a boolean "
                     "crashes the v4.0/v5.1 checker and \"false\" makes HEAD demand 13 network keys)")
    for key in REQUIRED_KEYS:
        if key not in data:
            found.append(_refuse(where, key, "is missing"))
    for key in data:
        if key not in REQUIRED_KEYS and key not in POWER_KEYS and key != "is_network":
            found.append(f"{where}: {key} is not a system-description key; remove it or fix its spelling")
    try:
        SystemDescription.model_validate({k: v for k, v in data.items() if k in REQUIRED_KEYS})
    except ValidationError as err:
        for item in err.errors():
            key = str(item["loc"][0]) if item["loc"] else "?"
            if item["type"] == "missing" or key in skip:
                continue
            found.append(_refuse(where, key, f"is {json.dumps(item.get('input'))}; {item['msg'].lower()}"))
    return found


def _value_problems(data: dict[str, Any], where: str) -> list[str]:
    found = []
    division = data.get("division")
    if isinstance(division, str) and division not in DIVISIONS:
        found.append(f"{where}: division is {json.dumps(division)}; the checker needs exactly one of "
                     f"{', '.join(DIVISIONS)} (lower case, equal to the division directory)")
    status = data.get("status")
    if isinstance(status, str) and status.lower() not in STATUSES and not is_placeholder(status):
        found.append(f"{where}: status is {json.dumps(status)}; expected one of {', '.join(STATUSES)}")
    system_type = data.get("system_type")
    if isinstance(system_type, str) and system_type not in ANY_SYSTEM_TYPES and not is_placeholder(system_type):
        found.append(f"{where}: system_type is {json.dumps(system_type)}; expected exactly one of "
                     f"{', '.join(ANY_SYSTEM_TYPES)} (no space)")
    return found


def load_system(path: Path) -> SystemDescription:
    """Read and validate a systems/*.json file; InputError lists every problem with its fix."""
    data = read_system_json(path)
    found = problems(data, str(path))
    if found:
        more = f" (and {len(found) - 1} more: {'; '.join(found[1:])})" if len(found) > 1 else ""
        raise InputError(found[0] + more, hint=f"edit {path}; `submission system validate {path}` lists all")
    return SystemDescription.model_validate(data)


def read_system_json(path: Path) -> dict[str, Any]:
    """The raw JSON object of a system description, or an InputError naming the file."""
    if not path.is_file():
        raise InputError(f"system description {not_there(path, 'the system description JSON file')}",
                         hint="create it with `submission system detect --output FILE` and fill the rest")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} holds a JSON {type(data).__name__}; expected an object of system keys")
    return data


def system_id(path: Path) -> str:
    """The system_desc_id: the file name without .json; refused when it would break the tree."""
    name = path.name.removesuffix(".json")
    if not name or name.startswith(".") or any(c.isspace() or c in "/\\" for c in name):
        raise InputError(f"system file name {path.name!r} cannot be a system_desc_id; expected a name "
                         "without spaces that does not start with '.'", hint="rename it, e.g. 2xH100x8_TRT.json")
    return name
