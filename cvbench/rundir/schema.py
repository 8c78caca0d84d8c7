"""Typed JSON values of the run directory: one decoder and one encoder for every dataclass here.

A field says everything about itself in its metadata (`jfield`): its JSON key, whether the file
must have it, how a value is checked, and whether it is part of the run's identity (what must
match to resume or merge) or of its comparability (what must match for a paired comparison to
mean what it says). `identity_keys` / `comparable_keys` read those marks; no list is kept by hand.

Reading keeps which optional keys a file left out (`absent`), so a file read and written again is
the same JSON. A missing required key, an unknown key or a value of the wrong type is a
`RunDirError` naming the file and the dotted field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from cvbench.rundir.io import RunDirError

T = TypeVar("T")


@dataclass(frozen=True)
class Where:
    """A place in a file, for error messages: 'results.json: field evaluations.x@4.overall.n'."""

    file: Path
    path: str = ""

    def at(self, key: object) -> Where:
        return Where(self.file, f"{self.path}.{key}" if self.path else str(key))

    def error(self, problem: str) -> RunDirError:
        return RunDirError(f"{self.file}: field '{self.path}' {problem}")

    def wrong(self, expected: str, value: object) -> RunDirError:
        shown = json.dumps(value, ensure_ascii=False, default=str)
        return self.error(f"must be {expected}, got {shown[:120]}")


Decoder = Callable[[Any, Where], Any]


def jfield(
    decode: Decoder,
    *,
    key: str | None = None,
    required: bool = False,
    identity: bool = False,
    comparable: bool = False,
    omit_none: bool = False,
    default: Any = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A field of a run-directory value. `omit_none`: the writer leaves the key out when None
    (keys the runner writes only sometimes: `resumed`, `merged_from`, `image_contract`)."""
    meta = {
        "json": key,
        "decode": decode,
        "required": required,
        "identity": identity,
        "comparable": comparable,
        "omit_none": omit_none,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _json_fields(cls: type) -> list[Field[Any]]:
    return [f for f in fields(cls) if "decode" in f.metadata]


def json_key(f: Field[Any]) -> str:
    return str(f.metadata.get("json") or f.name)


def identity_keys(cls: type) -> tuple[str, ...]:
    """JSON keys of `cls` marked as identity, in declaration order."""
    return tuple(json_key(f) for f in _json_fields(cls) if f.metadata.get("identity"))


def comparable_keys(cls: type) -> tuple[str, ...]:
    return tuple(json_key(f) for f in _json_fields(cls) if f.metadata.get("comparable"))


def decode_object(cls: type[T], data: Any, where: Where) -> T:
    """`data` (parsed JSON) as a `cls`, every field checked by its decoder."""
    if not isinstance(data, Mapping):
        raise where.wrong("an object", data)
    specs = _json_fields(cls)
    known = {json_key(f) for f in specs}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise where.at(unknown[0]).error(f"is not a field of this schema (known: {', '.join(sorted(known))})")
    kwargs: dict[str, Any] = {}
    absent: list[str] = []
    for f in specs:
        name = json_key(f)
        if name not in data:
            if f.metadata["required"]:
                raise where.at(name).error("is missing")
            absent.append(name)
            continue
        kwargs[f.name] = f.metadata["decode"](data[name], where.at(name))
    if "absent" in {f.name for f in fields(cls)}:  # type: ignore[arg-type]
        kwargs["absent"] = frozenset(absent)
    return cls(**kwargs)


def encode(value: Any) -> Any:
    """A typed value back to plain JSON data (the one writer's half)."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        absent: frozenset[str] = getattr(value, "absent", frozenset())
        for f in _json_fields(type(value)):
            name = json_key(f)
            item = getattr(value, f.name)
            # a key the file left out stays out while it holds what its absence decoded to; a value
            # set since (a resume's `resumed`) is written
            if (name in absent and item == _default_of(f)) or (item is None and f.metadata.get("omit_none")):
                continue
            out[name] = encode(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def _default_of(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def absent_field() -> Any:
    """The set of optional keys the file left out (not JSON itself)."""
    return field(default=frozenset(), compare=False, repr=False)


# ------------------------------------------------------------------------------ decoders


def any_json(value: Any, where: Where) -> Any:
    return value


def text(value: Any, where: Where) -> str:
    if not isinstance(value, str):
        raise where.wrong("a string", value)
    return value


def integer(value: Any, where: Where) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.wrong("a whole number", value)
    return value


def number(value: Any, where: Where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.wrong("a number", value)
    return value  # kept as written (an int stays an int): the file reads back identically


def flag(value: Any, where: Where) -> bool:
    if not isinstance(value, bool):
        raise where.wrong("true or false", value)
    return value


def obj(value: Any, where: Where) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise where.wrong("an object", value)
    return value


def optional(decode: Decoder) -> Decoder:
    def run(value: Any, where: Where) -> Any:
        return None if value is None else decode(value, where)

    return run


def list_of(decode: Decoder) -> Decoder:
    def run(value: Any, where: Where) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise where.wrong("a list", value)
        return tuple(decode(v, where.at(i)) for i, v in enumerate(value))

    return run


def pair_of(decode: Decoder) -> Decoder:
    def run(value: Any, where: Where) -> tuple[Any, Any]:
        if not isinstance(value, list) or len(value) != 2:
            raise where.wrong("a list of two", value)
        return (decode(value[0], where.at(0)), decode(value[1], where.at(1)))

    return run


def dict_of(decode: Decoder) -> Decoder:
    def run(value: Any, where: Where) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise where.wrong("an object", value)
        return {str(k): decode(v, where.at(k)) for k, v in value.items()}

    return run


def one_of(*allowed: str) -> Decoder:
    def run(value: Any, where: Where) -> str:
        if value not in allowed:
            raise where.wrong("one of " + ", ".join(allowed), value)
        return str(value)

    return run


def exactly(expected: str, hint: str) -> Decoder:
    def run(value: Any, where: Where) -> str:
        if value != expected:
            raise where.error(f"is {json.dumps(value)}; this cvbench reads {expected} ({hint})")
        return expected

    return run


def nested(cls: type[T]) -> Decoder:
    def run(value: Any, where: Where) -> T:
        return decode_object(cls, value, where)

    return run


# ------------------------------------------------------------------------------ comparing


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON data as {dotted path: leaf}; list entries that name themselves (tasks,
    evaluations, shards) are keyed by that name rather than by position."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in value:
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, item in enumerate(value):
            tag = str(item.get("name") or item.get("task") or item.get("id") or i)
            out.update(flatten(item, f"{prefix}[{tag}]"))
        return out
    if isinstance(value, tuple):
        return {prefix: list(value)}
    return {prefix: value}


ABSENT = "<absent>"


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted path, value in a, value in b) for every leaf that differs; ABSENT where one side lacks it."""
    flat_a, flat_b = flatten(a), flatten(b)
    out = []
    for key in sorted(set(flat_a) | set(flat_b)):
        va, vb = flat_a.get(key, ABSENT), flat_b.get(key, ABSENT)
        if va != vb:
            out.append((key, va, vb))
    return out
