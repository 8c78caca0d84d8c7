"""Collect the issue-18 figures from bench/results/*.json into bench/results/targets.json under stable
keys, and print each target with its figure. Run the measuring scripts first (see docs/performance.md).

    python bench/targets.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS: dict[str, tuple[str, str, str, float]] = {
    # key: (result file, field (dotted path), comparison, target)
    "harness_over_floor": ("throughput-1020-jpeg.json", "harness_over_floor", "<=", 1 / 0.85),
    "cpu_s_per_sample": ("scaling-jpeg.json", "cpu_s_per_sample", "<=", 0.08),
    "serial_ms_per_sample": ("scaling-jpeg.json", "serial_ms_per_sample", "<=", 4.0),
    "amdahl_16_cores_samples_per_s": ("scaling-jpeg.json", "amdahl_samples_per_s.16", ">=", 150.0),
    "second_model_render_fraction": ("render-once-jpeg.json", "second_model_render_fraction", "<=", 0.05),
    "vs_lmms_cpu_ratio": ("vs-lmms.json", "vs_lmms_cpu_ratio", ">=", 10.0),
    "vs_lmms_rss_ratio": ("vs-lmms.json", "vs_lmms_rss_ratio", ">=", 3.0),
    "peak_rss_mib_17000": ("throughput-17000-thumbnails.json", "cold.peak_rss_mib_tree", "<=", 1024.0),
    "warm_rerun_s_17000": ("warm-17000.json", "current.wall_s", "<=", 15.0),  # median, bench/warm_rerun.py
    "render_37_candidates_1080p_ms": ("render.json", "results.candidate_view.median_ms", "<=", 100.0),
}
# Shown beside the targets, not targets: the same figures on the noisy stress views (per-pixel
# noise far above a photograph's; the targets are stated on photo-like views, bench/common.py).
STRESS: dict[str, tuple[str, str]] = {
    "cpu_s_per_sample_noisy": ("scaling-jpeg-noisy.json", "cpu_s_per_sample"),
    "serial_ms_per_sample_noisy": ("scaling-jpeg-noisy.json", "serial_ms_per_sample"),
    "amdahl_16_cores_samples_per_s_noisy": ("scaling-jpeg-noisy.json", "amdahl_samples_per_s.16"),
}


def lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def main() -> int:
    out: dict[str, Any] = {}
    for key, (name, field, op, target) in TARGETS.items():
        path = RESULTS / name
        data = json.loads(path.read_text()) if path.exists() else {}
        value = lookup(data, field)
        met = None if value is None else (value <= target if op == "<=" else value >= target)
        machine = data.get("machine", {})
        out[key] = {
            "value": value,
            "target": f"{op} {round(target, 3)}",
            "met": met,
            "file": name,
            "cpu": machine.get("cpu"),
            "cores": machine.get("cores"),
            "loadavg_start": machine.get("loadavg_start"),
        }
        shown = "not measured" if value is None else f"{value} ({'met' if met else 'not met'})"
        print(f"{key:30s} {shown:24s} target {op} {target:.3g}   [{name}]")
    for key, (name, field) in STRESS.items():
        path = RESULTS / name
        data = json.loads(path.read_text()) if path.exists() else {}
        value = lookup(data, field)
        machine = data.get("machine", {})
        out[key] = {
            "value": value,
            "target": None,
            "met": None,
            "file": name,
            "note": "noisy stress views, not a target",
            "cpu": machine.get("cpu"),
            "cores": machine.get("cores"),
            "loadavg_start": machine.get("loadavg_start"),
        }
        shown = "not measured" if value is None else str(value)
        print(f"{key:36s} {shown:18s} (stress views, no target)   [{name}]")
    (RESULTS / "targets.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main() if not sys.argv[1:] else 2)
