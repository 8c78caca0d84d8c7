"""The typed values that flow through cvbench, one stage to the next.

sample (tasks) -> RenderedPrompt / Prompt (prompting) -> Request -> Response (model adapter)
-> SampleRecord (runner) -> metrics (results.json).

One module over 500 lines on purpose: it is the shared vocabulary of every layer, and one place
to look a value up beats a package of small files that all import each other.

Every value here is immutable and carries no behaviour beyond small derived properties, so
stages only ever see the value of the stage before them.
"""

from __future__ import annotations

import hashlib
import json
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

# --------------------------------------------------------------------------------------
# Benchmark vocabularies (facts from the papers; see docs/formats.md)
# --------------------------------------------------------------------------------------

Benchmark = Literal["crossviewbench", "mmvm"]
BENCHMARKS: tuple[str, ...] = ("crossviewbench", "mmvm")

CATEGORY_NAMES: dict[str, str] = {
    "correspondence": "Correspondence",
    "visibility_occlusion": "Visibility & Occlusion",
    "geometric": "Geometric",
    "physical": "Physical Reasoning",
}

# task type -> (name, category key)
TASK_TYPES: dict[str, tuple[str, str]] = {
    "Q1": ("Single-object cross-view retrieval", "correspondence"),
    "Q2": ("Two-candidate retrieval", "correspondence"),
    "Q3": ("One-of-three identification", "correspondence"),
    "Q4": ("Multi-object group matching", "correspondence"),
    "Q5": ("Binary instance verification", "correspondence"),
    "Q6": ("Cross-view visibility detection", "visibility_occlusion"),
    "Q7": ("Exclusive-presence identification", "visibility_occlusion"),
    "Q8": ("Occluder source localization", "visibility_occlusion"),
    "Q9": ("Cross-view nearest-neighbour retrieval", "geometric"),
    "Q10": ("Scale change detection", "geometric"),
    "Q11": ("Single-view completeness comparison", "geometric"),
    "Q12": ("Cross-view completeness comparison", "geometric"),
    "Q13": ("Left-right arrangement flip detection", "geometric"),
    "Q14": ("Cross-view displacement comparison", "geometric"),
    "Q15": ("Depth-relation consistency", "geometric"),
    "Q16": ("Relative scale-growth comparison", "geometric"),
    "Q17": ("Visual overlap vs. physical contact", "physical"),
}

# MMVM matching cues: integer label (TSV `match_type`) -> (code, name)
CUES: dict[int, tuple[str, str]] = {
    1: ("CL", "Color"),
    2: ("SP", "Shape or posture"),
    3: ("TM", "Textual or LOGO markers"),
    4: ("SZ", "Size"),
    5: ("RP", "Relative position in the scene"),
    6: ("OO", "Object orientation and movement"),
    7: ("BR", "Binding relationship with other objects"),
    8: ("OM", "Object markers"),
}
CUE_CODES: tuple[str, ...] = tuple(code for code, _ in CUES.values())
CUE_BY_CODE: dict[str, int] = {code: i for i, (code, _) in CUES.items()}

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REGION_PLACEHOLDER = "<region>"


def category_of(task_type: str) -> str:
    """Category key of a CrossViewBench task type ("Q7" -> "visibility_occlusion")."""
    return TASK_TYPES[task_type][1]


# --------------------------------------------------------------------------------------
# Samples (output of the loaders in cvbench.tasks)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceLocation:
    """Where a sample came from, for error messages: `file:line` or `file (item)`."""

    file: str
    line: int | None = None  # 1-based line of a JSONL / TSV row (TSV: header is line 1)
    item: str | None = None  # e.g. an MMVM case folder

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return where if self.item is None else f"{where} ({self.item})"


@dataclass(frozen=True)
class ImageRef:
    """An image on disk, or one frame of a video on disk. Never decoded eagerly."""

    path: Path
    frame: int | None = None  # set when `path` is a video


