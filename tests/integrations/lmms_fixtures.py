"""Shared by tests/integrations and tests/lmms: a small data root holding the synthetic tasks
(with two unreadable CrossViewBench records appended), a deterministic answer function that
mixes right, wrong, unparseable, refused and failed answers, and a cvbench model adapter that
answers with it, so both harnesses can be fed exactly the same answers."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvbench.core.types import Capabilities, ModelInfo, Request, Response

MMVM_PER_CUE = 1  # 8 cases with 2 to 13+ candidates
CVB_PER_TYPE = 1  # 17 questions, one per task type
LMMS_FAILURE = "[LMMS_EVAL_REQUEST_FAILED after 5 retries] Connection refused"


def build_data_root(base: Path) -> Path:
    """`base/data` with synth-mmvm and synth-crossviewbench (plus a broken line and a record whose
    image is missing, so invalid samples are part of every comparison)."""
    from cvbench.tasks import synthetic

    root = base / "data"
    synthetic.generate_mmvm(root / "synth-mmvm", per_cue=MMVM_PER_CUE, seed=0)
    cvb = root / "synth-crossviewbench"
    synthetic.generate_crossviewbench(cvb, per_type=CVB_PER_TYPE, seed=0)
    jsonl = cvb / "crossviewbench.jsonl"
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    missing = json.loads(lines[0])
    missing["sample_id"] = "missing-image"
    missing["views"][1]["image_path"] = "images/does-not-exist.png"
    lines.insert(2, "{ this line is not json")
    lines.append(json.dumps(missing))
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # the edited set is this fixture's own data: its manifest says so (a set whose files differ
    # from its manifest is refused when loaded)
    from cvbench.tasks.synthetic.manifest import write_folder_manifest

    write_folder_manifest(
        cvb,
        {
            "set": "crossviewbench",
            "seed": 0,
            "per_type": CVB_PER_TYPE,
            "edited_by": "tests/integrations/lmms_fixtures.py",
        },
    )
    return root


def pixel_digest(images: Sequence[Image.Image]) -> str:
    h = hashlib.sha256()
    for image in images:
        arr = np.asarray(image.convert("RGB"))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def pixel_digest_of_bytes(blobs: Sequence[bytes]) -> str:
    images = []
    for data in blobs:
        image = Image.open(io.BytesIO(data))
        image.load()
        images.append(image)
    return pixel_digest(images)


def book_key(text: str, digest: str) -> str:
    return hashlib.sha256((text + "|" + digest).encode()).hexdigest()


def answer_book(prompts: Sequence[Any]) -> dict[str, str]:
    """What a perfect model would answer, keyed by what it sees (text + pixels): built from
    cvbench's own prompts, so an answering server needs nothing but the request."""
    book: dict[str, str] = {}
    for prompt in prompts:
        if prompt is not None and prompt.answer:
            book[book_key(prompt.text, pixel_digest_of_bytes([i.data for i in prompt.images]))] = prompt.answer
    return book


def option_letters_from_text(text: str) -> list[str]:
    """The option letters listed in a prompt ('A. ...' lines)."""
    letters = []
    for line in text.splitlines():
        stripped = line.strip()
        if len(stripped) >= 2 and stripped[0].isupper() and stripped[1] == "." and stripped[0] not in letters:
            letters.append(stripped[0])
    return letters


def fixed_answer(text: str, digest: str, book: Mapping[str, str]) -> str:
    """A deterministic answer from what the model saw (text and image pixels): often the right
    letter (from `book`), else a mix of letters, answer sentences, unparseable text, refusals
    and lmms-eval's failure placeholder."""
    key = book_key(text, digest)
    value = int(key[:8], 16)
    letters = option_letters_from_text(text)
    pick = letters[value % len(letters)] if letters else "A"
    kind = (value // 7) % 10
    answer = book.get(key)
    if answer is not None and kind < 4:
        return answer
    if kind < 6:
        return pick
    if kind == 6:
        return f"The answer is ({pick})."
    if kind == 7:
        return "I cannot determine this from the images."
    if kind == 8:
        return "Probably " + " or ".join(letters[:2]) if len(letters) >= 2 else "no idea"
    return LMMS_FAILURE


class FixedAnswerAdapter:
    """A cvbench model answering with `fixed_answer` from the prompt it receives; an lmms-eval
    failure placeholder is returned as the model error it stands for."""

    capabilities = Capabilities(max_images=None)

    def __init__(self, book: Mapping[str, str]) -> None:
        self.info = ModelInfo(model_id="test:fixed-answers", display_name="fixed answers", access="baseline")
        self.book = book

    def settings(self) -> Mapping[str, Any]:
        return {"kind": "fixed"}

    async def generate(self, request: Request) -> Response:
        from cvbench.integrations.lmms_hooks import response_from_text

        prompt = request.prompt
        digest = pixel_digest_of_bytes([i.data for i in prompt.images])
        return response_from_text(fixed_answer(prompt.text, digest, self.book))

    async def aclose(self) -> None:
        return None


def answer_for_lmms(text: str, images: Sequence[Image.Image], book: Mapping[str, str]) -> str:
    """The same answer from what lmms-eval hands a model (its text and PIL images)."""
    return fixed_answer(text, pixel_digest(images), book)


def accuracies(results: Mapping[str, Any]) -> dict[str, float]:
    """`{"synth-mmvm@4": acc, "synth-mmvm@4/cue=CL": acc, ...}` from a cvbench results.json."""
    out: dict[str, float] = {}
    for key, evaluation in results["evaluations"].items():
        out[key] = evaluation["overall"]["accuracy"]
        for name, m in evaluation["slices"].items():
            out[f"{key}/{name}"] = m["accuracy"]
    return out
