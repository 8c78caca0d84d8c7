"""CPU per sample of building a chat-completions body, old way against new, side by side: the data
URLs as text plus the SDK's `json.dumps` of the whole body (what ran on the event loop before
issue 18) against `openai_api.chat_body` (the small part serialised, the base64 spliced in as
bytes; now in the prompt worker). Same prompts (3-view 1280x720 JPEG bench samples), one thread.

    python bench/body_bench.py [--samples 10] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import build_dataset, machine, write_result


def cpu_ms(work: Callable[[], Any], repeats: int) -> float:
    start = time.thread_time()
    for _ in range(repeats):
        work()
    return (time.thread_time() - start) / repeats * 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    from cvbench.core.types import Capabilities, Sample
    from cvbench.model_adapters import openai_api
    from cvbench.prompting.build import PromptSettings, build_prompt
    from cvbench.prompting.encoding import ImagePolicy
    from cvbench.tasks.loading import iter_task_samples
    from cvbench.tasks.registry import get_task

    root = build_dataset(102)
    samples = [s for s in iter_task_samples(get_task("crossviewbench"), root) if isinstance(s, Sample)]
    settings = PromptSettings(image=ImagePolicy(format="jpeg"))
    prompts = [build_prompt(s, settings, Capabilities()).prompt for s in samples[: args.samples]]
    fields = {"max_tokens": 1024, "temperature": 0.0}

    def fresh() -> list[Any]:  # new PromptImage objects: nothing cached from an earlier repeat
        return [replace(p, images=tuple(replace(i) for i in p.images)) for p in prompts]

    def old() -> None:
        for p in fresh():
            body = {"model": "m", "messages": openai_api.chat_messages(p, None), **fields}
            json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def new() -> None:
        for p in fresh():
            openai_api.chat_body("m", p, None, fields)

    result: dict[str, Any] = {"machine": machine(), "samples": len(prompts), "repeats": args.repeats}
    copies = cpu_ms(fresh, args.repeats)
    old_ms = (cpu_ms(old, args.repeats) - copies) / len(prompts)
    new_ms = (cpu_ms(new, args.repeats) - copies) / len(prompts)
    result |= {"old_body_cpu_ms_per_sample": round(old_ms, 3), "new_body_cpu_ms_per_sample": round(new_ms, 3)}
    result["new_over_old"] = round(new_ms / old_ms, 3)
    print(f"body per sample: old {old_ms:.2f} ms (on the event loop), new {new_ms:.2f} ms (in the worker)")
    print("written", write_result("body", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
