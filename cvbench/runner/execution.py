"""Executing a run over an opened run directory (`RunSession`): jobs stream from the loaders;
prompts are built in a thread pool off the event loop; model calls run concurrently (asyncio,
`concurrency`); the response cache is consulted first and every successful response is committed
as it arrives; one writer appends each record the moment it finishes; a rerun whose answers are
cached skips rendering through the prompt-digest cache; SIGINT/SIGTERM stop taking new samples.

Over 500 lines: `RunSession` is one object whose methods share its fields (the job stream, the
in-flight set, the writer, the caches, the stop flags); what needs none of them already lives in
jobs, records, writer, merge, prompt_pool and render_store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from cvbench.core.locations import default_response_cache
from cvbench.core.redaction import redact
from cvbench.core.types import (
    GenerationConfig,
    InvalidSample,
    ModelAdapter,
    ModelError,
    ParsedAnswer,
    Prompt,
    RenderedPrompt,
    Request,
    Response,
    Sample,
    TaskSpec,
)
from cvbench.model_adapters.image_policy import build_fitted_prompt
from cvbench.prompting.build import PromptError
from cvbench.rundir.config import RunConfig
from cvbench.rundir.format import (
    RESULTS_FILE,
    SAMPLES_FILE,
    SampleRecord,
    image_relpath,
    write_results,
)
from cvbench.rundir.results import Results
from cvbench.runner.cache import CacheError, CacheUnusableError, ResponseCache
from cvbench.runner.failfast import (
    FailureWatch,
    error_rate,
    verdict,
)
from cvbench.runner.jobs import Job, chunked, iter_jobs
from cvbench.runner.jsonable import jsonable
from cvbench.runner.options import (
    RunError,
    RunOptions,
    RunOutcome,
)
from cvbench.runner.progress import RunProgress
from cvbench.runner.prompt_cache import PromptDigestCache, PromptKeys, StoredPrompt
from cvbench.runner.prompt_pool import build_or_fetch, prompt_pool
from cvbench.runner.records import (
    answered_fields,
    answered_record,
    attempt_statistics,
    invalid_record,
    redact_response,
    score_response,
)
from cvbench.runner.render_store import RenderStore, RenderStoreError, open_render_store
from cvbench.runner.signals import StopFlags, install_stop_signals
from cvbench.runner.writer import (
    IMAGE_EXTENSIONS,
    SamplesWriter,
    load_existing,
    read_records,
    reorder_samples,
    save_prompt_images,
)
from cvbench.scoring import metrics as metrics_mod
from cvbench.scoring.parsing import (
    judge_prompt_text,
    parse_judge,
)
from cvbench.tasks.slices import SliceError, sample_slices

JUDGE_MAX_TOKENS = 16
# The loader allocates ~300 containers per record (decoded JSON) that die at once; with the default
# young-generation threshold (700) the collector runs after every few records and its passes cost
# about a quarter of a cache-hit rerun. Raised while the samples loop runs, restored after.
GC_YOUNG_THRESHOLD = 20_000
JOB_CHUNK = 256  # jobs taken from the loader, looked up in the caches and handed to the writer at once

# what the caches know of a sample: (prompt-digest key, the stored prompt, the cached response);
# the prompt and response only when both are cached
Known = tuple[str | None, StoredPrompt | None, Response | None]


def deferred_encoding(settings: Any) -> Any:
    """Prompt settings whose lossless images are encoded on first use of their bytes
    (`ImagePolicy.defer_encoding`); the recorded settings, identities and keys are unchanged."""
    image = getattr(settings, "image", None)
    if image is None or image.format != "png":
        return settings
    return replace(settings, image=replace(image, defer_encoding=True))


class RunSession:
    """One execution of a run over an opened run directory: streams the jobs, answers each from
    the caches or the model, hands every record to the single writer and computes the results.

    Every resource it opens (caches, thread pools, the writer, signal handlers, the progress bar,
    the collector threshold) is entered on one `AsyncExitStack` and closed in reverse order,
    whatever way the run ends."""

    def __init__(
        self,
        options: RunOptions,
        run_dir: Path,
        secrets: Sequence[str],
        flags: StopFlags,
        specs: Sequence[TaskSpec],
        settings_by_task: Mapping[str, tuple[str, ...]],
        prompt_settings: Mapping[str, Any],
        adapter: ModelAdapter,
        judge: ModelAdapter | None,
        generation: GenerationConfig,
        config: RunConfig,
    ) -> None:
        self.options = options
        self.run_dir = run_dir
        self.secrets = list(secrets)
        self.flags = flags
        self.specs = specs
        self.settings_by_task = settings_by_task
        if getattr(adapter, "takes_pixels", False):  # in-process: images encoded only if bytes are needed
            prompt_settings = {name: deferred_encoding(s) for name, s in prompt_settings.items()}
        self.prompt_settings = prompt_settings
        self.adapter = adapter
        self.judge = judge
        self.generation = generation
        self.contract = getattr(adapter, "image_contract", None)
        self.fingerprints = {name: str(d.fingerprint) for name, d in (config.datasets or {}).items()}
        self.settings_records = {
            name: jsonable(s.as_dict()) | ({"image_contract": self.contract.as_dict()} if self.contract else {})
            for name, s in prompt_settings.items()
        }
        # an ablated answer is never served for another ablation (or none), even where the prompts agree
        self.model_settings = dict(adapter.settings()) | ({"ablation": options.ablation} if options.ablation else {})
        self.ablation = dict(config.ablation) if config.ablation else None  # docs/ablations.md
        self.judge_settings = dict(judge.settings()) if judge is not None else {}
        self.order: list[str] = []
        self.inflight: set[asyncio.Task[Any]] = set()
        self.failures: list[tuple[Job, BaseException]] = []
        self.resumed = 0
        self.total: int | None = None
        self.complete = False
        self.progress = RunProgress(enabled=self.options.progress)
        self.watch = FailureWatch(window=self.options.fail_fast)
        # opened in run()
        self.cache: ResponseCache | None = None
        self.digests: PromptDigestCache | None = None
        self.renders: RenderStore | None = None
        self.finished: set[str] = set()
        self.prompt_keys: dict[str, PromptKeys] = {}  # per task

    # -- resources -----------------------------------------------------------------------

    def _jobs(self) -> Generator[Job, None, None]:
        o = self.options
        return iter_jobs(self.specs, self.settings_by_task, o.data_dir, o.limit, o.shard)

    def _count_jobs(self) -> int:
        return sum(1 for _ in self._jobs())

    def _open_caches(self, stack: contextlib.AsyncExitStack) -> None:
        o = self.options
        try:
            self.cache = ResponseCache(o.cache or default_response_cache()) if o.use_cache else None
        except CacheError as exc:
            hint = f"; {exc.choices}" if isinstance(exc, CacheUnusableError) else ""
            raise RunError(f"{exc}; move it away, pass another --cache, or use --no-cache{hint}") from None
        if self.cache is not None:
            stack.callback(self.cache.close)
            # a rerun whose answers are cached skips rendering (see cvbench/runner/prompt_cache.py)
            self.digests = PromptDigestCache(self.cache.path)
            stack.callback(self.digests.close)

    def _open_workers(self, stack: contextlib.AsyncExitStack) -> None:
        o = self.options
        try:  # rendered prompts shared by every run and model (cvbench/runner/render_store.py)
            self.renders = open_render_store(self.cache.path if self.cache is not None else None)
        except RenderStoreError as exc:
            raise RunError(str(exc)) from None
        if self.renders is not None:
            stack.callback(self.renders.close)
        self.cpu_pool = prompt_pool()  # one worker per core; --concurrency bounds requests in flight
        stack.callback(self.cpu_pool.shutdown, wait=True, cancel_futures=True)
        self.io_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="cvbench-io")
        stack.callback(self.io_pool.shutdown, wait=True)
        self.writer = SamplesWriter(self.run_dir / SAMPLES_FILE, self.secrets, on_error=self.flags.request_stop)
        stack.callback(self.writer.close)
        self.writer_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cvbench-writer")
        stack.callback(self.writer_pool.shutdown, wait=True)  # drains before the writer closes
        self.semaphore = asyncio.Semaphore(o.concurrency)

    # -- one sample ----------------------------------------------------------------------

    async def ask(self, model: ModelAdapter, request: Request) -> tuple[Response, bool]:
        loop = asyncio.get_running_loop()
        key = request.cache_key()
        if self.cache is not None:
            hit = await loop.run_in_executor(self.io_pool, self.cache.get, key)
            if hit is not None:
                return hit, True
        try:
            response = await model.generate(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # adapters should not raise; never let one sample end the run
            message = redact(f"{type(exc).__name__}: {exc}", self.secrets)
            response = Response(text=None, error=ModelError("internal", message))
        if response.error is None and self.cache is not None:
            stored = redact_response(response, self.secrets)
            await loop.run_in_executor(self.io_pool, self.cache.put, key, request.model_id, stored)
        return response, False

    async def run_judge(self, prompt: Prompt, text: str) -> tuple[ParsedAnswer, dict[str, Any]]:
        judge = self.judge
        assert judge is not None
        judge_prompt = Prompt(
            sample_id=prompt.sample_id,
            text=judge_prompt_text(prompt.text, prompt.options, text),
            images=(),
            options=prompt.options,
            mode="overlay",
            setting=prompt.setting,
        )
        config = GenerationConfig(temperature=0.0, max_tokens=JUDGE_MAX_TOKENS, seed=self.options.seed)
        request = Request(judge.info.model_id, judge_prompt, config, self.judge_settings)
        response, cached = await self.ask(judge, request)
        info: dict[str, Any] = {"model": judge.info.model_id, "response": response.text, "cached": cached}
        if response.error is not None:
            info["error"] = {"kind": response.error.kind, "message": response.error.message}
            return ParsedAnswer(None, "unparsed", "judge failed"), info
        return parse_judge(response.text, prompt.options), info

    def needs_judge(self, parsed: ParsedAnswer, response: Response) -> bool:
        return parsed.status == "unparsed" and self.judge is not None and bool(response.text and response.text.strip())

    async def process(self, job: Job, known: Known | None) -> SampleRecord:
        item = job.item
        if isinstance(item, InvalidSample):
            return invalid_record(job, item.reason)
        sample = item
        try:
            slices = sample_slices(sample, job.spec, job.setting)
        except SliceError as exc:
            return invalid_record(job, f"slices: {exc}", sample=sample)
        digest_key: str | None = None
        if known is not None:
            digest_key, stored, hit = known
            if stored is not None and hit is not None:
                record = await self.conclude(job, sample, slices, stored.rendered, hit, True)
                return replace(record, image_sha256=list(stored.image_sha256))
        loop = asyncio.get_running_loop()
        if digest_key is None and self.renders is not None:
            digest_key = await loop.run_in_executor(self.io_pool, self.render_key, job, sample)
        try:
            built = await loop.run_in_executor(
                self.cpu_pool,
                build_or_fetch,
                partial(
                    build_fitted_prompt,
                    sample,
                    self.prompt_settings[job.spec.name],
                    self.adapter.capabilities,
                    job.setting,
                    self.contract,
                ),
                digest_key,
                self.renders,
                lambda r: jsonable(dict(r.protocol)),
                self.body_preparer(),
            )
            rendered = built.prompt
        except PromptError as exc:
            return invalid_record(job, f"prompt: {exc}", sample=sample, slices=slices)
        if self.digests is not None and digest_key is not None:
            protocol = jsonable(dict(rendered.protocol))
            await loop.run_in_executor(self.io_pool, self.digests.put, digest_key, rendered, protocol)
        if self.options.save_images and rendered.images:
            await loop.run_in_executor(self.io_pool, save_prompt_images, self.run_dir, rendered.images)
        # the model gets `rendered.prompt` only: the answer and protocol record stay here
        request = Request(
            self.adapter.info.model_id, rendered.prompt, self.generation, self.model_settings, body=built.body
        )
        response, cached = await self.ask(self.adapter, request)
        return await self.conclude(job, sample, slices, rendered, response, cached)

    def body_preparer(self) -> Callable[[RenderedPrompt], bytes | None] | None:
        """The adapter's wire-body builder (`prepare_body`), run in the prompt worker so that the
        event loop sends finished bytes; None for adapters that build their own request."""
        prepare = getattr(self.adapter, "prepare_body", None)
        if prepare is None:
            return None
        model_id, generation, settings = self.adapter.info.model_id, self.generation, self.model_settings

        def body(rendered: RenderedPrompt) -> bytes | None:
            try:
                result = prepare(Request(model_id, rendered.prompt, generation, settings))
            except Exception:  # the adapter builds it again in `generate`, where a failure is a scored error
                return None
            return result if isinstance(result, bytes) else None

        return body

    async def conclude(
        self,
        job: Job,
        sample: Sample,
        slices: dict[str, list[str]],
        rendered: RenderedPrompt,
        response: Response,
        cached: bool,
    ) -> SampleRecord:
        parsed = score_response(response, rendered.prompt)
        judge_info = None
        if self.needs_judge(parsed, response) and response.text is not None:
            parsed, judge_info = await self.run_judge(rendered.prompt, response.text)
        price = self.options.price
        return answered_record(job, sample, slices, rendered, response, parsed, cached, judge_info, price)

    def finish(self, job: Job, task: asyncio.Task[SampleRecord]) -> None:
        self.inflight.discard(task)
        self.semaphore.release()
        if task.cancelled():  # abandoned by a second signal: its record is never written
            return
        exc = task.exception()
        if exc is not None:
            self.failures.append((job, exc))
            return
        record = task.result()
        self.writer_pool.submit(self.writer.put, job.index, record)  # fsync off the event loop
        self.progress.advance(record.correct, record.parse_status)
        if not record.cached and record.parse_status != "invalid":
            line = self.watch.first_of_kind(record.error)
            if line is not None:
                self.progress.log(redact(line, self.secrets))
            if self.watch.observe(record.error) is not None:
                self.flags.stop = True  # no new samples; the ones in flight finish and are written

    # -- what the caches already answer ----------------------------------------------------

    def render_key(self, job: Job, sample: Sample) -> str | None:
        return self._prompt_keys(job.spec.name).key(sample, job.setting)

    def _prompt_keys(self, task: str) -> PromptKeys:
        keys = self.prompt_keys.get(task)
        if keys is None:
            fingerprint, settings = self.fingerprints.get(task, ""), self.settings_records[task]
            keys = self.prompt_keys[task] = PromptKeys(task, fingerprint, settings, self.adapter.capabilities)
        return keys

    def known_answers(self, chunk: Sequence[Job]) -> dict[int, Known]:
        """Per job index of the valid samples in `chunk`: (digest key, the prompt's digest, the
        cached response), the digest and response only when both caches know the sample and
        the run directory needs no image from it. One query per cache for the whole chunk."""
        digests, cache = self.digests, self.cache
        assert digests is not None and cache is not None
        keys: dict[int, str | None] = {}
        stats: dict[tuple[str, int | None], list[Any]] = {}  # image file identities, once per chunk
        for job in chunk:
            if isinstance(job.item, Sample) and job.record_id not in self.finished:
                keys[job.index] = self._prompt_keys(job.spec.name).key(job.item, job.setting, stats)
        stored = digests.get_many([k for k in keys.values() if k is not None])
        usable: dict[int, tuple[StoredPrompt, str]] = {}
        for index, key in keys.items():
            known = stored.get(key) if key is not None else None
            if known is None or not self._images_saved(known):
                continue
            request = Request(self.adapter.info.model_id, known.rendered.prompt, self.generation, self.model_settings)
            usable[index] = (known, request.cache_key())
        hits = cache.get_many([request_key for _, request_key in usable.values()])
        out: dict[int, Known] = {}
        for index, key in keys.items():
            known_prompt, hit = None, None
            if index in usable:
                hit = hits.get(usable[index][1])
                known_prompt = usable[index][0] if hit is not None else None
            out[index] = (key, known_prompt, hit)
        return out

    def _images_saved(self, known: StoredPrompt) -> bool:
        if not self.options.save_images:
            return True
        return all(
            (self.run_dir / image_relpath(sha, IMAGE_EXTENSIONS.get(mime, "bin"))).exists()
            for sha, mime in zip(known.image_sha256, known.image_mimes)
        )

    def cached_records(
        self, chunk: Sequence[Job], known: Mapping[int, Known]
    ) -> dict[int, tuple[str, metrics_mod.ScoredRecord]]:
        """The records (and their redacted JSON lines) of the jobs in `chunk` that need neither
        rendering nor a model: invalid samples, and samples whose prompt digest and response
        are both cached (unless the answer needs the judge). The rest go through `process`."""
        out: dict[int, tuple[str, metrics_mod.ScoredRecord]] = {}
        lines = self.writer.records
        for job in chunk:
            if job.record_id in self.finished:
                continue
            if isinstance(job.item, InvalidSample):
                out[job.index] = lines.written(invalid_record(job, job.item.reason))
                continue
            fields = self._cached_fields(job, known)
            if fields is not None:
                out[job.index] = lines.written_fields(fields)
        return out

    def _cached_fields(self, job: Job, known: Mapping[int, Known]) -> dict[str, Any] | None:
        """The record fields of a valid sample whose prompt digest and response are cached (the
        prompt's protocol was decoded from the digest cache's JSON: plain)."""
        _, stored, hit = known.get(job.index, (None, None, None))
        if stored is None or hit is None:
            return None
        sample = job.item
        if not isinstance(sample, Sample):
            return None
        try:
            slices = sample_slices(sample, job.spec, job.setting)
        except SliceError:
            return None  # process() writes the invalid record
        parsed = score_response(hit, stored.rendered.prompt)
        if self.needs_judge(parsed, hit):
            return None
        rendered, price, images = stored.rendered, self.options.price, stored.image_sha256
        fields = answered_fields(job, sample, slices, rendered, hit, parsed, True, None, price, images, True)
        return fields

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        finished_ids, retried = load_existing(self.run_dir)
        self.finished = set(finished_ids)
        async with contextlib.AsyncExitStack() as stack:
            self._open_caches(stack)
            self._open_workers(stack)
            await self._schedule_all(stack)
        self._raise_failures()
        cancelled = self.flags.stop or not self.complete
        self._put_in_order(bool(finished_ids), cancelled)
        return self._conclude_run(finished_ids, retried, cancelled)

    async def _schedule_all(self, stack: contextlib.AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
        stack.callback(gc.set_threshold, *thresholds)
        stack.enter_context(self.progress)
        stack.callback(install_stop_signals(loop, self.flags, self.progress, self.inflight))
        if self.progress.enabled:  # the bar's total; without a bar the count is len(order) at the end
            self.progress.describe("counting samples")
            self.total = await loop.run_in_executor(self.io_pool, self._count_jobs)
            self.progress.set_total(self.total)
        self.progress.describe(self.adapter.info.model_id)
        chunks = chunked(self._jobs(), JOB_CHUNK)
        stack.callback(chunks.close)
        sentinel = object()
        while not self.flags.stop and not self.failures:
            chunk = await loop.run_in_executor(self.io_pool, next, chunks, sentinel)
            if chunk is sentinel:
                self.complete = True
                break
            assert isinstance(chunk, list)
            if not await self._schedule_chunk(chunk):
                break
        while self.inflight:
            await asyncio.wait(set(self.inflight))
        if self.total is None:
            self.total = len(self.order)

    async def _schedule_chunk(self, chunk: list[Job]) -> bool:
        """Hand the chunk's resumed and cached records to the writer and start a task for each of
        the others (at most `concurrency` in flight). False when the run stopped inside it."""
        loop = asyncio.get_running_loop()
        known: dict[int, Known] = {}
        if self.digests is not None:
            known = await loop.run_in_executor(self.io_pool, self.known_answers, chunk)
        ready = await loop.run_in_executor(self.io_pool, self.cached_records, chunk, known)
        handed: list[tuple[int, SampleRecord | tuple[str, metrics_mod.ScoredRecord] | None]] = []
        try:
            for job in chunk:
                if self.flags.stop or self.failures:
                    return False
                self.order.append(job.record_id)
                if job.record_id in self.finished:
                    handed.append((job.index, None))
                    self.resumed += 1
                    self.progress.advance(False, "resumed", resumed=True)
                    continue
                if job.index in ready:
                    written = ready[job.index]
                    handed.append((job.index, written))
                    self.progress.advance(written[1].correct, written[1].parse_status)
                    continue
                if handed:  # hand over what is ready before waiting for a slot
                    self.writer_pool.submit(self.writer.put_many, handed)
                    handed = []
                await self.semaphore.acquire()
                if self.flags.stop:
                    self.semaphore.release()
                    self.order.pop()
                    return False
                task = asyncio.create_task(self.process(job, known.get(job.index)))
                self.inflight.add(task)
                task.add_done_callback(functools.partial(self.finish, job))
            return True
        finally:
            if handed:
                self.writer_pool.submit(self.writer.put_many, handed)

    # -- the end -------------------------------------------------------------------------

    def _raise_failures(self) -> None:
        writer = self.writer
        if writer.error is not None:
            raise RunError(
                f"stopped: cannot write {writer.error.filename} ({writer.error.strerror}); the "
                f"{writer.written} records written before are kept; free space (or fix the file system) "
                f"and rerun the same command to resume"
            )
        if self.failures:
            job, exc = self.failures[0]
            raise RunError(
                f"{job.record_id}: unexpected failure ({type(exc).__name__}: {exc}); "
                f"finished records are saved, rerun the same command to resume"
            ) from exc

    def _put_in_order(self, resumed: bool, cancelled: bool) -> None:
        if not resumed:
            # the writer knows where each of its lines is: a copy in job order, only when completions
            # arrived out of order (a cancelled run is put in order too; a resume keeps that order)
            self.writer.rewrite_in_job_order()
        elif not cancelled:
            # a resumed run: its new records follow the kept ones; sort the whole file by job order
            reorder_samples(self.run_dir, self.order)

    def _conclude_run(self, finished_ids: list[str], retried: int, cancelled: bool) -> RunOutcome:
        o, writer, adapter = self.options, self.writer, self.adapter
        # a run that started from an empty samples.jsonl wrote every record itself: the metrics read
        # the writer's copy of what each line holds instead of parsing the file back
        records: Sequence[metrics_mod.AnyRecord] = (
            writer.scored if not finished_ids else [metrics_mod.scored_record(r) for r in read_records(self.run_dir)]
        )
        partial = any(r.parse_status == "error" for r in records)
        status = "cancelled" if cancelled else ("partial" if partial else "complete")
        model = {
            "id": adapter.info.model_id,
            "display_name": adapter.info.display_name,
            "access": adapter.info.access,
            "params_b": adapter.info.params_b,
            "provider": adapter.info.provider,
            **({"ablation": self.ablation} if self.ablation else {}),  # read by the leaderboard rows
        }
        results = metrics_mod.compute_results(
            records, run_seed=o.seed, model=model, status=status, ci_method=o.ci_method, n_resamples=o.n_resamples
        )
        rate = error_rate([r.parse_status for r in records])
        failure = self.watch.stopped or (None if cancelled else verdict(rate, o.max_error_rate))
        results["run"] = {
            "new_records": writer.written,
            "resumed_records": self.resumed,
            "retried_errors": retried,
            "expected_records": self.total if not cancelled else None,
            **attempt_statistics(records),
            "error_rate": rate,
            "failure": failure,
        }
        write_results(self.run_dir, Results.from_json(redact(results, self.secrets), self.run_dir / RESULTS_FILE))
        return RunOutcome(self.run_dir, status, results, writer.written, self.resumed, failure)