@dataclass(frozen=True)
class Region:
    """One object's mask in one view, kept encoded until a stage decodes it.

    Exactly the upstream geometry: a COCO RLE (CrossViewBench), COCO polygons (MMVM),
    and/or a bbox used as the fallback when the RLE is missing or invalid.
    """

    region_id: str  # CrossViewBench: track_id (or index); MMVM: the numeric id drawn on the tag
    rle: Mapping[str, Any] | None = None  # {"size": [H, W], "counts": str | list[int]}
    polygons: tuple[tuple[float, ...], ...] = ()
    bbox_xyxy: tuple[float, float, float, float] | None = None
    declared_hw: tuple[int, int] | None = None  # the annotation's own height/width, if any
    name: str | None = None  # object name when upstream gives one


@dataclass(frozen=True)
class View:
    view_id: str
    image: ImageRef  # the original (unmarked) image
    regions: tuple[Region, ...]
    prerendered: ImageRef | None = None  # upstream overlay image (MMVM FRAME00.jpg / FRAME01_CAND.jpg)


@dataclass(frozen=True)
class RegionRef:
    """A reference to `views[view_index].regions[region_index]`."""

    view_index: int
    region_index: int


@dataclass(frozen=True)
class Option:
    letter: str
    text: str

    @property
    def line(self) -> str:
        return f"{self.letter}. {self.text}"


@dataclass(frozen=True)
class Sample:
    """One benchmark question, exactly as published, with its geometry still encoded.

    CrossViewBench: `question` holds literal `<region>` placeholders, one per `region_refs`
    entry, in order. MMVM: `views[0]` is the query view whose `regions[0]` is the query
    object, `views[1]` the candidate view whose regions are the candidates (region_id = the
    drawn numeric id); `question` is the TSV `pure_question` and `prerendered_question` the
    TSV `question` verbatim.
    """

    sample_id: str
    benchmark: str
    question: str
    options: tuple[Option, ...]
    answer: str | None  # option letter; None for open-ended questions
    views: tuple[View, ...]
    cluster: str  # scene (CrossViewBench) or case (MMVM): the unit for clustered intervals
    source: SourceLocation
    task_type: str | None = None  # "Q1".."Q17" (CrossViewBench)
    category: str | None = None  # key of CATEGORY_NAMES (CrossViewBench)
    region_refs: tuple[RegionRef, ...] = ()
    region_token_counts: tuple[int, ...] | None = None
    cues: tuple[str, ...] = ()  # MMVM cue codes ("CL", "RP", ...)
    candidate_count: int | None = None  # MMVM: number of candidate objects
    prerendered_question: str | None = None  # MMVM TSV `question` (with options), verbatim
    metadata: Mapping[str, Any] = field(default_factory=dict)  # every other upstream field

    def option(self, letter: str) -> Option | None:
        return next((o for o in self.options if o.letter == letter), None)

    @property
    def answer_region_id(self) -> str | None:
        """MMVM: the drawn id of the ground-truth candidate (None if the answer is 'None of the above')."""
        if self.benchmark != "mmvm" or self.answer is None:
            return None
        opt = self.option(self.answer)
        if opt is None or not opt.text.strip().isdigit():
            return None
        return opt.text.strip()


@dataclass(frozen=True)
class InvalidSample:
    """A sample that could not be loaded. Reported, never replaced by another sample."""

    source: SourceLocation
    reason: str
    sample_id: str | None = None

    def __str__(self) -> str:
        sid = f" [{self.sample_id}]" if self.sample_id is not None else ""
        return f"{self.source}{sid}: {self.reason}"


