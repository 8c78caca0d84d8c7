from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from cvbench.cli import cli
from cvbench.leaderboard.previews import PreviewSettings
from cvbench.leaderboard.reference import load_reported
from cvbench.leaderboard.site import (
    SiteError,
    build_site,
    json_block,
    select_site_records,
)
from cvbench.reports.tables import slugify
from cvbench.rundir.format import iter_records
from tests.reports.run_factory import DEFAULT_MODELS, write_run


@dataclass
class Page:
    """What the tests need from a built HTML page."""

    csp: list[str] = field(default_factory=list)
    scripts: list[dict[str, str | None]] = field(default_factory=list)
    handlers: list[str] = field(default_factory=list)
    imgs: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    # (table id, row id, column key) -> text of the value span
    cells: dict[tuple[str, str, str], str] = field(default_factory=dict)
    json_blocks: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self.table: str | None = None
        self.row: str | None = None
        self.col: str | None = None
        self.in_value = False
        self.in_json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.page.handlers += [k for k, _ in attrs if k.lower().startswith("on")]
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.page.csp.append(a.get("content") or "")
        elif tag == "script":
            self.page.scripts.append(a)
            self.in_json = a.get("type") == "application/json"
        elif tag == "img":
            self.page.imgs.append(a.get("src") or "")
        elif tag == "a" and a.get("href"):
            self.page.links.append(a["href"] or "")
        elif tag == "table" and a.get("data-table"):
            self.table = a["data-table"]
        elif tag == "tr" and a.get("data-row"):
            self.row = a["data-row"]
        elif tag == "td" and a.get("data-col"):
            self.col = a["data-col"]
        elif tag == "span" and a.get("class") == "v":
            self.in_value = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self.in_value = False
        elif tag == "script":
            self.in_json = False

    def handle_data(self, data: str) -> None:
        if self.in_value and self.table and self.row and self.col:
            self.page.cells[(self.table, self.row, self.col)] = data
        if self.in_json:
            self.page.json_blocks.append(data)


def parse_page(path: Path) -> Page:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.page


