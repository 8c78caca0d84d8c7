"""Seeds derived from the run seed and the sample id, so every random choice is reproducible."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(run_seed: int, *parts: object) -> int:
    """A 63-bit seed from the run seed and any labels (sample id, purpose, setting...)."""
    h = hashlib.sha256(repr((int(run_seed),) + tuple(str(p) for p in parts)).encode())
    return int.from_bytes(h.digest()[:8], "big") >> 1


def rng_for(run_seed: int, *parts: object) -> np.random.Generator:
    """A numpy Generator seeded from the run seed and labels, e.g. rng_for(seed, sample_id, "ids")."""
    return np.random.default_rng(derive_seed(run_seed, *parts))