# --------------------------------------------------------------------------------------
# Task specs (declarative files in cvbench/tasks/specs/*.toml)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    name: str  # "crossviewbench", "mmvm", "synth-crossviewbench", "synth-mmvm"
    benchmark: str
    description: str
    source: str  # "crossviewbench-jsonl" | "mmvm-tsv"
    data_file: str  # file name inside the data folder ("crossviewbench.jsonl", "mllm_match_eval_full.tsv")
    data_subdir: str  # folder name under the data root ("crossviewbench", "mmvm", "synth-mmvm", ...)
    synthetic: bool  # the built-in generated set (made on first use)
    slice_dims: tuple[str, ...]  # "category", "task_type", "cue", "bucket"
    candidate_settings: tuple[str, ...] = ("all",)  # MMVM: ("4", "8", "12", "all")
    default_mode: str = "auto"
    obtain_hint: str = ""  # how to get the official data when it is missing
    spec_file: str = ""


# --------------------------------------------------------------------------------------
# Prompts (output of visual prompting in cvbench.prompting)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptImage:
    """An image exactly as it is sent to a model: encoded bytes and its identity digest.

    `pixel_identity` is set for images cvbench encodes: a SHA-256 over the format and the pixels
    a decoder shows (see encoding.pixel_identity), so a different zlib build or byte layout,
    which changes the bytes but not what the model sees, changes no cache key, golden file or
    record. Shipped PNG/JPEG files passed through unchanged get the same identity of their
    decoded pixels; anything else is identified by the hash of its bytes."""

    data: bytes
    mime: str  # "image/png" | "image/jpeg"
    width: int
    height: int
    label: str  # "Image 1", ...
    pixel_identity: str | None = None

    @classmethod
    def deferred(
        cls,
        pixels: np.ndarray,
        encode: Callable[[np.ndarray], bytes],
        mime: str,
        label: str,
        pixel_identity: str,
    ) -> PromptImage:
        """An image whose bytes are encoded on first use of `data` (a saved image file, an API body,
        the render store); an in-process model reads `pixels` and never pays for the encoding.
        Only for lossless formats: `pixels` are then exactly what a decoder of `data` shows, and
        `pixel_identity` (computed from them) is the identity the encoded image would have."""
        self = object.__new__(cls)
        height, width = int(pixels.shape[0]), int(pixels.shape[1])
        fields = {"mime": mime, "width": width, "height": height, "label": label, "pixel_identity": pixel_identity}
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_pixels", pixels)
        object.__setattr__(self, "_encode", encode)
        return self

    if not TYPE_CHECKING:  # mypy keeps checking attribute names; `data` is declared above

        def __getattr__(self, name):
            # reached only while `data` of a deferred image is not yet set (dataclass fields are
            # instance attributes): encode once, keep the bytes
            encode = self.__dict__.get("_encode") if name == "data" else None
            if encode is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            data = encode(self.__dict__["_pixels"])
            object.__setattr__(self, "data", data)
            return data

    @property
    def pixels(self) -> np.ndarray | None:
        """The RGB pixels (H x W x 3 uint8) of a deferred image, which are exactly the pixels its
        bytes decode to; None for an image built from bytes (decode `data`)."""
        pixels: np.ndarray | None = self.__dict__.get("_pixels")
        return pixels

    @property
    def encoded(self) -> bool:
        """Whether the bytes exist yet (always, except for a deferred image not yet encoded)."""
        return "data" in self.__dict__

    @cached_property
    def sha256(self) -> str:
        """The identity digest (records, cache keys, image file names): the pixel identity when
        cvbench encoded the image, else the SHA-256 of the bytes."""
        return self.pixel_identity if self.pixel_identity is not None else self.bytes_sha256

    @cached_property
    def bytes_sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def base64(self) -> str:
        """The bytes as base64 text, computed once (the prompt pool warms it, off the event loop)."""
        return b64encode(self.data).decode("ascii")

    @cached_property
    def data_url(self) -> str:
        return self.data_url_json[1:-1].decode("ascii")

    @cached_property
    def data_url_json(self) -> bytes:
        """The data URL as a JSON string literal, ready to splice into a request body: base64 and
        the MIME type need no escaping (computed once, in the prompt pool, off the event loop)."""
        return b'"data:' + self.mime.encode("ascii") + b";base64," + b64encode(self.data) + b'"'


