"""`cvbench data download`: fetch a benchmark and place it where the loaders look.

MMVM comes from the Hugging Face Hub (`zhouyik/MMVMBench`) with `huggingface_hub.snapshot_download`
(extra `hub`); CrossViewBench from a Hub repo you name, or from a local folder (copied or
linked). Archives in the download (zip, tar, tar.gz/bz2/xz) are unpacked with every member
checked (no absolute paths, no `..`, no links or devices). The result is assembled in a
hidden staging folder under the data root and renamed into place only when complete, so an
interrupted download never leaves a half dataset where the loaders look.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

MMVM_REPO = "zhouyik/MMVMBench"
MMVM_FILE = "mllm_match_eval_full.tsv"
MMVM_CASES = "match_bench"
CVB_FILE = "crossviewbench.jsonl"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
HUB_HINT = "pip install 'cvbench[hub]'"


class DownloadError(RuntimeError):
    """A download or placement that failed; the message says how to place the files by hand."""


class UnsafeArchiveError(DownloadError):
    """An archive member that would land outside the extraction folder, or is a link/device."""


# ------------------------------------------------------------------------------ instructions


def manual_instructions(dataset: str, folder: Path) -> str:
    """Exactly which files go in which folder, for placing a dataset by hand."""
    if dataset == "mmvm":
        return (
            f"To place MMVM by hand, download the dataset repo {MMVM_REPO} from https://huggingface.co/datasets/"
            f"{MMVM_REPO} on a machine with network access, unpack its archives, and arrange:\n"
            f"  {folder}/{MMVM_FILE}\n"
            f"  {folder}/{MMVM_CASES}/case_*/FRAME00.jpg FRAME00_ORI.jpg FRAME00.json "
            f"FRAME01_CAND.jpg FRAME01_ORI.jpg FRAME01_CAND.json\n"
            f"or run: cvbench data download mmvm --from-dir /path/to/that/copy\n"
            f"then check it with: cvbench data verify {folder}"
        )
    return (
        f"To place CrossViewBench by hand, copy the benchmark JSONL to\n"
        f"  {folder}/{CVB_FILE}\n"
        f"with its images/videos under {folder} (the JSONL's image_path / video_path are relative to that "
        f"folder, or to its parent), or run: cvbench data download crossviewbench --from-dir /path/to/copy\n"
        f"then check it with: cvbench data verify {folder}"
    )


# ------------------------------------------------------------------------------ archives


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and any(name.endswith(s) for s in ARCHIVE_SUFFIXES)


def _member_target(dest: Path, name: str, archive: Path) -> Path:
    clean = name.replace("\\", "/")
    posix = PurePosixPath(clean)
    if posix.is_absolute() or ".." in posix.parts or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside {dest}; refusing to unpack")
    target = Path(os.path.normpath(dest / clean))
    if target != dest and dest not in target.parents:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside {dest}; refusing to unpack")
    return target


def safe_extract_zip(archive: Path, dest: Path) -> None:
    dest = Path(os.path.abspath(dest))
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:  # check everything before writing anything
            _member_target(dest, info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to unpack")
        for info in members:
            target = _member_target(dest, info.filename, archive)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def safe_extract_tar(archive: Path, dest: Path) -> None:
    dest = Path(os.path.abspath(dest))
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _member_target(dest, m.name, archive)
            if not (m.isfile() or m.isdir()):
                kind = "link" if (m.issym() or m.islnk()) else "special file"
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a {kind}; refusing to unpack")
        for m in members:
            target = _member_target(dest, m.name, archive)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            if src is None:
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} cannot be read")
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def unpack_archives(folder: Path) -> list[Path]:
    """Unpack every archive under `folder` next to itself (archives inside archives too),
    deleting each archive once unpacked. Returns the archives unpacked."""
    done: list[Path] = []
    while True:
        pending = sorted(p for p in folder.rglob("*") if is_archive(p) and ".cache" not in p.relative_to(folder).parts)
        if not pending:
            return done
        for archive in pending:
            try:
                if archive.name.lower().endswith(".zip"):
                    safe_extract_zip(archive, archive.parent)
                else:
                    safe_extract_tar(archive, archive.parent)
            except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
                raise DownloadError(f"{archive.name}: not a readable archive ({exc})") from exc
            archive.unlink()
            done.append(archive)


# ------------------------------------------------------------------------------ locating the data


def _shallowest(paths: list[Path], base: Path) -> list[Path]:
    paths = [p for p in paths if ".cache" not in p.relative_to(base).parts and "__MACOSX" not in p.parts]
    if not paths:
        return []
    depth = min(len(p.relative_to(base).parts) for p in paths)
    return sorted(p for p in paths if len(p.relative_to(base).parts) == depth)


def locate_mmvm(folder: Path) -> tuple[Path, Path]:
    """The TSV and the `match_bench` folder inside an unpacked download."""
    tsvs = _shallowest(list(folder.rglob(MMVM_FILE)), folder)
    if len(tsvs) != 1:
        found = ", ".join(str(p.relative_to(folder)) for p in tsvs) or "none"
        raise DownloadError(f"expected exactly one {MMVM_FILE} in the download, found {found}")
    dirs = [p for p in folder.rglob(MMVM_CASES) if p.is_dir()]
    if not dirs:  # an archive may hold the case_* folders without their parent
        dirs = [
            p
            for p in [folder, *folder.rglob("*")]
            if p.is_dir() and any(c.is_dir() and c.name.startswith("case_") for c in p.iterdir())
        ]
    cases = _shallowest(dirs, folder)
    if len(cases) != 1:
        found = ", ".join(str(p.relative_to(folder)) for p in cases) or "none"
        raise DownloadError(f"expected one {MMVM_CASES}/ folder of case_* folders in the download, found {found}")
    return tsvs[0], cases[0]


def locate_jsonl(folder: Path, file_name: str | None) -> Path:
    """The benchmark JSONL inside a download: `file_name` if given, else crossviewbench.jsonl,
    else the only .jsonl."""
    wanted = file_name or CVB_FILE
    hits = _shallowest([p for p in folder.rglob(wanted) if p.is_file()], folder)
    if not hits and file_name is None:
        hits = _shallowest([p for p in folder.rglob("*.jsonl") if p.is_file()], folder)
    if len(hits) != 1:
        found = ", ".join(str(p.relative_to(folder)) for p in hits) or "none"
        raise DownloadError(
            f"expected one benchmark JSONL ({wanted} or a single *.jsonl) in the source, found "
            f"{found}; name it with --file"
        )
    return hits[0]


# ------------------------------------------------------------------------------ placing


def _snapshot(repo_id: str, repo_type: str, revision: str | None, into: Path) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DownloadError(f"downloading needs huggingface_hub: {HUB_HINT}") from None
    try:
        return Path(snapshot_download(repo_id=repo_id, repo_type=repo_type, revision=revision, local_dir=into))
    except Exception as exc:
        raise DownloadError(
            f"could not download {repo_type} {repo_id!r} from the Hugging Face Hub "
            f"({type(exc).__name__}: {_one_line(exc)})"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _prepare_target(target: Path, data_file: str, force: bool) -> None:
    if (target.is_symlink() or target.exists()) and not force:
        what = "data" if (target / data_file).exists() else "files"
        raise DownloadError(f"{target} already holds {what}; pass --force to replace it")


def _install(staged: Path, target: Path) -> None:
    """Rename the staged folder into place; an old copy (with --force) is removed only after."""
    old = None
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    os.rename(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _staging(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}.download-", dir=root))


def _fill_source(work: Path, repo_id: str | None, repo_type: str, revision: str | None, from_dir: Path | None) -> Path:
    source = work / "source"
    if from_dir is not None:
        if not from_dir.is_dir():
            raise DownloadError(f"--from-dir {from_dir}: not a folder")
        shutil.copytree(from_dir, source, symlinks=False)
    else:
        assert repo_id is not None
        source.mkdir()
        _snapshot(repo_id, repo_type, revision, source)
    unpack_archives(source)
    return source


def download_mmvm(
    root: Path,
    repo_id: str = MMVM_REPO,
    *,
    revision: str | None = None,
    repo_type: str = "dataset",
    from_dir: Path | None = None,
    subdir: str = "mmvm",
    force: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Fetch MMVM (Hub, or a local copy) into `<root>/<subdir>`: the TSV + `match_bench/`."""
    target = root / subdir
    _prepare_target(target, MMVM_FILE, force)
    work = _staging(root, subdir)
    try:
        log(f"fetching {'from ' + str(from_dir) if from_dir else repo_type + ' ' + repo_id} ...")
        source = _fill_source(work, repo_id, repo_type, revision, from_dir)
        tsv, cases = locate_mmvm(source)
        staged = work / "staged"
        staged.mkdir()
        os.rename(tsv, staged / MMVM_FILE)
        os.rename(cases, staged / MMVM_CASES)
        n_cases = sum(1 for p in (staged / MMVM_CASES).iterdir() if p.is_dir())
        _install(staged, target)
        log(f"placed {MMVM_FILE} and {n_cases} case folders in {target}")
        return target
    except DownloadError as exc:
        raise DownloadError(f"{exc}\n{manual_instructions('mmvm', target)}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def download_crossviewbench(
    root: Path,
    repo_id: str | None = None,
    *,
    from_dir: Path | None = None,
    link: bool = False,
    file_name: str | None = None,
    revision: str | None = None,
    repo_type: str = "dataset",
    subdir: str = "crossviewbench",
    force: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Fetch CrossViewBench into `<root>/<subdir>`: the folder holding the JSONL (renamed to
    crossviewbench.jsonl) with everything beside it. `link=True` symlinks a local folder that
    already holds crossviewbench.jsonl instead of copying it."""
    if (repo_id is None) == (from_dir is None):
        raise DownloadError(
            "name exactly one source: --repo OWNER/NAME or --from-dir FOLDER\n"
            + manual_instructions("crossviewbench", root / subdir)
        )
    target = root / subdir
    _prepare_target(target, CVB_FILE, force)
    if link:
        if from_dir is None or not (from_dir / CVB_FILE).is_file():
            raise DownloadError(
                f"--link needs --from-dir FOLDER holding {CVB_FILE} directly; copy instead, or rename the JSONL"
            )
        if target.is_symlink() or target.exists():
            _install_link(from_dir, target)
        else:
            root.mkdir(parents=True, exist_ok=True)
            os.symlink(from_dir.absolute(), target, target_is_directory=True)
        log(f"linked {target} -> {from_dir.absolute()}")
        return target
    work = _staging(root, subdir)
    try:
        log(f"fetching {'from ' + str(from_dir) if from_dir else repo_type + ' ' + str(repo_id)} ...")
        source = _fill_source(work, repo_id, repo_type, revision, from_dir)
        jsonl = locate_jsonl(source, file_name)
        if jsonl.name != CVB_FILE:
            os.rename(jsonl, jsonl.with_name(CVB_FILE))
        staged = jsonl.parent
        hf_cache = staged / ".cache"
        if hf_cache.is_dir():
            shutil.rmtree(hf_cache)
        _install(staged, target)
        log(f"placed {CVB_FILE} (from {jsonl.name}) in {target}")
        return target
    except DownloadError as exc:
        raise DownloadError(f"{exc}\n{manual_instructions('crossviewbench', target)}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install_link(from_dir: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.link-{os.getpid()}")
    os.symlink(from_dir.absolute(), tmp, target_is_directory=True)
    old = None
    if target.is_symlink():
        target.unlink()
    else:
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
