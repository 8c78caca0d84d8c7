"""The procedural synthetic benchmark: rendered 3D scenes with exact geometry, in the upstream
CrossViewBench (JSONL) and MMVM (TSV + case folders) formats.

- `generate_crossviewbench(out_dir, per_type, seed) -> Path`: `crossviewbench.jsonl` + `images/`
- `generate_mmvm(out_dir, per_cue, seed) -> Path`: `mllm_match_eval_full.tsv` + `match_bench/`
- `BUILTIN_SEED`, `BUILTIN_CVB_PER_TYPE`, `BUILTIN_MMVM_PER_CUE`: the built-in offline set that
  `cvbench run` generates on first use.

See docs/synthetic.md.
"""

from __future__ import annotations

from cvbench.tasks.synthetic.builtin import (
    BUILTIN_CVB_PER_TYPE,
    BUILTIN_MMVM_PER_CUE,
    BUILTIN_SEED,
)
from cvbench.tasks.synthetic.crossviewbench import (
    SynthesisError,
    generate_crossviewbench,
)
from cvbench.tasks.synthetic.mmvm import CaseLayoutError, generate_mmvm

__all__ = [
    "BUILTIN_CVB_PER_TYPE",
    "BUILTIN_MMVM_PER_CUE",
    "BUILTIN_SEED",
    "CaseLayoutError",
    "SynthesisError",
    "generate_crossviewbench",
    "generate_mmvm",
]
