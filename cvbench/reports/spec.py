"""The run spec: what a row or a report is, in one line (model, mode, style, settings, image
policy, protocol), read from the run's typed config. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cvbench.rundir.config import RunConfig

# The order parts are shown in; the model is the row's name and is not repeated.
SPEC_PARTS: tuple[str, ...] = ("mode", "style", "settings", "image", "protocol")


@dataclass(frozen=True)
class RunSpec:
    model: str
    parts: tuple[tuple[str, str], ...]  # (part, text) in SPEC_PARTS order

    @property
    def text(self) -> str:
        return " · ".join(v for _, v in self.parts if v)

    def value(self, part: str) -> str:
        return dict(self.parts).get(part, "")


def _image_policy(image: Mapping[str, Any] | None) -> str:
    if not image:
        return ""
    fmt = str(image.get("format") or "png")
    text = f"jpeg q{image.get('jpeg_quality')}" if fmt == "jpeg" else fmt
    if image.get("max_side"):
        text += f" ≤{image['max_side']}px"
    if image.get("max_pixels"):
        text += f" ≤{image['max_pixels']} px²"
    return text


def _protocol(protocol: Mapping[str, Any] | None, benchmarks: Sequence[str]) -> str:
    if not protocol:
        return ""
    wanted = [b for b in benchmarks if b in protocol] or sorted(protocol)
    return ", ".join(str(protocol[b]) for b in wanted)


def run_spec(config: RunConfig, tasks: Sequence[str] | None = None) -> RunSpec:
    """The spec of a run, for the given tasks (default: all of the run's tasks)."""
    wanted = list(tasks if tasks is not None else (config.tasks or ()))
    prompt = config.prompt_settings or {}
    mode = config.mode or str(prompt.get("mode") or "auto")
    style = config.style or str(prompt.get("style") or "")
    if not style and mode != "native":
        style = "default style"
    if mode == "native":
        style = ""
    settings = []
    for task in wanted:
        values = (config.candidates or {}).get(task) or ()
        if tuple(values) != ("all",) and values:
            settings.append(f"{', '.join(values)} candidates")
    benchmarks = [e.benchmark for t, e in (config.datasets or {}).items() if t in wanted and e.benchmark]
    parts = (
        ("mode", mode),
        ("style", style),
        ("settings", "; ".join(dict.fromkeys(settings))),
        ("image", _image_policy(prompt.get("image") if isinstance(prompt.get("image"), Mapping) else None)),
        ("protocol", _protocol(config.protocol, benchmarks)),
    )
    return RunSpec(model=config.model.spec or config.model.id, parts=parts)


def differing_parts(specs: Mapping[str, tuple[str, RunSpec]]) -> dict[str, frozenset[str]]:
    """row id -> the spec parts that differ from another row of the same model (to emphasise).
    `specs`: row id -> (model id, spec)."""
    by_model: dict[str, list[RunSpec]] = {}
    for model, spec in specs.values():
        by_model.setdefault(model, []).append(spec)
    out: dict[str, frozenset[str]] = {}
    for row_id, (model, _spec) in specs.items():
        others = by_model[model]
        if len(others) < 2:
            out[row_id] = frozenset()
            continue
        out[row_id] = frozenset(p for p in SPEC_PARTS if len({o.value(p) for o in others}) > 1)
    return out
