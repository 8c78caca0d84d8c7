"""Declared, typed `--model-option` values of the API adapters.

Each API adapter module lists its options as `OptionSpec`s; `read_options` turns the raw
`ModelOptions.extra` (strings from the command line, or JSON-ish values from Python callers)
into typed values, and rejects unknown keys with the list of valid ones. A bool accepts
true/false in any case (never `bool("False")`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cvbench.model_adapters.registry import ModelResolutionError

OptionType = str  # "bool" | "int" | "float" | "str" | "choice" | "headers"


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: OptionType
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None


# Options every API adapter takes (retry tuning comes from the environment as well).
COMMON_API_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("base_url", "str", "endpoint URL instead of the provider's"),
    OptionSpec("display_name", "str", "name shown in reports"),
    OptionSpec("retry_base_delay_s", "float", "first backoff step in seconds", minimum=0),
    OptionSpec("retry_max_delay_s", "float", "longest backoff wait in seconds", minimum=0),
    OptionSpec("retry_max_hint_s", "float", "longest server-requested wait honoured (default 300)", minimum=0),
)


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "true":
        return True
    if text == "false":
        return False
    raise ModelResolutionError(f"model option {name}={value!r}: expected true or false")


def _number(spec: OptionSpec, value: Any) -> int | float:
    if isinstance(value, bool):
        raise ModelResolutionError(f"model option {spec.name}={value!r}: expected a number")
    try:
        number: int | float = int(str(value).strip()) if spec.type == "int" else float(str(value).strip())
    except ValueError as exc:
        kind = "an integer" if spec.type == "int" else "a number"
        raise ModelResolutionError(f"model option {spec.name}={value!r}: expected {kind}") from exc
    if spec.minimum is not None and number < spec.minimum:
        raise ModelResolutionError(f"model option {spec.name}={value!r}: must be >= {spec.minimum:g}")
    return number


def _headers(name: str, value: Any) -> dict[str, str]:
    """HTTP headers as a JSON object of names to text values (values never echoed in errors)."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ModelResolutionError(
                f"model option {name}: expected a JSON object of header names to values, "
                f'e.g. {name}={{"X-Name": "value"}}'
            ) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ModelResolutionError(f"model option {name}: expected a JSON object of header names to text values")
    return dict(value)


def coerce(spec: OptionSpec, value: Any) -> Any:
    """One option value, typed; ModelResolutionError naming the option otherwise."""
    if spec.type == "bool":
        return _bool(spec.name, value)
    if spec.type in ("int", "float"):
        return _number(spec, value)
    if spec.type == "headers":
        return _headers(spec.name, value)
    if isinstance(value, (dict, list)):
        raise ModelResolutionError(f"model option {spec.name}={value!r}: expected text")
    text = str(value).strip()
    if spec.type == "choice" and text.lower() not in spec.choices:
        raise ModelResolutionError(f"model option {spec.name}={value!r}: expected one of {', '.join(spec.choices)}")
    return text.lower() if spec.type == "choice" else text


def read_options(extra: Mapping[str, Any], specs: Sequence[OptionSpec], backend: str) -> dict[str, Any]:
    """The given options, typed against `specs`; an unknown key lists the valid ones."""
    by_name = {s.name: s for s in specs}
    unknown = sorted(set(extra) - set(by_name))
    if unknown:
        raise ModelResolutionError(
            f"{backend}: unknown model option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(by_name))}"
        )
    return {name: coerce(by_name[name], value) for name, value in extra.items() if value is not None}


def describe(specs: Sequence[OptionSpec]) -> list[str]:
    """One line per option, for `cvbench models --options`-style listings and error messages."""
    lines = []
    for spec in specs:
        kind = "|".join(spec.choices) if spec.type == "choice" else spec.type
        lines.append(f"{spec.name} ({kind}): {spec.help}")
    return lines