@dataclass(frozen=True)
class NativeView:
    """An original image and its object masks, for models that take regions natively."""

    view_id: str
    image: np.ndarray  # H x W x 3 uint8 RGB, the ORIGINAL image
    masks: tuple[np.ndarray, ...]  # each H x W bool, in region order
    region_ids: tuple[str, ...]


@dataclass(frozen=True)
class NativeRegions:
    views: tuple[NativeView, ...]
    refs: tuple[RegionRef, ...]  # CrossViewBench: one per <region> placeholder, in order
    token_counts: tuple[int, ...] | None = None
    query: RegionRef | None = None  # MMVM: the query object
    candidate_order: tuple[int, ...] = ()  # MMVM: candidate region indices in ascending id order

    def digest(self) -> str:
        h = hashlib.sha256()
        for v in self.views:
            h.update(v.view_id.encode())
            h.update(np.ascontiguousarray(v.image).tobytes())
            for m in v.masks:
                h.update(np.packbits(np.ascontiguousarray(m, dtype=bool)).tobytes())
            h.update(json.dumps(v.region_ids).encode())
        h.update(json.dumps([[r.view_index, r.region_index] for r in self.refs]).encode())
        h.update(
            json.dumps(
                [
                    self.token_counts,
                    self.query and [self.query.view_index, self.query.region_index],
                    list(self.candidate_order),
                ]
            ).encode()
        )
        return h.hexdigest()


PromptMode = Literal["overlay", "native", "prerendered"]


@dataclass(frozen=True)
class TaskFacts:
    """What a model may know about a question besides its text and images: the benchmark and the
    task type the question declares (baselines and native adapters branch on them). Never the answer."""

    benchmark: str
    task_type: str | None = None  # "Q1".."Q17" (CrossViewBench)


@dataclass(frozen=True)
class Prompt:
    """Exactly what one model receives for one sample (images in order, then text), and nothing
    else: the gold answer and the protocol record stay with the runner (`RenderedPrompt`)."""

    sample_id: str
    text: str  # the full user text
    images: tuple[PromptImage, ...]
    options: tuple[Option, ...]
    mode: PromptMode
    setting: str = "all"  # MMVM candidate setting "4" | "8" | "12" | "all"
    system: str | None = None
    native: NativeRegions | None = None
    task: TaskFacts | None = None

    def content_digest(self) -> str:
        """Hash of everything a model sees; part of the response-cache key."""
        h = hashlib.sha256()
        h.update(
            json.dumps(
                {
                    "text": self.text,
                    "system": self.system,
                    "mode": self.mode,
                    "images": [[i.mime, i.sha256] for i in self.images],
                },
                sort_keys=True,
            ).encode()
        )
        if self.native is not None:
            h.update(self.native.digest().encode())
        return h.hexdigest()


@dataclass(frozen=True)
class RenderedPrompt:
    """A built prompt as the runner keeps it: what the model receives (`prompt`), the correct
    letter for THIS prompt (after candidate subsetting) and the protocol record (style, colours,
    ids, image layout). Only `prompt` ever goes into a `Request`."""

    prompt: Prompt
    answer: str | None
    protocol: Mapping[str, Any] = field(default_factory=dict)

    # read-only views of the model-visible part, so record and report code reads naturally
    @property
    def sample_id(self) -> str:
        return self.prompt.sample_id

    @property
    def text(self) -> str:
        return self.prompt.text

    @property
    def images(self) -> tuple[PromptImage, ...]:
        return self.prompt.images

    @property
    def options(self) -> tuple[Option, ...]:
        return self.prompt.options

    @property
    def mode(self) -> PromptMode:
        return self.prompt.mode

    @property
    def setting(self) -> str:
        return self.prompt.setting

    @property
    def system(self) -> str | None:
        return self.prompt.system

    @property
    def native(self) -> NativeRegions | None:
        return self.prompt.native

    def content_digest(self) -> str:
        return self.prompt.content_digest()


