"""Friendly model names (`qwen3-vl-8b`, `gpt-4o`, ...) from `aliases.toml`, with their metadata.

Which backend an open alias runs on depends on the machine; that choice is made in
`cvbench.model_adapters.availability.choose_backend`. This module only reads and validates the
alias file.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cvbench.core.types import Access

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ALIASES_FILE = Path(__file__).with_name("aliases.toml")
ACCESS_KINDS: dict[str, Access] = {"api": "api", "open": "open", "native": "native"}
_FIELDS = {
    "display_name",
    "access",
    "params_b",
    "target",
    "hf_repo",
    "transformers_repo",
    "served_name",
    "max_tokens",
    "image_policy",
    "notes",
    "model_options",
}


class AliasFileError(ValueError):
    """aliases.toml is wrong; the message names the file, the alias and the field."""


@dataclass(frozen=True)
class Alias:
    name: str
    display_name: str
    access: Access  # "api" | "open" | "native"
    params_b: float | None = None
    target: str | None = None  # api/native: the provider:model string
    hf_repo: str | None = None  # open: the Hugging Face repo (and default served name)
    transformers_repo: str | None = None  # open: repo for the transformers backend when it differs
    served_name: str | None = None  # open: model name on an OpenAI-compatible server when not hf_repo
    max_tokens: int | None = None
    image_policy: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""
    model_options: Mapping[str, Any] = field(default_factory=dict)  # adapter options (--model-option wins)

    def backend_specs(self) -> dict[str, str]:
        """`provider:model` per backend that can run this alias, in order of preference."""
        if self.access != "open":
            return {self.target.partition(":")[0]: self.target} if self.target else {}
        assert self.hf_repo is not None
        return {
            "openai-compatible": f"openai-compatible:{self.served_name or self.hf_repo}",
            "vllm": f"vllm:{self.hf_repo}",
            "hf": f"hf:{self.transformers_repo or self.hf_repo}",
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "access": self.access,
            "params_b": self.params_b,
            "target": self.target,
            "hf_repo": self.hf_repo,
            "transformers_repo": self.transformers_repo,
            "served_name": self.served_name,
            "max_tokens": self.max_tokens,
            "image_policy": dict(self.image_policy),
            "notes": self.notes,
            "model_options": dict(self.model_options),
        }


def _typed(source: str, name: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise AliasFileError(f"{source}: [{name}] {key} must be {expected}, got {value!r}")
    return value


def parse_aliases(data: Mapping[str, Any], source: str) -> dict[str, Alias]:
    aliases: dict[str, Alias] = {}
    for name, entry in data.items():
        if not isinstance(entry, Mapping):
            raise AliasFileError(f"{source}: [{name}] must be a table")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise AliasFileError(f"{source}: [{name}] unknown field(s) {', '.join(sorted(unknown))}")
        if ":" in name:
            raise AliasFileError(f"{source}: [{name}] an alias name cannot contain ':'")
        access = _typed(source, name, "access", entry.get("access"), str)
        if access not in ACCESS_KINDS:
            raise AliasFileError(f"{source}: [{name}] access must be one of {', '.join(ACCESS_KINDS)}, got {access!r}")
        kind = ACCESS_KINDS[access]
        alias = Alias(
            name=name,
            display_name=_typed(source, name, "display_name", entry.get("display_name", name), str),
            access=kind,
            params_b=float(_typed(source, name, "params_b", entry["params_b"], (int, float)))
            if "params_b" in entry
            else None,
            target=_typed(source, name, "target", entry["target"], str) if "target" in entry else None,
            hf_repo=_typed(source, name, "hf_repo", entry["hf_repo"], str) if "hf_repo" in entry else None,
            transformers_repo=_typed(source, name, "transformers_repo", entry["transformers_repo"], str)
            if "transformers_repo" in entry
            else None,
            served_name=_typed(source, name, "served_name", entry["served_name"], str)
            if "served_name" in entry
            else None,
            max_tokens=_typed(source, name, "max_tokens", entry["max_tokens"], int) if "max_tokens" in entry else None,
            image_policy=dict(_typed(source, name, "image_policy", entry.get("image_policy", {}), dict)),
            notes=_typed(source, name, "notes", entry.get("notes", ""), str),
            model_options=dict(_typed(source, name, "model_options", entry.get("model_options", {}), dict)),
        )
        if access == "open" and not alias.hf_repo:
            raise AliasFileError(f"{source}: [{name}] an open alias needs hf_repo")
        if access != "open" and (not alias.target or ":" not in alias.target):
            raise AliasFileError(f'{source}: [{name}] an {access} alias needs target = "provider:model"')
        if alias.max_tokens is not None and alias.max_tokens < 1:
            raise AliasFileError(f"{source}: [{name}] max_tokens must be >= 1")
        aliases[name] = alias
    return aliases


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Alias]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AliasFileError(f"{path}: {exc}") from exc
    return parse_aliases(data, str(path))


def load_aliases(path: Path | None = None) -> dict[str, Alias]:
    """All aliases, by name (the shipped `aliases.toml` unless `path` is given)."""
    return dict(_load((path or ALIASES_FILE).resolve()))


def find_alias(name: str, path: Path | None = None) -> Alias | None:
    return load_aliases(path).get(name.strip())


def alias_for_model_id(model_id: str, path: Path | None = None) -> Alias | None:
    """The alias a resolved model id belongs to (e.g. `vllm:Qwen/Qwen3-VL-8B-Instruct` -> qwen3-vl-8b)."""
    for alias in load_aliases(path).values():
        if model_id in alias.backend_specs().values():
            return alias
    return None
