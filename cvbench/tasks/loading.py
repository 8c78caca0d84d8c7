"""Where a task's data lives, how it is loaded, and what identifies it.

`iter_task_samples(spec)` is the one entry point the runner uses: it finds the task's folder
under the data root, generates the synthetic sets on first use, raises `DataNotFoundError`
(saying where the files go and how to get them) for a missing official set, and streams
`Sample | InvalidSample` from the benchmark's loader.

The helpers both loaders share (errors, path containment, option lines) are in `files.py`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cvbench.core.locations import data_root
from cvbench.core.types import InvalidSample, Sample, TaskSpec
from cvbench.tasks.crossviewbench import iter_crossviewbench
from cvbench.tasks.files import DataFormatError, RecordError, ensure_resolves_inside
from cvbench.tasks.mmvm import iter_mmvm
from cvbench.tasks.registry import load_task_specs

FINGERPRINT_VERSION = "cvbench.dataset/1"
logger = logging.getLogger(__name__)


class DataNotFoundError(FileNotFoundError):
    """An official dataset that is not on this machine; the message says how to get it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def task_data_dir(spec: TaskSpec, data_dir: Path | str | None = None) -> Path:
    """The task's folder: `<root>/<data_subdir>`, or for an official task the root itself when
    it directly holds the data file. Synthetic tasks always live in their own subfolder, so a
    root that holds official data is never mistaken for the synthetic set."""
    root = data_root(data_dir)
    sub = root / spec.data_subdir
    if (sub / spec.data_file).is_file():
        return sub
    if not spec.synthetic and (root / spec.data_file).is_file():
        return root
    return sub


def ensure_task_data(spec: TaskSpec, data_dir: Path | str | None = None) -> Path:
    """The task's folder with its data file present: synthetic sets are generated on first
    use; a missing official set raises DataNotFoundError."""
    folder = task_data_dir(spec, data_dir)
    if not spec.synthetic:
        if not (folder / spec.data_file).is_file():
            raise DataNotFoundError(missing_data_message(spec, folder))
        return folder
    # imported here, not at the top: the synthetic package is data covered by the dataset
    # fingerprint, and must stay out of the prompt path whose source the prompt cache hashes
    from cvbench.tasks.synthetic.manifest import (
        ManifestMismatch,
        builtin_generators,
        stale_builtin_version,
        verify_synthetic,
    )

    if (folder / spec.data_file).is_file():
        builtin_version = str(builtin_generators().get(spec.name, {}).get("version"))
        move_aside_stale_builtin(spec, folder, stale_builtin_version(spec.name, folder), builtin_version)
    if not (folder / spec.data_file).is_file():
        folder = generate_synthetic(spec, folder)
    try:
        verify_synthetic(spec.name, folder, spec.data_file)
    except ManifestMismatch as exc:
        raise DataFormatError(str(exc)) from None
    return folder


def move_aside_stale_builtin(spec: TaskSpec, folder: Path, version: str | None, builtin_version: str) -> None:
    """A built-in synthetic set that an earlier cvbench generated (`version`: its generator's, not
    this install's) is renamed to `<folder>.<version>` beside it, kept as it was, so this version's
    set is generated in its place: upgrading cvbench needs no step by hand, and nothing is deleted."""
    if version is None:
        return
    tag = re.sub(r"[^A-Za-z0-9.-]+", "-", version).strip("-")
    target = folder.with_name(f"{folder.name}.{tag}")
    n = 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}.{tag}.{n}")
    try:
        os.rename(folder, target)
    except FileNotFoundError:  # another process moved it first
        return
    logger.warning(
        "%s holds the built-in %r of another cvbench release (generator %s, this one's is %s): kept it "
        "as %s, generating this release's set in its place.",
        folder,
        spec.name,
        version,
        builtin_version,
        target,
    )


def missing_data_message(spec: TaskSpec, folder: Path) -> str:
    if spec.benchmark == "mmvm":
        layout = (
            f"  {folder}/{spec.data_file}\n"
            f"  {folder}/match_bench/case_*/FRAME00.jpg, FRAME00_ORI.jpg, FRAME00.json,\n"
            f"                          FRAME01_CAND.jpg, FRAME01_ORI.jpg, FRAME01_CAND.json"
        )
        get = f"  cvbench data download {spec.name}    (Hugging Face Hub; pip install 'cvbench[hub]')"
    else:
        layout = (
            f"  {folder}/{spec.data_file}\n  {folder}/<image_path / video_path of each view, relative to that folder>"
        )
        get = (
            f"  cvbench data download {spec.name} --repo OWNER/NAME\n"
            f"  cvbench data download {spec.name} --from-dir /path/to/your/copy"
        )
    hint = spec.obtain_hint.replace("<folder>", str(folder))  # facts about the source only; said once
    return (
        f"task {spec.name!r}: data not found." + (f" {hint}" if hint else "") + f"\nExpected:\n{layout}\n"
        f"Get it with:\n{get}\n"
        f"or place the files there by hand, or point --data-dir / $CVBENCH_DATA at a folder that holds "
        f"{spec.data_subdir}/{spec.data_file}. Check it with: cvbench data verify {folder}"
    )


