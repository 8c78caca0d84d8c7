"""What can run on this machine, and why not: the facts behind alias resolution and `cvbench models`.

`probe_environment` is the only function here that looks at the machine (installed packages,
CUDA, key variables, endpoints); everything else is a pure function of the `Environment` it
returns, so tests can state an environment instead of faking imports.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cvbench.core.redaction import redact_url_credentials
from cvbench.core.secrets import secret_is_set
from cvbench.model_adapters.aliases import Alias, load_aliases
from cvbench.model_adapters.image_policy import contract_for
from cvbench.model_adapters.reasoning import reasoning_summary
from cvbench.model_adapters.registry import (
    PROVIDERS,
    ModelOptions,
    ModelResolutionError,
    Provider,
)

VLLM_URL_ENV = "CVBENCH_VLLM_URL"


@dataclass(frozen=True)
class Requirement:
    """What a provider needs: importable modules (and the extra providing them), keys, a GPU, a server."""

    modules: tuple[str, ...] = ()
    extra: str | None = None
    key_vars: tuple[str, ...] = ()  # any one of them
    needs_cuda: bool = False
    needs_base_url: bool = False
    note: str = ""


REQUIREMENTS: dict[str, Requirement] = {
    "openai": Requirement(("openai",), "openai", ("OPENAI_API_KEY",)),
    "anthropic": Requirement(("anthropic",), "anthropic", ("ANTHROPIC_API_KEY",)),
    "google": Requirement(("google.genai",), "google", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    "openai-compatible": Requirement(("openai",), "openai", needs_base_url=True),
    "vllm": Requirement(("vllm",), "vllm", needs_cuda=True),
    "hf": Requirement(("torch", "transformers"), "local", note="runs on CPU too, slowly"),
    "crossviewer": Requirement(
        ("torch", "transformers"), "local", note="needs the CrossViewer code folder and a checkpoint; a GPU in practice"
    ),
    "colva": Requirement(("torch", "transformers"), "local", note="a 4B model: a GPU in practice"),
    "lmms": Requirement(("lmms_eval",), "lmms"),
}


@dataclass(frozen=True)
class Environment:
    """The facts about this machine that decide what can run."""

    importable: frozenset[str]  # modules (requirements and cvbench backend modules) that can be imported
    cuda: bool
    keys: Mapping[str, str] = field(default_factory=dict)  # key variable -> "NAME (env)" / "NAME (.env)"
    base_urls: tuple[str, ...] = ()  # --base-url, else CVBENCH_VLLM_URL


def backend_module(provider: Provider) -> str:
    """The cvbench module that implements a provider (`cvbench.model_adapters.openai_api`)."""
    return provider.factory.partition(":")[0]


def _module_importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def nvidia_driver_visible(root: Path = Path("/")) -> bool:
    """Whether a Linux machine shows any sign of an NVIDIA driver: /proc/driver/nvidia, a
    /dev/nvidia<N> device node, or WSL2's GPU bridge /dev/dxg. Without one torch cannot see a
    GPU, so the (seconds-long) torch import can be skipped. Elsewhere (Windows) it cannot tell: True."""
    if not (root / "proc").is_dir() or not (root / "dev").is_dir():
        return True
    dev = root / "dev"
    return (
        (root / "proc" / "driver" / "nvidia").exists()
        or (dev / "dxg").exists()
        or any(p.name[6:].isdigit() for p in dev.glob("nvidia*"))
    )


@lru_cache(maxsize=1)
def _cuda_available() -> bool:
    if not _module_importable("torch") or not nvidia_driver_visible():
        return False
    try:
        import torch  # heavy: imported only when torch is installed and the question is asked

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def probe_environment(
    options: ModelOptions | None = None,
    environ: Mapping[str, str] | None = None,
    directory: Path | None = None,
    probe_cuda: bool = True,
) -> Environment:
    """The facts about this machine. `probe_cuda=False` skips the (slow) torch import and says no GPU."""
    env = os.environ if environ is None else environ
    modules = {m for r in REQUIREMENTS.values() for m in r.modules} | {backend_module(p) for p in PROVIDERS.values()}
    importable = frozenset(m for m in modules if _module_importable(m))
    key_vars = {v for r in REQUIREMENTS.values() for v in r.key_vars}
    keys = {}
    for var in sorted(key_vars):
        where = secret_is_set((var,), env, directory)
        if where:
            keys[var] = where
    urls = tuple(u for u in (options.base_urls if options else ()) if u)
    if not urls:
        urls = tuple(u.strip() for u in env.get(VLLM_URL_ENV, "").split(",") if u.strip())
    cuda = probe_cuda and "torch" in importable and _cuda_available()
    return Environment(importable=importable, cuda=cuda, keys=keys, base_urls=urls)


@dataclass(frozen=True)
class Availability:
    """Whether a provider or alias can run here; if not, why and how to fix it."""

    name: str
    kind: str  # "provider" | "alias"
    can_run: bool
    runs_as: str | None = None  # the provider:model an alias resolves to here
    problems: tuple[str, ...] = ()  # why not (or caveats)
    fixes: tuple[str, ...] = ()  # what would make it run
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "can_run": self.can_run,
            "runs_as": self.runs_as,
            "problems": list(self.problems),
            "fixes": list(self.fixes),
            "description": self.description,
            **({"metadata": dict(self.metadata)} if self.metadata else {}),
        }


def check_provider(name: str, env: Environment) -> tuple[list[str], list[str]]:
    """(problems, fixes) for a provider; both empty when it can run here."""
    problems: list[str] = []
    fixes: list[str] = []
    provider = PROVIDERS.get(name)
    module = backend_module(provider) if provider else None
    if module is not None and module not in env.importable:
        problems.append(f"backend module {module} is not part of this cvbench installation")
        fixes.append("upgrade cvbench")
    req = REQUIREMENTS.get(name)
    if req is None:
        return problems, fixes  # baselines and anything without requirements
    missing = [m for m in req.modules if m not in env.importable]
    if missing:
        problems.append(f"missing package(s): {', '.join(missing)}")
        fixes.append(f"pip install 'cvbench[{req.extra}]'")
    if req.key_vars and not any(v in env.keys for v in req.key_vars):
        problems.append(f"no API key: {' or '.join(req.key_vars)} is not set")
        fixes.append(f"export {req.key_vars[0]}=... (or put it in ./.env)")
    if req.needs_cuda and not env.cuda:
        problems.append("no CUDA GPU")
        fixes.append("run on a machine with a CUDA GPU")
    if req.needs_base_url and not env.base_urls:
        problems.append(f"no server: neither --base-url nor {VLLM_URL_ENV} is given")
        fixes.append(f"start `vllm serve MODEL` and pass --base-url http://HOST:PORT/v1 (or set {VLLM_URL_ENV})")
    return problems, fixes


def diagnose_alias(alias: Alias, env: Environment) -> tuple[str | None, list[str], list[str]]:
    """(the provider:model the alias runs as here or None, why each backend cannot, ways to make it run)."""
    problems: list[str] = []
    fixes: list[str] = []
    for provider, spec in alias.backend_specs().items():
        provider_problems, provider_fixes = check_provider(provider, env)
        if not provider_problems:
            return spec, [], []
        problems.append(f"{spec}: {'; '.join(provider_problems)}")
        fixes.extend(f for f in provider_fixes if f not in fixes)
    if alias.access == "open":
        served = alias.served_name or alias.hf_repo
        fixes = [
            (
                f"serve it with vLLM (`vllm serve {served}`) and pass --base-url http://HOST:PORT/v1 "
                f"(or set {VLLM_URL_ENV})"
            ),
            "on a CUDA GPU: pip install 'cvbench[vllm]'",
            "pip install 'cvbench[local]' (transformers; CPU works, slowly)",
        ]
    return None, problems, fixes


def resolve_alias_here(alias: Alias, options: ModelOptions | None = None) -> str:
    """choose_backend with this machine's facts; CUDA is probed only when the answer can depend on it."""
    cheap = probe_environment(options, probe_cuda=False)
    spec, _, _ = diagnose_alias(alias, cheap)
    if alias.access == "api" or (spec or "").startswith("openai-compatible:"):
        return choose_backend(alias, cheap)
    return choose_backend(alias, probe_environment(options))


