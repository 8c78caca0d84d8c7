"""The runner: samples -> prompts -> cached, concurrent model calls -> parsed records -> results.

`Runner` sets a run up (tasks, model, prompt settings, `config.json`, the run-directory lock) and
hands it to `RunSession` (execution.py), which streams it. Properties of every run:
- Streams samples from the loaders (never a list of all images); prompts are built in a
  thread pool, off the event loop; model calls run concurrently (asyncio, `concurrency`).
- The response cache is consulted first; every successful response is committed as it arrives.
- One writer appends each record to `samples.jsonl` the moment it finishes (flushed at once,
  fsync every 0.5 s); when the run ends the file is put into input order, so two runs of the same
  command compare line by line.
- A rerun whose answers are cached skips rendering through the prompt-digest cache
  (cvbench/runner/prompt_cache.py).
- Resume: the same command with the same `--out` skips every finished record (error records are
  retried), truncates a torn last line, and refuses a run directory of a different configuration.
- SIGINT/SIGTERM: no new samples are taken, in-flight ones finish and are written, results are
  written with status "cancelled" and the exit code is 130; the same command resumes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cvbench.core.candidates import parse_settings
from cvbench.core.provenance import environment
from cvbench.core.redaction import redact, redact_argv, secret_values
from cvbench.core.types import (
    GenerationConfig,
    ModelAdapter,
    TaskSpec,
)
from cvbench.model_adapters.image_policy import run_image_policy
from cvbench.model_adapters.registry import ModelOptions, ModelResolutionError
from cvbench.model_adapters.resolve import resolve_model
from cvbench.prompting.ablation import AblationError, ablation_record, check_run_ablation
from cvbench.prompting.build import PromptSettings
from cvbench.prompting.protocols import crossviewbench as cvb_protocol
from cvbench.prompting.protocols import mmvm as mmvm_protocol
from cvbench.rundir.config import DatasetEntry, ModelBlock, RunConfig, config_differences, read_config, write_config
from cvbench.rundir.format import (
    CONFIG_FILE,
    SAMPLES_FILE,
)
from cvbench.runner.execution import RunSession
from cvbench.runner.jobs import task_settings
from cvbench.runner.jsonable import jsonable
from cvbench.runner.options import (
    ConfigMismatchError,
    RunError,
    RunOptions,
    RunOutcome,
    default_out_dir,
    effective_max_tokens,
    retry_settings_from_env,
)
from cvbench.runner.runlock import RunDirBusyError, RunDirLock
from cvbench.runner.signals import StopFlags
from cvbench.tasks.applicability import OptionNotApplicable, check_options_apply
from cvbench.tasks.loading import dataset_fingerprint
from cvbench.tasks.registry import get_task

CONFIG_SCHEMA = "cvbench.config/1"
DEFAULT_TASKS = ("synth-crossviewbench", "synth-mmvm")
DEFAULT_MODEL = "mask-heuristic"
EXIT_CANCELLED = 130


class Runner:
    """One `cvbench run`: set up with `prepare()`, then `execute()`."""

    def __init__(self, options: RunOptions, *, resolve_model: Callable[..., ModelAdapter] | None = None) -> None:
        if options.concurrency < 1:
            raise RunError("--concurrency must be at least 1")
        if options.limit is not None and options.limit < 0:
            raise RunError("--limit must be >= 0")
        self.options = options
        self.run_dir = Path(options.out) if options.out is not None else default_out_dir(options)
        self._resolve_model = resolve_model
        self.flags = StopFlags()
        self._secrets = secret_values()

    # -- setup ---------------------------------------------------------------------------

    def _load_specs(self) -> list[TaskSpec]:
        specs = []
        for name in self.options.tasks:
            try:
                specs.append(get_task(name))
            except KeyError as exc:
                raise RunError(str(exc)) from None
        if len({s.name for s in specs}) != len(specs):
            raise RunError(f"task listed twice in --task {','.join(self.options.tasks)}")
        o = self.options
        try:  # the Python API refuses what the CLI refuses
            check_options_apply(specs, parse_settings(o.candidates), o.mode, o.style)
        except OptionNotApplicable as exc:
            raise RunError(str(exc)) from None
        return specs

    def _model_options(self) -> Any:
        retry = retry_settings_from_env(os.environ)
        extra: dict[str, Any] = {k: retry[k] for k in ("retry_base_delay_s", "retry_max_delay_s") if k in retry}
        extra.update(dict(self.options.model_options))
        return ModelOptions(
            base_urls=tuple(self.options.base_urls),
            concurrency=self.options.concurrency,
            seed=self.options.seed,
            extra=extra,
            **{k: retry[k] for k in ("timeout_s", "max_retries", "budget_s") if k in retry},
        )

    def _resolve(self, spec: str) -> ModelAdapter:
        if self._resolve_model is not None:
            return self._resolve_model(spec, self._model_options())
        try:
            return resolve_model(spec, self._model_options())
        except (ModelResolutionError, ImportError) as exc:
            raise RunError(str(exc)) from None

    def _prompt_settings(self, contract: Any = None) -> Any:
        o = self.options
        kwargs: dict[str, Any] = {"mode": o.mode, "seed": o.seed, "alpha": o.alpha, "thickness": o.thickness}
        kwargs["ablation"] = o.ablation  # docs/ablations.md
        if o.style is not None:
            kwargs["style"] = o.style
        try:
            kwargs["image"] = run_image_policy(contract, o.image_format, o.jpeg_quality, o.max_side, o.max_pixels)
            return PromptSettings(**kwargs)
        except ValueError as exc:
            raise RunError(str(exc)) from None

    def build_config(
        self,
        specs: Sequence[TaskSpec],
        adapter: ModelAdapter,
        judge: ModelAdapter | None,
        settings_by_task: Mapping[str, tuple[str, ...]],
        prompt_settings: Any,
        generation: GenerationConfig,
    ) -> RunConfig:
        o = self.options
        datasets: dict[str, DatasetEntry] = {}
        for spec in specs:
            datasets[spec.name] = DatasetEntry(
                benchmark=spec.benchmark,
                fingerprint=dataset_fingerprint(spec, o.data_dir),
                synthetic=spec.synthetic,
                settings=tuple(settings_by_task[spec.name]),
            )
        protocol = {"crossviewbench": cvb_protocol.PROTOCOL_ID, "mmvm": mmvm_protocol.PROTOCOL_ID}
        contract = getattr(adapter, "image_contract", None)
        config = RunConfig(
            schema=CONFIG_SCHEMA,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            environment=environment(),
            command=tuple(redact_argv(list(o.argv), self._secrets)) if o.argv else None,
            model=ModelBlock(
                id=adapter.info.model_id,
                info=jsonable(adapter.info),
                capabilities=jsonable(adapter.capabilities),
                spec=o.model,
            ),
            model_settings=jsonable(dict(adapter.settings())),
            generation=jsonable(generation.as_dict()),
            tasks=tuple(s.name for s in specs),
            candidates={name: tuple(v) for name, v in settings_by_task.items()},
            mode=o.mode,
            style=o.style,
            seed=o.seed,
            limit=o.limit,
            shard=(o.shard[0], o.shard[1]) if o.shard else None,
            judge=(
                {"spec": o.judge, "id": judge.info.model_id, "settings": jsonable(dict(judge.settings()))}
                if judge is not None
                else None
            ),
            prompt_settings=jsonable(prompt_settings.as_dict()),
            datasets=datasets,
            protocol=protocol,
            runtime={
                "concurrency": o.concurrency,
                "cache": str(o.cache) if o.use_cache and o.cache else ("default" if o.use_cache else None),
                "save_images": o.save_images,
                "data_dir": str(o.data_dir) if o.data_dir else None,
                "retry_env": retry_settings_from_env(os.environ),
            },
            statistics={"ci_method": o.ci_method, "resamples": o.n_resamples},
            pricing=o.price.as_dict() if o.price is not None else None,
            # the provider's image limits shape every image sent
            image_contract=contract.as_dict() if contract is not None else None,
            # absent when none, so the configs of earlier runs still match
            ablation=ablation_record(o.ablation) if o.ablation is not None else None,
        )
        return RunConfig.from_json(redact(config.to_json(), self._secrets), CONFIG_FILE)

    # -- execution -----------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        return asyncio.run(self._execute())

    async def _execute(self) -> RunOutcome:
        o = self.options
        specs = self._load_specs()
        settings_by_task = {s.name: task_settings(s, o.candidates) for s in specs}
        adapter = self._resolve(o.model)
        try:
            shared_settings = self._prompt_settings(getattr(adapter, "image_contract", None))
            try:  # an ablation that means nothing for a task or the model's mode is refused before anything runs
                benchmarks = [s.benchmark for s in specs]
                check_run_ablation(o.ablation, benchmarks, o.mode, adapter.capabilities.native_regions)
            except AblationError as exc:
                raise RunError(str(exc)) from None
        except BaseException:
            await adapter.aclose()
            raise
        prompt_settings = {s.name: shared_settings for s in specs}
        judge: ModelAdapter | None = None
        generation = GenerationConfig(
            temperature=0.0, max_tokens=effective_max_tokens(o), seed=o.seed, option_logprobs=o.option_logprobs
        )
        try:
            judge = self._resolve(o.judge) if o.judge else None
            config = self.build_config(specs, adapter, judge, settings_by_task, shared_settings, generation)
            try:  # one writer per run directory, held until this run ends (see cvbench/runner/runlock.py)
                lock = RunDirLock.acquire(self.run_dir)
            except RunDirBusyError as exc:
                raise RunError(str(exc)) from None
            try:
                config = self._open_run_dir(config)
                return await self._run(specs, settings_by_task, prompt_settings, adapter, judge, generation, config)
            finally:
                lock.release()
        finally:
            await adapter.aclose()
            if judge is not None:
                await judge.aclose()

    def _open_run_dir(self, config: RunConfig) -> RunConfig:
        """Check a resumed run's config.json against this one and write it; returns what was written."""
        config_path = self.run_dir / CONFIG_FILE
        if config_path.exists():
            old = read_config(self.run_dir)
            diffs = config_differences(old, config)
            if diffs:
                raise ConfigMismatchError(
                    f"{self.run_dir} holds a run with a different configuration:\n  "
                    + "\n  ".join(diffs)
                    + "\nuse another --out, or the original options to resume it"
                )
            config = replace(config, resumed=(*(old.resumed or ()), config.created or ""), created=old.created)
        elif (self.run_dir / SAMPLES_FILE).exists():
            raise RunError(f"{self.run_dir} has {SAMPLES_FILE} but no {CONFIG_FILE}: not a cvbench run directory")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(self.run_dir, config)
        return config

    async def _run(
        self,
        specs: Sequence[TaskSpec],
        settings_by_task: Mapping[str, tuple[str, ...]],
        prompt_settings: Mapping[str, Any],
        adapter: ModelAdapter,
        judge: ModelAdapter | None,
        generation: GenerationConfig,
        config: RunConfig,
    ) -> RunOutcome:
        session = RunSession(
            self.options,
            self.run_dir,
            self._secrets,
            self.flags,
            specs,
            settings_by_task,
            prompt_settings,
            adapter,
            judge,
            generation,
            config,
        )
        return await session.run()


def run(options: RunOptions) -> RunOutcome:
    """Run (or resume) an evaluation and write the run directory."""
    return Runner(options).execute()
