"""Rewrite the shipped manifest of the built-in synthetic sets (after a deliberate generator
change; commit it with the golden files that change with it):

    python -m cvbench.tasks.synthetic.update_manifest
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cvbench.tasks import synthetic
from cvbench.tasks.synthetic.manifest import (
    MANIFEST_SCHEMA,
    SHIPPED_MANIFEST,
    Entries,
    manifest_for,
    shipped_manifest,
)


def write_shipped_manifest() -> Path:
    sets: dict[str, Entries] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cvb, mmvm = Path(tmp) / "cvb", Path(tmp) / "mmvm"
        synthetic.generate_crossviewbench(cvb, per_type=synthetic.BUILTIN_CVB_PER_TYPE, seed=synthetic.BUILTIN_SEED)
        synthetic.generate_mmvm(mmvm, per_cue=synthetic.BUILTIN_MMVM_PER_CUE, seed=synthetic.BUILTIN_SEED)
        sets["synth-crossviewbench"] = manifest_for(cvb)
        sets["synth-mmvm"] = manifest_for(mmvm)
    SHIPPED_MANIFEST.write_text(
        json.dumps({"schema": MANIFEST_SCHEMA, "sets": sets}, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    shipped_manifest.cache_clear()
    return SHIPPED_MANIFEST


if __name__ == "__main__":
    print(write_shipped_manifest())
