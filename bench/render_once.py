"""Render once for every model: the render CPU of a second model on the same samples and settings,
as a fraction of the first model's, through the runner's own worker function (`build_or_fetch`
with the render store), on the bench set of bench/common.py (1280x720 photo-like views).

    python bench/render_once.py [--n 68] [--image-format jpeg|png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import build_dataset, machine, write_result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=68)
    parser.add_argument("--image-format", default="jpeg", choices=("jpeg", "png"))
    args = parser.parse_args(argv)

    from cvbench.core.types import Capabilities, Sample
    from cvbench.prompting.build import PromptSettings, build_prompt
    from cvbench.prompting.encoding import ImagePolicy
    from cvbench.runner.jsonable import jsonable
    from cvbench.runner.prompt_cache import prompt_key
    from cvbench.runner.prompt_pool import build_or_fetch
    from cvbench.runner.render_store import RenderStore
    from cvbench.tasks.loading import dataset_fingerprint, iter_task_samples
    from cvbench.tasks.registry import get_task

    root = build_dataset(args.n)
    spec = get_task("crossviewbench")
    samples = [s for s in iter_task_samples(spec, root) if isinstance(s, Sample)]
    settings = PromptSettings(image=ImagePolicy(format=args.image_format))
    caps = Capabilities(max_images=None)
    fingerprint = dataset_fingerprint(spec, root)
    settings_json = jsonable(settings.as_dict())
    result: dict[str, Any] = {"machine": machine(), "n": len(samples), "image_format": args.image_format}
    with tempfile.TemporaryDirectory() as tmp:
        store = RenderStore(Path(tmp) / "renders.sqlite")
        cpu = []
        for model in ("first", "second"):
            t = time.process_time()
            stored = 0
            for s in samples:
                key = prompt_key(s, spec.name, "all", fingerprint, settings_json, caps)
                built = build_or_fetch(
                    lambda s=s: build_prompt(s, settings, caps), key, store, lambda p: jsonable(dict(p.protocol))
                )
                stored += built.stored
            cpu.append(time.process_time() - t)
            result[f"{model}_model_cpu_s"] = round(cpu[-1], 3)
            result[f"{model}_model_from_store"] = stored
        result["store_bytes"] = store.stats().bytes
        store.close()
    t = time.process_time()
    for s in samples:  # the same rendering without the store: what writing it costs the first run
        build_or_fetch(lambda s=s: build_prompt(s, settings, caps), None, None, lambda p: None)
    plain = time.process_time() - t
    result["no_store_cpu_s"] = round(plain, 3)
    result["first_run_store_overhead_fraction"] = round(cpu[0] / plain - 1, 4)
    result["second_model_render_fraction"] = round(cpu[1] / cpu[0], 4)
    print(
        f"{len(samples)} samples, {args.image_format}: first model {cpu[0]:.2f} CPU-s "
        f"({cpu[0] / len(samples) * 1000:.1f} ms/sample), second {cpu[1]:.2f} CPU-s: "
        f"second_model_render_fraction {result['second_model_render_fraction']:.3f}; without the store "
        f"{plain:.2f} CPU-s (store overhead on the first run {result['first_run_store_overhead_fraction']:+.1%})"
    )
    print("written", write_result(f"render-once-{args.image_format}", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
