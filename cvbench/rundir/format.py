"""The run directory: the one on-disk contract between the runner and everything that reads runs.

    RUN_DIR/config.json     provenance (versions, data fingerprint, protocol, seed, model settings; never a secret)
    RUN_DIR/samples.jsonl   one SampleRecord per evaluated (task, setting, sample), flushed as each finishes
    RUN_DIR/results.json    metrics: overall + per-evaluation + per-slice, each with intervals and chance
    RUN_DIR/images/         the images exactly as the model saw them: images/<sha256[:2]>/<sha256>.<ext>

Each file has one typed value with one reader and one writer: `RunConfig` (rundir/config.py),
`Results` (rundir/results.py), `SampleRecord` (rundir/records.py). This module gathers them for
importers. The format is documented in docs/run-format.md; bump the schema on any incompatible change.
"""

from __future__ import annotations

from cvbench.rundir.config import RunConfig, comparability_differences, config_differences, read_config, write_config
from cvbench.rundir.io import (
    CONFIG_FILE,
    CONFIG_SCHEMA,
    IMAGES_DIR,
    RECORD_SCHEMA,
    RESULTS_FILE,
    RESULTS_SCHEMA,
    SAMPLES_FILE,
    RunDirError,
    image_relpath,
    is_sha256,
    read_json,
    unique_temp_path,
    write_bytes_atomic,
    write_json_atomic,
)
from cvbench.rundir.records import SampleRecord, iter_records
from cvbench.rundir.results import Evaluation, MetricSummary, Results, read_results, write_results
from cvbench.rundir.run import RunData, find_run_dirs, load_run

__all__ = [
    "CONFIG_FILE",
    "CONFIG_SCHEMA",
    "IMAGES_DIR",
    "RECORD_SCHEMA",
    "RESULTS_FILE",
    "RESULTS_SCHEMA",
    "SAMPLES_FILE",
    "Evaluation",
    "MetricSummary",
    "Results",
    "RunConfig",
    "RunData",
    "RunDirError",
    "SampleRecord",
    "comparability_differences",
    "config_differences",
    "find_run_dirs",
    "image_relpath",
    "is_sha256",
    "iter_records",
    "load_run",
    "read_config",
    "read_json",
    "read_results",
    "unique_temp_path",
    "write_bytes_atomic",
    "write_config",
    "write_json_atomic",
    "write_results",
]
