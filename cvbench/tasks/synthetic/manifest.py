"""Checksum manifests of generated synthetic sets, checked whenever a synthetic task is loaded.

Every generated set carries `MANIFEST.json`: the generator's parameters (set, seed, size) and
the SHA-256 of each file (for images also of the decoded RGB pixels). The built-in sets
(`synth-crossviewbench`, `synth-mmvm` at the built-in seed and size) are generated on first use
rather than shipped (about 32 MB together), and their expected manifest IS shipped in the
package (`builtin_manifest.json`): the generator has no library-version-dependent step (float64
ray casting, the project's own bitmap text, fixed-setting image writers), so every install
must produce exactly those files. A set generated with other parameters is checked against its
own manifest (nothing in it was edited since generation).

A file that differs is an error naming it; nothing is regenerated over the user's files. An
image whose bytes differ (another zlib or libjpeg build) but whose pixels are identical passes,
since the pixels are what a model is shown.

- ``ManifestMismatch``: the error
- ``manifest_for(folder) -> dict``: path -> digests (the manifest file itself excluded)
- ``write_folder_manifest(folder, generator)``: called by the generators when a set is complete
- ``verify_synthetic(name, folder, data_file)``: raises ManifestMismatch naming the bad files
- ``python -m cvbench.tasks.synthetic.update_manifest``: regenerate both built-in sets into a
  temporary folder and rewrite the shipped manifest (after a deliberate generator change)
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.tasks.synthetic.builtin import (
    BUILTIN_CVB_PER_TYPE,
    BUILTIN_MMVM_PER_CUE,
    BUILTIN_SEED,
    CVB_GENERATOR_VERSION,
    MMVM_GENERATOR_VERSION,
)

MANIFEST_NAME = "MANIFEST.json"
SHIPPED_MANIFEST = Path(__file__).with_name("builtin_manifest.json")
MANIFEST_SCHEMA = "cvbench.synthetic-manifest/1"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Entries = dict[str, dict[str, str]]


class ManifestMismatch(ValueError):
    pass


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pixels_sha256(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    h = hashlib.sha256(f"{rgb.shape[0]}x{rgb.shape[1]}x3".encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(folder).as_posix()
            if not name.startswith(".") and rel != MANIFEST_NAME:
                found.append(rel)
    return sorted(found)


def manifest_for(folder: Path) -> Entries:
    entries: Entries = {}
    for rel in _files(folder):
        path = folder / rel
        entry = {"sha256": _file_sha256(path)}
        if rel.lower().endswith(_IMAGE_SUFFIXES):
            entry["pixels_sha256"] = _pixels_sha256(path)
        entries[rel] = entry
    return entries


def write_folder_manifest(folder: Path, generator: dict[str, Any]) -> Path:
    path = folder / MANIFEST_NAME
    payload = {"schema": MANIFEST_SCHEMA, "generator": generator, "files": manifest_for(folder)}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def builtin_generators() -> dict[str, dict[str, Any]]:
    return {
        "synth-crossviewbench": {
            "set": "crossviewbench",
            "seed": BUILTIN_SEED,
            "per_type": BUILTIN_CVB_PER_TYPE,
            "version": CVB_GENERATOR_VERSION,
        },
        "synth-mmvm": {
            "set": "mmvm",
            "seed": BUILTIN_SEED,
            "per_cue": BUILTIN_MMVM_PER_CUE,
            "version": MMVM_GENERATOR_VERSION,
        },
    }


def stale_builtin_version(name: str, folder: Path) -> str | None:
    """The generator version of a built-in set on disk that another cvbench version generated
    (its manifest names the built-in parameters and another or no version), else None. Such a
    folder is cvbench's own output from before an upgrade, not a set whose files were changed."""
    builtin = builtin_generators().get(name)
    path = folder / MANIFEST_NAME
    if builtin is None or not path.is_file():
        return None
    try:
        generator = json.loads(path.read_text(encoding="utf-8")).get("generator")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    if not isinstance(generator, dict):
        return None
    same_parameters = {k: v for k, v in generator.items() if k != "version"} == {
        k: v for k, v in builtin.items() if k != "version"
    }
    if not same_parameters or generator.get("version") == builtin["version"]:
        return None
    return str(generator.get("version") or "unversioned")


@lru_cache(maxsize=1)
def shipped_manifest() -> dict[str, Entries]:
    data = json.loads(SHIPPED_MANIFEST.read_text(encoding="utf-8"))
    if data.get("schema") != MANIFEST_SCHEMA:
        raise ManifestMismatch(f"{SHIPPED_MANIFEST}: schema {data.get('schema')!r}, expected {MANIFEST_SCHEMA!r}")
    sets: dict[str, Entries] = data["sets"]
    return sets


def _read_folder_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ManifestMismatch(
            f"{path}: missing. This synthetic set was not written by this version of the generator (or was "
            f"assembled by hand), so cvbench cannot tell it is intact. Move the folder away and cvbench "
            f"regenerates it on the next run (or `cvbench data synth` writes a fresh one); cvbench never "
            f"overwrites it for you."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestMismatch(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA or not isinstance(data.get("files"), dict):
        raise ManifestMismatch(f"{path}: not a {MANIFEST_SCHEMA} manifest")
    return data


# (folder, data file mtime_ns, size) already verified in this process: loading a set many
# times in one process (tests, sweeps) hashes it once
_VERIFIED: set[tuple[str, str, int, int]] = set()


def _problems(folder: Path, expected: Entries) -> list[str]:
    problems: list[str] = []
    for rel, entry in expected.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if _file_sha256(path) == entry["sha256"]:
            continue
        if "pixels_sha256" not in entry:
            problems.append(f"{path}: content differs from the manifest")
            continue
        try:
            same = _pixels_sha256(path) == entry["pixels_sha256"]
        except OSError as exc:
            problems.append(f"{path}: not a readable image ({exc})")
            continue
        if not same:
            problems.append(f"{path}: pixels differ from the manifest")
    return problems


def verify_synthetic(name: str, folder: Path, data_file: str) -> None:
    """Check a synthetic set's files: the built-in parameters against the shipped manifest, any
    other against the set's own; raise ManifestMismatch naming each missing or differing file."""
    stat = (folder / data_file).stat()
    key = (str(folder.resolve()), name, stat.st_mtime_ns, stat.st_size)
    if key in _VERIFIED:
        return
    own = _read_folder_manifest(folder)
    builtin = builtin_generators().get(name)
    if builtin is not None and own.get("generator") == builtin:
        expected, against = shipped_manifest()[name], f"the built-in set's manifest shipped with cvbench ({name})"
    else:
        expected, against = own["files"], str(folder / MANIFEST_NAME)
    problems = _problems(folder, expected)
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise ManifestMismatch(
            f"synthetic set in {folder} does not match {against}:\n  {shown}\n"
            f"The files were changed after generation, or this install's generator draws differently (please "
            f"report that). Move the folder away and cvbench regenerates it on the next run; cvbench never "
            f"overwrites it for you."
        )
    _VERIFIED.add(key)
