"""The submitter's hand-kept measurements/ folder: per system, benchmark and scenario, the tuned LoadGen settings.

Layout (beside systems/, as the product names it): ``measurements/<system>/<benchmark>/<scenario>/`` holds
``user.conf`` (LoadGen's own syntax, ``<model>.<Scenario>.<key> = <value>``, ``*`` for any model or scenario: the
target QPS and other settings a submitter tunes), ``measurements.json`` (the hand-written keys of the measurements
JSON: where the weights came from and what was done to them) and optionally ``README.md`` (calibration notes).
`harness run --set system=systems/<system>.json` applies the user.conf under the run's explicit settings; the
packager (`submission package --system ...`) reads the JSON and the notes. Everything here is parsed as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, InputError

__all__ = ["LOADGEN_KEYS", "MEASUREMENTS_JSON", "NOTES", "USER_CONF", "MeasurementsDir", "measurements_dir",
           "read_user_conf"]

USER_CONF, MEASUREMENTS_JSON, NOTES = "user.conf", "measurements.json", "README.md"
# user.conf key -> the run config's loadgen field (harness.settings.LoadGenConfig)
LOADGEN_KEYS = {"target_qps": "target_qps", "min_duration": "min_duration", "max_duration": "max_duration",
                "min_query_count": "min_query_count", "max_query_count": "max_query_count",
                "performance_sample_count_override": "performance_sample_count_override",
                "coalesce_queries": "server_coalesce_queries"}
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class MeasurementsDir:
    """measurements/<system>/<benchmark>/<scenario> of one system description."""

    path: Path
    system: str

    @property
    def user_conf(self) -> Path:
        """The tuned LoadGen settings."""
        return self.path / USER_CONF

    @property
    def measurements_json(self) -> Path:
        """The hand-written measurements keys."""
        return self.path / MEASUREMENTS_JSON

    @property
    def notes(self) -> Path:
        """Calibration and tuning notes."""
        return self.path / NOTES


def measurements_dir(system_json: Path, benchmark: str, scenario: str) -> MeasurementsDir:
    """The folder of a system description (systems/<id>.json -> measurements/<id>/<benchmark>/<scenario>)."""
    if system_json.suffix != ".json" or not system_json.is_file():
        raise ConfigError(f"system is {str(system_json)!r}; expected an existing systems/<id>.json file",
                          hint="point system at the system description (`submission system detect` writes one)")
    root = system_json.resolve().parent.parent / "measurements" / system_json.stem
    return MeasurementsDir(root / benchmark / scenario, system_json.stem)


def read_user_conf(path: Path, models: tuple[str, ...], scenario: str) -> dict[str, float | int]:
    """The LoadGen values a user.conf sets for one of `models` (or `*`) and `scenario` (or `*`), by config field.

    A more specific line wins over a `*` line, a later line over an earlier one of the same specificity, as in
    LoadGen. Unknown keys, non-numbers and malformed lines are one-line errors naming the file and line.
    """
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise InputError(f"{path} is {path.stat().st_size} bytes; expected a user.conf of at most {_MAX_BYTES}",
                             hint="keep only the LoadGen settings you tuned in it")
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}",
                         hint="check the file and its permissions") from None
    chosen: dict[str, tuple[int, float | int]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path} line {number}"
        name, equals, value = line.partition("=")
        parts = name.strip().split(".")
        if not equals or len(parts) != 3 or not value.strip():
            raise InputError(f"{where} is {raw.strip()!r}; expected <model>.<Scenario>.<key> = <number>",
                             hint="write LoadGen's own user.conf syntax, e.g. llama2-70b.Server.target_qps = 12.5")
        model, line_scenario, key = parts
        if key not in LOADGEN_KEYS:
            raise InputError(f"{where} sets {key!r}; the harness renders only {', '.join(LOADGEN_KEYS)}",
                             hint="remove the line, or set it through the run config's loadgen section")
        if (model not in (*models, "*")) or line_scenario not in (scenario, "*"):
            continue
        number_value = _number(value.strip(), where)
        rank = (model != "*") + (line_scenario != "*")
        field = LOADGEN_KEYS[key]
        if field not in chosen or rank >= chosen[field][0]:
            chosen[field] = (rank, number_value)
    return {field: value for field, (_, value) in chosen.items()}


def _number(text: str, where: str) -> float | int:
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where} has value {text!r}; expected an integer or a number",
                         hint="LoadGen reads only numbers from user.conf") from None