def generate_synthetic(spec: TaskSpec, folder: Path) -> Path:
    """Generate a synthetic task into `folder` atomically: into a temporary sibling first,
    renamed into place only when complete, so a crash never leaves half a dataset."""
    from cvbench.tasks import synthetic

    if folder.is_dir() and any(folder.iterdir()):
        raise DataFormatError(
            f"{folder} exists but holds no {spec.data_file}; move it away so the synthetic set "
            f"{spec.name!r} can be generated there"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.generating-", dir=folder.parent))
    try:
        if spec.benchmark == "crossviewbench":
            synthetic.generate_crossviewbench(
                staging, per_type=synthetic.BUILTIN_CVB_PER_TYPE, seed=synthetic.BUILTIN_SEED
            )
        else:
            synthetic.generate_mmvm(staging, per_cue=synthetic.BUILTIN_MMVM_PER_CUE, seed=synthetic.BUILTIN_SEED)
        if not (staging / spec.data_file).is_file():
            raise DataFormatError(f"synthetic generator for {spec.name!r} wrote no {spec.data_file} into {staging}")
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the finished dataset is ordinary data
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        try:
            os.rename(staging, folder)
        except OSError:
            if (folder / spec.data_file).is_file():  # another process finished first: use its copy
                return folder
            raise DataFormatError(
                f"{folder} exists but holds no {spec.data_file}; move it away so the synthetic "
                f"set {spec.name!r} can be generated there"
            ) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


# ------------------------------------------------------------------------------ loading


def iter_task_samples(spec: TaskSpec, data_dir: Path | str | None = None) -> Iterator[Sample | InvalidSample]:
    """Every sample of the task, lazily, in file order; bad records come as InvalidSample."""
    folder = ensure_task_data(spec, data_dir)
    try:  # the data file itself is data: a link to outside the task folder is refused like any path
        ensure_resolves_inside(folder / spec.data_file, folder, str(folder / spec.data_file))
    except RecordError as exc:
        raise DataFormatError(str(exc)) from None
    return iter_data_file(spec.source, folder / spec.data_file, folder)


def iter_data_file(source: str, data_file: Path, folder: Path) -> Iterator[Sample | InvalidSample]:
    """Dispatch on the spec's source format."""
    if source == "crossviewbench-jsonl":
        return iter_crossviewbench(data_file, folder)
    if source == "mmvm-tsv":
        return iter_mmvm(data_file, folder)
    raise DataFormatError(f"unknown data source format {source!r}")


# ------------------------------------------------------------------------------ provenance


def dataset_fingerprint(spec: TaskSpec, data_dir: Path | str | None = None) -> str:
    """`sha256:<hex>` over the data file's bytes and the sorted list of the task folder's files.

    Only content and relative names enter the hash (no sizes, mtimes, absolute paths or
    hidden files), so identical data gives the identical fingerprint on any machine.
    """
    folder = ensure_task_data(spec, data_dir)
    return fingerprint_folder(folder, spec.data_file, skip_dirs=_other_task_dirs(spec, folder))


def fingerprint_folder(folder: Path, data_file: str, skip_dirs: Sequence[str] = ()) -> str:
    h = hashlib.sha256()
    h.update(f"{FINGERPRINT_VERSION}\n{data_file}\n".encode())
    with open(folder / data_file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(b"\n--listing--\n")
    for rel in sorted(_listing(folder, set(skip_dirs))):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\n")
    return f"sha256:{h.hexdigest()}"


def _listing(folder: Path, skip_top: set[str]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = Path(dirpath)
        top = here == folder
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not (top and d in skip_top)]
        for name in filenames:
            if not name.startswith("."):
                yield (here / name).relative_to(folder).as_posix()


def _other_task_dirs(spec: TaskSpec, folder: Path) -> list[str]:
    """When the task's data sits directly in the data root, other tasks' subfolders are not its data."""
    if folder.name == spec.data_subdir:
        return []

    return [s.data_subdir for s in load_task_specs().values() if s.name != spec.name]