@pytest.fixture(scope="module")
def site(factory_runs: list[Path], xss_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    synth = write_run(
        tmp_path_factory.mktemp("synth"),
        DEFAULT_MODELS[1],
        name="qwen-synth",
        cvb_task="synth-crossviewbench",
        mmvm_task="synth-mmvm",
        cvb_per_type=2,
        mmvm_n=8,
    )
    out = tmp_path_factory.mktemp("site")
    build_site([*factory_runs, xss_run, synth], out, samples_per_evaluation=40, title="Test board", images="exact")
    return out


def test_every_reported_value_appears_verbatim(site: Path) -> None:
    pages = {b: parse_page(site / f"{b}.html") for b in ("crossviewbench", "mmvm")}
    all_json = json.loads((site / "downloads" / "all.json").read_text(encoding="utf-8"))
    json_cells = {
        (t["table"], r["model"], key): c
        for t in all_json["tables"]
        for r in t["rows"]
        for key, c in r["cells"].items()
        if r["origin"] == "reported"
    }
    values = load_reported()
    assert len(values) == 319
    for v in values:
        page = pages[v.benchmark]
        row_id = f"reported-{slugify(v.model)}"
        on_page = [
            text
            for (table, row, col), text in page.cells.items()
            if table.startswith(f"{v.benchmark}-") and row == row_id and col == v.column_key
        ]
        # one precision on every page (one decimal); the paper's own digits stay in the downloads
        assert on_page and all(text == f"{float(v.value):.1f}" for text in on_page), (v, on_page)
        in_json = [
            c
            for (table, model, key), c in json_cells.items()
            if table.startswith(f"{v.benchmark}-") and model == v.model and key == v.column_key
        ]
        assert in_json and all(c["as_published"] == v.value and c["value"] == float(v.value) for c in in_json), v


def test_reported_rows_only_beside_the_official_task(site: Path) -> None:
    page = parse_page(site / "crossviewbench.html")
    synth_rows = {row for (table, row, _) in page.cells if table.startswith("synth-crossviewbench-")}
    assert synth_rows and not any(r.startswith("reported-") for r in synth_rows)
    official_rows = {row for (table, row, _) in page.cells if table == "crossviewbench-main"}
    assert "reported-humanbase" in official_rows and "chance" in official_rows
    assert any(r.startswith("run-") for r in official_rows)


def test_every_page_is_locked_down(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 3 + 6  # overview, 2 benchmarks, 6 model pages
    for path in pages:
        page = parse_page(path)
        assert len(page.csp) == 1, path
        policy = page.csp[0]
        assert (
            "script-src 'self'" in policy
            and "default-src 'self'" in policy
            and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        )
        assert page.handlers == [], path
        for script in page.scripts:
            assert script.get("type") == "application/json" or (script.get("src") or "").endswith("static/site.js")
        assert not any(link.startswith(("http:", "//")) for link in page.links)
        text = path.read_text(encoding="utf-8")
        assert "<script>window.__pwned" not in text and "<img src=x" not in text, path


def test_xss_payload_is_data_in_the_sample_block(site: Path, xss_run: Path) -> None:
    model_pages = [p for p in (site / "models").glob("*.html") if "evil" in p.name]
    assert len(model_pages) == 1
    page = parse_page(model_pages[0])
    assert len(page.json_blocks) == 1
    payload = json.loads(page.json_blocks[0])
    assert any("<script>window.__pwned=1</script>" in (r["response"] or "") for r in payload["records"])
    assert "</script" not in "".join(page.json_blocks)


def test_json_block_cannot_close_its_script() -> None:
    text = str(json_block({"a": "</script><b>&\u2028"}))
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><b>&\u2028"}


def test_sample_browser_holds_a_bounded_seeded_subset(site: Path, factory_runs: list[Path]) -> None:
    records = list(iter_records(factory_runs[0]))
    a = select_site_records(records, run_name="x", seed=0, per_evaluation=40)
    b = select_site_records(records, run_name="x", seed=0, per_evaluation=40)
    c = select_site_records(records, run_name="x", seed=1, per_evaluation=40)
    assert [r.record_id for r in a] == [r.record_id for r in b] != [r.record_id for r in c]
    per_eval: dict[str, int] = {}
    for r in a:
        per_eval[f"{r.task}@{r.setting}"] = per_eval.get(f"{r.task}@{r.setting}", 0) + 1
    assert per_eval["crossviewbench@all"] == 40 and per_eval["mmvm@4"] == 30  # 30 <= 40: all kept
    assert len(select_site_records(records, run_name="x", seed=0, per_evaluation=0)) == len(records)


def test_only_shown_images_are_copied_content_addressed(site: Path) -> None:
    expected: set[str] = set()
    for path in (site / "models").glob("*.html"):
        payload = json.loads(parse_page(path).json_blocks[0])
        assert payload["included"] == len(payload["records"]) <= payload["total"]
        for r in payload["records"]:
            expected.update(src.removeprefix("../") for src in r["images"] if src)
    on_disk = {p.relative_to(site).as_posix() for p in (site / "img").rglob("*") if p.is_file()}
    assert on_disk == expected
    for rel in on_disk:
        data = (site / rel).read_bytes()
        assert Path(rel).stem == hashlib.sha256(data).hexdigest()


def test_preview_images_are_small_jpegs_named_after_the_exact_image(factory_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "preview"
    build = build_site(
        factory_runs[:2],
        out,
        reported="none",
        samples_per_evaluation=10,
        images="preview",
        preview=PreviewSettings(max_side=16, quality=80),
    )
    shown: dict[str, list[str]] = {}
    for path in (out / "models").glob("*.html"):
        payload = json.loads(parse_page(path).json_blocks[0])
        assert payload["image_mode"] == "preview"
        for r in payload["records"]:
            for src, sha in zip(r["images"], r["image_sha256"]):
                if src:
                    shown.setdefault(src.removeprefix("../"), []).append(sha)
    on_disk = {p.relative_to(out).as_posix() for p in (out / "img").rglob("*") if p.is_file()}
    assert on_disk == set(shown) and build.images == len(on_disk) > 0
    for rel, shas in shown.items():
        name = Path(rel).name
        assert name.endswith(".preview-16-q80.jpg") and {name.split(".")[0]} == set(shas)
        with Image.open(out / rel) as im:
            assert im.format == "JPEG" and max(im.size) == 16  # the factory's images are 48x36
    exact = build_site(factory_runs[:2], tmp_path / "exact", reported="none", samples_per_evaluation=10, images="exact")
    assert exact.images == build.images


def test_images_none_ships_no_images_and_says_so(factory_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "none"
    result = CliRunner().invoke(
        cli, ["leaderboard", "build", str(factory_runs[0]), "--out", str(out), "--reported", "none", "--images", "none"]
    )
    assert result.exit_code == 0, result.output
    assert not (out / "img").exists() and ", 0 images," in result.output
    payload = json.loads(parse_page(next((out / "models").glob("*.html"))).json_blocks[0])
    assert payload["image_mode"] == "none"
    assert all(src is None for r in payload["records"] for src in r["images"])
    assert any(r["image_sha256"] for r in payload["records"])  # still says which images the model saw
    with pytest.raises(SiteError, match="--images must be one of"):
        build_site([factory_runs[0]], tmp_path / "bad", reported="none", images="thumbs")
    result = CliRunner().invoke(
        cli,
        [
            "leaderboard",
            "build",
            str(factory_runs[0]),
            "--out",
            str(tmp_path / "p"),
            "--reported",
            "none",
            "--images",
            "preview",
            "--preview-size",
            "8",
        ],
    )
    assert result.exit_code == 2 and "--preview-size" in result.output


def test_deep_link_targets_exist(site: Path) -> None:
    page = parse_page(next((site / "models").glob("gpt-4o-*.html")))
    payload = json.loads(page.json_blocks[0])
    ids = [r["id"] for r in payload["records"]]
    assert ids and len(ids) == len(set(ids))
    assert all(re.fullmatch(r"(crossviewbench@all|mmvm@(4|8|12|all))/[\w-]+", i) for i in ids)
    record = payload["records"][0]
    assert {"prompt", "response", "parsed", "answer", "images", "status", "slices"} <= set(record)
    assert any(s["value"].startswith("crossviewbench@all|category=") for s in payload["slices"])


def test_downloads(site: Path) -> None:
    index = parse_page(site / "index.html")
    for href in [h for h in index.links if h.startswith("downloads/")]:
        assert (site / href).is_file(), href
    rows = list(csv.DictReader(io.StringIO((site / "downloads" / "mmvm-paper.csv").read_text(encoding="utf-8"))))
    colva = {r["column"]: r["value"] for r in rows if r["model"] == "CoLVA-InternVL2-4B"}
    assert colva["all/overall"] == "49.8" and colva["4/cue=CL"] == "51.72"
    assert all(r["origin"] in ("reproduced", "reported", "chance") for r in rows)
    tex = (site / "downloads" / "crossviewbench-main.tex").read_text(encoding="utf-8")
    assert "\\toprule" in tex and "HumanBase$^\\dagger$" in tex and "62.7" in tex
    overview = json.loads((site / "downloads" / "overview.json").read_text(encoding="utf-8"))
    assert overview["tables"][0]["table"] == "overview"


def test_reported_none_and_empty_site(factory_runs: list[Path], tmp_path: Path) -> None:
    build_site(factory_runs[:1], tmp_path / "s", reported="none")
    html = (tmp_path / "s" / "crossviewbench.html").read_text(encoding="utf-8")
    assert 'data-origin="reported"' not in html and 'data-origin="reproduced"' in html
    with pytest.raises(SiteError, match="nothing to show"):
        build_site([], tmp_path / "t", reported="none")


def test_reported_only_site(tmp_path: Path) -> None:
    build_site([], tmp_path / "s")
    page = parse_page(tmp_path / "s" / "mmvm.html")
    assert page.cells[("mmvm-paper", "reported-internvl2-5-78b", "4/overall")] == "45.9"  # paper: 45.89
    assert not list((tmp_path / "s").glob("models/*.html"))


def test_rank_and_sort_attributes(site: Path) -> None:
    html = (site / "crossviewbench.html").read_text(encoding="utf-8")
    assert html.count('aria-sort="none"') > 10 and '<button type="button" class="sort"' in html
    assert re.search(r'<tr class="origin-reported access-human"[^>]*data-access="human"', html)


def test_cli_leaderboard_build(factory_runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "leaderboard",
            "build",
            *map(str, factory_runs[:2]),
            "--out",
            str(tmp_path / "site"),
            "--title",
            "Board <x>",
            "--reported",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 runs" in result.output
    assert "<title>Overview · Board &lt;x&gt;</title>" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("benchmark,setting,model,access,metric,value,source\nmmvm,all,M,open,ZZ,1,s\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["leaderboard", "build", "--out", str(tmp_path / "s2"), "--reported", str(bad)])
    assert result.exit_code == 1 and "bad.csv:2: unknown mmvm metric 'ZZ'" in result.output


def test_no_local_path_is_published(site: Path, factory_runs: list[Path]) -> None:
    """Sources and provenance name data files relative to the data root, never the builder's folders."""
    local = str(factory_runs[0].parent)
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".csv", ".tex"):
            assert local not in path.read_text(encoding="utf-8"), path


def test_rows_carry_their_run_spec_and_differences_stand_out(factory_runs: list[Path], tmp_path: Path) -> None:
    import shutil

    from cvbench.rundir.config import read_config, write_config

    runs = tmp_path / "runs"
    plain = runs / "gpt-4o" / "crossviewbench+mmvm"
    boxed = runs / "gpt-4o" / "crossviewbench+mmvm-overlay-box"
    shutil.copytree(factory_runs[0], plain)
    shutil.copytree(factory_runs[0], boxed)
    config = read_config(boxed)
    write_config(boxed, replace(config, style="box"))
    shutil.copytree(factory_runs[0], runs / "copy" / "same")  # an exact duplicate of `plain`
    build = build_site([runs], tmp_path / "s", reported="none", images="none")
    assert build.runs == 2
    assert len(build.warnings) == 1 and "same run" in build.warnings[0]
    html = (tmp_path / "s" / "crossviewbench.html").read_text(encoding="utf-8")
    assert html.count('<strong class="differs"') >= 2
    assert '<strong class="differs" title="differs from another run of this model">box</strong>' in html
    assert '<strong class="differs" title="differs from another run of this model">fill</strong>' in html


def test_benchmark_pages_carry_the_plots(site: Path) -> None:
    """Static SVG made by the project: candidates with intervals and chance, profiles, and the
    papers' numbers beside cvbench's intervals; no script in any of them."""
    mmvm = (site / "mmvm.html").read_text(encoding="utf-8")
    cvb = (site / "crossviewbench.html").read_text(encoding="utf-8")
    for plot_id in ("mmvm-candidates", "mmvm-cues-all-profile", "synth-mmvm-candidates"):
        assert f'id="plot-{plot_id}"' in mmvm, plot_id
    assert 'id="plot-crossviewbench-main-profile"' in cvb
    figure = re.search(r'<figure class="plot" id="plot-mmvm-candidates">(.*?)</figure>', mmvm, re.S)
    assert figure is not None
    svg = figure.group(1)
    assert svg.count("<polyline") >= 2 and 'stroke-dasharray="4,3"' in svg  # one line per run; chance dashed
    assert ">4</text>" in svg and ">all</text>" in svg and "<script" not in svg
    # the reported-vs-reproduced plot appears only where a reproduced model is also in a paper
    if 'id="plot-crossviewbench-main-reported"' in cvb:
        reported = re.search(r'id="plot-crossviewbench-main-reported">(.*?)</figure>', cvb, re.S)
        assert reported is not None and "(paper)" in reported.group(1) and "(cvbench)" in reported.group(1)


def test_interval_plot_escapes_names() -> None:
    from cvbench.reports.plots import Plot, Point, Series

    svg = Plot("x", "t <b>", ("a",), (Series("<script>alert(1)</script>", {"a": Point(50.0, (40.0, 60.0))}),)).svg()
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg


def test_readme_leaderboard_command_takes_the_default_layout(factory_runs: list[Path], tmp_path: Path) -> None:
    """`cvbench leaderboard build runs/* --out site/` with runs/<model>/<tasks>/ (the README's example)."""
    import shutil

    runs = tmp_path / "runs"
    for run in factory_runs[:2]:
        shutil.copytree(run, runs / run.name / "crossviewbench+mmvm")
    args = [str(p) for p in sorted(runs.glob("*"))]  # what the shell makes of runs/*
    result = CliRunner().invoke(cli, ["leaderboard", "build", *args, "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    assert "2 runs" in result.output and len(list((tmp_path / "site" / "models").glob("*.html"))) == 2
    exported = CliRunner().invoke(cli, ["export", *args, "--format", "csv"])
    assert exported.exit_code == 0, exported.output