# --------------------------------------------------------------------------------------
# Requests and responses (model adapters)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationConfig:
    temperature: float = 0.0
    max_tokens: int = 1024
    top_p: float | None = None
    seed: int | None = None
    option_logprobs: bool = False  # score options by log-probability when the adapter can
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
            "option_logprobs": self.option_logprobs,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class Request:
    model_id: str
    prompt: Prompt
    config: GenerationConfig
    model_settings: Mapping[str, Any] = field(default_factory=dict)  # adapter settings that change answers
    # the wire body an adapter prepared for this request off the event loop (`prepare_body`); not
    # part of the request's identity: the cache key is computed from the fields above
    body: bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, Prompt):  # e.g. a RenderedPrompt, which carries the answer
            raise TypeError(f"Request.prompt must be a Prompt, not {type(self.prompt).__name__}")

    def cache_key(self) -> str:
        payload = json.dumps(
            {
                "model": self.model_id,
                "config": self.config.as_dict(),
                "settings": dict(self.model_settings),
                "prompt": self.prompt.content_digest(),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


ErrorKind = Literal[
    "rate_limit",
    "timeout",
    "server",
    "transport",
    "malformed",
    "refused",
    "invalid_request",
    "auth",
    "not_found",
    "budget",
    "budget_exhausted",
    "internal",
]


@dataclass(frozen=True)
class ModelError:
    """A failed model call. Recorded as an error, never scored as an answer, never cached."""

    kind: ErrorKind
    message: str  # secrets already removed
    status: int | None = None
    retryable: bool = False


@dataclass(frozen=True)
class Response:
    text: str | None
    usage: Usage = Usage()
    latency_s: float = 0.0
    attempts: int = 1
    error: ModelError | None = None
    option_scores: Mapping[str, float] | None = None  # letter -> log-probability / logit
    finish_reason: str | None = None
    served_model: str | None = None  # model name the server reports
    # model-side facts recorded with the sample (under protocol["model"]): e.g. the objects a native
    # model kept, its token counts, and "tie_rule": "first" when equal option scores go to the first letter
    details: Mapping[str, Any] | None = None
    reasoning: str | None = None  # reasoning / thinking text the provider returned, kept out of `text`

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Capabilities:
    """What an adapter accepts. The prompt builder decides from these, never from names."""

    max_images: int | None = None  # None: any number; 1: single-image model
    native_regions: bool = False  # takes masks + region refs (CrossViewer, CoLVA)
    option_logprobs: bool = False  # can score options by log-probability
    system_prompt: bool = True
    image_formats: tuple[str, ...] = ("image/png", "image/jpeg")

    @property
    def multi_image(self) -> bool:
        return self.max_images is None or self.max_images > 1


Access = Literal["api", "open", "native", "baseline", "human"]


@dataclass(frozen=True)
class ModelInfo:
    model_id: str  # stable id, e.g. "openai:gpt-4o", "vllm:Qwen/Qwen3-VL-8B-Instruct", "baseline:random"
    display_name: str
    access: Access
    params_b: float | None = None  # parameters in billions, when known
    provider: str = ""


@runtime_checkable
class ModelAdapter(Protocol):
    info: ModelInfo
    capabilities: Capabilities

    def settings(self) -> Mapping[str, Any]:
        """Settings that change answers (recorded in config.json and in the cache key). No secrets."""
        ...

    async def generate(self, request: Request) -> Response:
        """Answer one request. Never raises for model/transport failures: returns Response(error=...)."""
        ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------------------
# Records (runner output, one JSON line per evaluated sample in samples.jsonl)
# --------------------------------------------------------------------------------------

ParseStatus = Literal["parsed", "unparsed", "judged", "logprob", "error", "invalid"]


@dataclass(frozen=True)
class ParsedAnswer:
    letter: str | None
    status: ParseStatus
    reason: str = ""  # why unparsed ("empty", "refusal", "several letters: A, C", ...)