def choose_backend(alias: Alias, env: Environment) -> str:
    """The `provider:model` an alias runs as here; ModelResolutionError listing every way to make it run."""
    spec, problems, fixes = diagnose_alias(alias, env)
    if spec is not None:
        return spec
    raise ModelResolutionError(
        f"model {alias.name!r} cannot run here ({' | '.join(problems)}). "
        f"Ways to run it: " + "; ".join(f"({i}) {w}" for i, w in enumerate(fixes, 1))
    )


def provider_availability(provider: Provider, env: Environment) -> Availability:
    problems, fixes = check_provider(provider.name, env)
    req = REQUIREMENTS.get(provider.name)
    if req is not None and req.note and not problems:
        problems = [req.note]  # a caveat, not a blocker
        return Availability(provider.name, "provider", True, None, tuple(problems), (), provider.description)
    return Availability(
        provider.name, "provider", not problems, None, tuple(problems), tuple(fixes), provider.description
    )


def alias_availability(alias: Alias, env: Environment) -> Availability:

    metadata = {k: v for k, v in alias.as_dict().items() if k not in ("name",) and v not in (None, {}, "")}
    if alias.target:
        metadata["reasoning"] = reasoning_summary(alias.target, dict(alias.model_options)) or None
        contract = contract_for(alias.target.partition(":")[0])
        if contract is not None:
            metadata["image_contract"] = contract.describe()
    spec, problems, fixes = diagnose_alias(alias, env)
    return Availability(
        alias.name, "alias", spec is not None, spec, tuple(problems), tuple(fixes), alias.display_name, metadata
    )


