"""Which part of config.json decides a run's records, so that a resume, a merge and a shard agree.

The identity is marked on RunConfig's fields (cvbench/rundir/config.py); this module reads
config.json data through that type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cvbench.rundir import config as rundir_config
from cvbench.rundir.config import RunConfig
from cvbench.rundir.io import CONFIG_FILE
from cvbench.rundir.schema import identity_keys

IDENTITY_KEYS = identity_keys(RunConfig)


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of config.json that decides the records (the answers, and the price their costs
    are computed at): must match to resume a run."""
    return RunConfig.from_json(config, CONFIG_FILE).identity()


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Sequence[str] = ()) -> list[str]:
    """'path: old != new' for every identity value that differs (nested objects by dotted path)."""
    return rundir_config.config_differences(
        RunConfig.from_json(old, CONFIG_FILE), RunConfig.from_json(new, CONFIG_FILE), ignore
    )
