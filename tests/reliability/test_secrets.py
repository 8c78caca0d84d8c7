"""No API key ever reaches a file cvbench writes, or its output.

Distinctive fake keys are planted in the environment and in `./.env` (and in a `--base-url`
query string); a run goes against a loopback server whose answers and error bodies echo the
Authorization header back; then a report, every export and a leaderboard site are built. Every
file written (run directory, cache database, report, exports, site) and all captured output is
scanned for each key, raw and base64-encoded at every alignment, and URL-encoded.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest

from tests.reliability.conftest import cli_env, cvbench
from tests.tasks.builders import cvb_record, write_image, write_jsonl
from tests.wire.faults import FaultInjectingServer, FaultSchedule, deterministic_letter
from tests.wire.server import ReceivedRequest

ENV_KEY = "sk-cvbench-PLANTED-env-7f3a9c1e5b2d4068"
DOTENV_KEY = "sk-cvbench-PLANTED-dotenv-91c0ffee42aa17"
URL_KEY = "sk-cvbench-PLANTED-url-5e5e5e5e0b0b0b"
OTHER_KEY = "PLANTEDtoken0123456789abcdefXYZ"  # not sk- shaped: only the name says it is secret
KEYS = (ENV_KEY, DOTENV_KEY, URL_KEY, OTHER_KEY)


def encodings(secret: str) -> list[bytes]:
    """The byte strings that would betray `secret`: itself, URL-encoded, and its base64 at
    each of the three alignments (edge characters that depend on neighbours dropped)."""
    raw = secret.encode()
    found = [raw, urllib.parse.quote(secret, safe="").encode()]
    for pad in (b"", b"x", b"xx"):
        encoded = base64.b64encode(pad + raw)
        found.append(encoded[4:-4] if pad else encoded[:-4])
        found.append(base64.urlsafe_b64encode(pad + raw)[4:-4])
    return found


def leaks(data: bytes) -> list[str]:
    return [f"{key[:22]}... as {form[:16]!r}" for key in KEYS for form in encodings(key) if form in data]


def echoing_answer(request: ReceivedRequest) -> str:
    """A correct answer that also quotes the credentials it was sent (a hostile proxy)."""
    letter = deterministic_letter(request.text) or "A"
    return f"Answer: {letter}. (You sent {request.headers.get('authorization', '')} to {request.path})"


def write_data(root: Path, n: int) -> None:
    folder = root / "crossviewbench"
    images = ["images/a.png", "images/b.png"]
    write_image(folder / images[0], seed=1)
    write_image(folder / images[1], seed=2)
    write_jsonl(
        folder / "crossviewbench.jsonl",
        [
            cvb_record(
                f"s{i}",
                images,
                question=f"[item s{i}] Which object in the second view is <region>?",
                scene=f"scene_{i % 3}",
            )
            for i in range(n)
        ],
    )


@pytest.mark.parametrize("key_source", ["env", "dotenv"])
def test_planted_keys_never_reach_disk_or_output(tmp_path: Path, key_source: str) -> None:
    write_data(tmp_path / "data", 12)
    work = tmp_path / "work"
    work.mkdir()
    dotenv = [f"OPENAI_API_KEY={DOTENV_KEY}", f"MY_SERVICE_TOKEN={OTHER_KEY}"]
    extra = {
        "OPENAI_API_KEY": ENV_KEY,
        "CVBENCH_TIMEOUT_S": "5",
        "CVBENCH_MAX_RETRIES": "1",
        "CVBENCH_RETRY_BASE_DELAY_S": "0.01",
        "CVBENCH_RETRY_MAX_DELAY_S": "0.05",
    }
    if key_source == "env":
        extra["CVBENCH_VLLM_API_KEY"] = ENV_KEY
    else:  # the environment supplies no key (it would win over .env), so the .env one is sent
        dotenv.append(f'CVBENCH_VLLM_API_KEY="{DOTENV_KEY}"')
        del extra["OPENAI_API_KEY"]
    (work / ".env").write_text("\n".join(dotenv) + "\n", encoding="utf-8")
    env = cli_env(tmp_path, **extra)
    sent_key = ENV_KEY if key_source == "env" else DOTENV_KEY

    schedule = FaultSchedule(seed=3, rate=0.5, mix={"echo_auth_401": 2.0, "http_500": 1.0, "http_429": 1.0})
    outputs: list[str] = []
    with FaultInjectingServer(schedule, answer=echoing_answer) as server:
        run_dir = work / "run"
        args = [
            "run",
            "--model",
            "openai-compatible:leaky",
            "--base-url",
            server.base_url(),
            "--base-url",
            f"{server.base_url()}?api_key={URL_KEY}",
            "--task",
            "crossviewbench",
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(run_dir),
            "--cache",
            str(work / "cache.db"),
            "--no-progress",
            "--concurrency",
            "2",
            "--max-error-rate",
            "1",
            "--fail-fast",
            "0",
        ]  # errors are the point here
        done = cvbench(args, env, work)
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        # the key really was sent (so the test would notice a leak), and was echoed back
        auth = {r.headers.get("authorization") for r in server.requests}
        assert f"Bearer {sent_key}" in auth
        assert any(r.fault is not None and getattr(r.fault, "kind", "") == "echo_auth_401" for r in server.requests)
        records = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
        assert any(r["error"] and r["error"]["status"] == 401 for r in records)
        assert any(r["response"] and "You sent" in r["response"] for r in records)

    steps = [
        ["report", str(run_dir), "--out", str(work / "report")],
        ["export", str(run_dir), "--format", "csv", "--out", str(work / "export.csv")],
        ["export", str(run_dir), "--format", "json", "--out", str(work / "export.json")],
        ["export", str(run_dir), "--format", "latex", "--out", str(work / "export.tex")],
        ["export", str(run_dir), "--format", "markdown"],
        ["leaderboard", "build", str(run_dir), "--out", str(work / "site"), "--samples-per-evaluation", "0"],
        ["cache", "stats", "--cache", str(work / "cache.db")],
    ]
    if key_source == "dotenv":  # what is built from the run reads only the run: once is enough
        steps = steps[-1:]
    for step in steps:
        result = cvbench(step, env, work)
        outputs += [result.stdout, result.stderr]
        assert result.returncode == 0, (step, result.stdout[-2000:], result.stderr[-2000:])

    scanned = 0
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        if path == work / ".env" or path.is_relative_to(tmp_path / "data"):
            continue
        hits = leaks(path.read_bytes())
        scanned += 1
        if hits:
            found[str(path.relative_to(tmp_path))] = hits
    for i, text in enumerate(outputs):
        hits = leaks(text.encode())
        if hits:
            found[f"captured output #{i}"] = hits
    assert not found, f"planted keys leaked: {found}"
    assert (work / "cache.db").exists() and (run_dir / "samples.jsonl").exists()
    if key_source == "env":
        assert scanned > 20 and list((work / "site").rglob("*.html")) and (work / "report" / "report.html").exists()


URL_PASSWORD = "PLANTEDuserinfoPW-4c4c4c4c4c"
QUERY_SIG = "PLANTEDsigQuery-9d9d9d9d9d9d"
QUERY_CLIENT_SECRET = "PLANTEDclientSecret-1a1a1a1a"
HEADER_VALUE = "PLANTEDheaderValue-77aa77aa77"
OPTION_SECRETS = (URL_PASSWORD, QUERY_SIG, QUERY_CLIENT_SECRET, HEADER_VALUE)


def test_url_userinfo_query_and_header_options_never_written(tmp_path: Path) -> None:
    """A password in --base-url userinfo, credentials in its query string and a header value in
    --model-option reach no file of the run, report or site, and no output."""
    write_data(tmp_path / "data", 4)
    work = tmp_path / "work"
    work.mkdir()
    env = cli_env(tmp_path, CVBENCH_TIMEOUT_S="5", CVBENCH_MAX_RETRIES="0")
    with FaultInjectingServer(FaultSchedule(seed=1, rate=0.0)) as server:
        base = server.base_url()
        with_password = base.replace("http://", f"http://cvbuser:{URL_PASSWORD}@", 1)
        with_query = f"{base}?api-version=1&sig={QUERY_SIG}&client_secret={QUERY_CLIENT_SECRET}"
        run_dir = work / "run"
        done = cvbench(
            [
                "run",
                "--model",
                "openai-compatible:leaky",
                "--base-url",
                with_password,
                "--base-url",
                with_query,
                "--model-option",
                f'extra_headers={{"X-Custom-Auth": "{HEADER_VALUE}"}}',
                "--task",
                "crossviewbench",
                "--data-dir",
                str(tmp_path / "data"),
                "--out",
                str(run_dir),
                "--no-cache",
                "--no-progress",
            ],
            env,
            work,
        )
        outputs = [done.stdout, done.stderr]
        assert (run_dir / "samples.jsonl").exists(), done.stderr[-2000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert "cvbuser:" not in json.dumps(config) and "extra_headers=***" in json.dumps(config["command"])
    assert "sig=***" in json.dumps(config["command"]) and "api-version=1" in json.dumps(config["command"])
    for step in (
        ["report", str(run_dir), "--out", str(work / "report")],
        ["leaderboard", "build", str(run_dir), "--out", str(work / "site"), "--samples-per-evaluation", "0"],
    ):
        result = cvbench(step, env, work)
        outputs += [result.stdout, result.stderr]
        assert result.returncode == 0, (step, result.stderr[-2000:])
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "data")]
    assert len(written) > 10 and (work / "report" / "report.md").exists() and list((work / "site").rglob("*.html"))
    found = {str(p): [s for s in OPTION_SECRETS if s.encode() in p.read_bytes()] for p in written}
    found = {k: v for k, v in found.items() if v}
    found.update(
        {
            f"output #{i}": [s for s in OPTION_SECRETS if s in text]
            for i, text in enumerate(outputs)
            if any(s in text for s in OPTION_SECRETS)
        }
    )
    assert not found, f"planted secrets written: {found}"


def test_environment_wins_over_dotenv_and_the_source_is_named(tmp_path: Path) -> None:
    write_data(tmp_path / "data", 2)
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text(f"CVBENCH_VLLM_API_KEY={DOTENV_KEY}\n", encoding="utf-8")
    env = cli_env(tmp_path, OPENAI_API_KEY=ENV_KEY, CVBENCH_MAX_RETRIES="0")
    with FaultInjectingServer(FaultSchedule(seed=1, rate=0.0)) as server:
        done = cvbench(
            [
                "run",
                "--model",
                "openai-compatible:m",
                "--base-url",
                server.base_url(),
                "--task",
                "crossviewbench",
                "--data-dir",
                str(tmp_path / "data"),
                "--out",
                str(work / "run"),
                "--no-cache",
                "--no-progress",
            ],
            env,
            work,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert {r.headers.get("authorization") for r in server.requests} == {f"Bearer {ENV_KEY}"}
    assert "API key from $OPENAI_API_KEY in the environment" in done.stderr
    assert f"CVBENCH_VLLM_API_KEY in {work / '.env'} not used" in done.stderr
    assert not leaks((done.stdout + done.stderr).encode())