def models_report(options: ModelOptions | None = None, env: Environment | None = None) -> list[Availability]:
    """Every registered provider and every alias, with whether it can run here."""
    environment = env or probe_environment(options)
    rows = [provider_availability(p, environment) for p in sorted(PROVIDERS.values(), key=lambda p: p.name)]
    rows.extend(alias_availability(a, environment) for a in load_aliases().values())
    return rows


# --------------------------------------------------------------------------------------
# `cvbench models` output
# --------------------------------------------------------------------------------------


def models_json(options: ModelOptions | None = None, env: Environment | None = None) -> str:
    import json

    environment = env or probe_environment(options)
    rows = models_report(options, environment)
    document = {
        "environment": {
            "cuda": environment.cuda,
            "importable": sorted(environment.importable),
            "keys": sorted(environment.keys),
            "base_urls": [redact_url_credentials(u) for u in environment.base_urls],
        },
        "providers": [r.as_dict() for r in rows if r.kind == "provider"],
        "aliases": [r.as_dict() for r in rows if r.kind == "alias"],
    }
    return json.dumps(document, indent=2)


def render_models_tables(options: ModelOptions | None = None, env: Environment | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    environment = env or probe_environment(options)
    rows = models_report(options, environment)
    console = Console()
    providers = Table(title="Providers (--model PROVIDER:MODEL)", show_lines=False)
    for column in ("provider", "runs here", "what it is", "why not / how to fix"):
        providers.add_column(column, overflow="fold")
    for row in rows:
        if row.kind != "provider":
            continue
        mark = "[green]yes[/green]" if row.can_run else "[red]no[/red]"
        advice = "; ".join(row.problems + row.fixes)
        providers.add_row(escape(row.name), mark, escape(row.description), escape(advice))
    aliases = Table(title="Aliases (--model ALIAS)", show_lines=False)
    for column in (
        "alias",
        "model",
        "access",
        "params (B)",
        "reasoning",
        "images sent",
        "runs here as",
        "why not / how to fix",
    ):
        aliases.add_column(column, overflow="fold")
    for row in rows:
        if row.kind != "alias":
            continue
        params = row.metadata.get("params_b")
        aliases.add_row(
            escape(row.name),
            escape(row.description),
            str(row.metadata.get("access", "")),
            "" if params is None else f"{params:g}",
            escape(str(row.metadata.get("reasoning") or "")),
            escape(str(row.metadata.get("image_contract") or row.metadata.get("image_policy") or "")),
            f"[green]{escape(row.runs_as or '')}[/green]" if row.can_run else "[red]cannot run[/red]",
            escape("; ".join(row.problems + row.fixes)),
        )
    console.print(providers)
    console.print(aliases)
    cuda = "CUDA GPU present" if environment.cuda else "no CUDA GPU"
    urls = ", ".join(redact_url_credentials(u) for u in environment.base_urls) or "none"
    keys = ", ".join(environment.keys.values()) or "none"
    console.print(escape(f"{cuda}; OpenAI-compatible endpoints: {urls}; keys set: {keys}"), style="dim")
