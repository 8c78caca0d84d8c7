"""`cvbench run` against an OpenAI-compatible server that fails about 20% of its requests in
every way we know (rate limits with and without Retry-After, 5xx, hangs past the timeout,
connection resets, truncated/malformed JSON, empty choices, slow answers), over 2,000 samples.

Every sample must come back exactly once, answered or reported as an error; no error may be
scored; the retries must show in the records and in results.json; and rerunning the same
command must retry exactly the error records. (`RELIABILITY_N=150` shrinks it for a quick look.)"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from cvbench.rundir.format import iter_records
from tests.reliability.conftest import SynthBase, cli_env, cli_run_args, cvbench, replicate
from tests.wire.faults import (
    DEFAULT_MIX,
    FaultInjectingServer,
    FaultSchedule,
    deterministic_letter,
)

N_SAMPLES = int(os.environ.get("RELIABILITY_N", "2000"))
RETRY_ENV = {
    "CVBENCH_TIMEOUT_S": "1.5",
    "CVBENCH_MAX_RETRIES": "3",
    "CVBENCH_RETRY_BASE_DELAY_S": "0.05",
    "CVBENCH_RETRY_MAX_DELAY_S": "0.4",
    "CVBENCH_BUDGET_S": "60",
}
ERROR_KINDS = {"rate_limit", "server", "timeout", "transport", "malformed", "budget"}


@pytest.mark.slow
def test_two_thousand_samples_through_twenty_percent_faults(synth_base: SynthBase, tmp_path: Path) -> None:
    data = replicate(synth_base, tmp_path / "data", N_SAMPLES)
    expected_ids = {f"crossviewbench@all/{sid}" for sid in data.sample_ids}
    schedule = FaultSchedule(seed=11, rate=0.2, hang_s=3.0, slow_s=0.5, retry_after_s=0.2)
    out = tmp_path / "run"
    with FaultInjectingServer(schedule) as server:
        args = cli_run_args("openai-compatible:faulty", server.base_url(), data.root, out, tmp_path / "c.db", 16)
        env = cli_env(tmp_path, **RETRY_ENV)
        first = cvbench(args, env, tmp_path, timeout=600)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        requests_first = len(server.requests)
        faults = server.fault_counts()

        records = list(iter_records(out))
        ids = [r.record_id for r in records]
        assert len(ids) == len(set(ids)) == N_SAMPLES, "a record was lost or duplicated"
        assert set(ids) == expected_ids

        errors = [r for r in records if r.error is not None]
        answered = [r for r in records if r.error is None]
        for r in errors:
            assert r.parse_status == "error" and r.parsed is None and r.correct is False, r.record_id
            assert r.error["kind"] in ERROR_KINDS and r.error["message"], r.error
        for r in answered:
            assert r.parse_status == "parsed", (r.record_id, r.parse_status, r.response)
            assert r.parsed == deterministic_letter(r.prompt_text), r.record_id
            assert r.correct == (r.parsed == r.answer)
            assert r.attempts >= 1
        # every kind of fault was exercised, and about a fifth of the requests failed
        if N_SAMPLES >= 1000:  # a small quick-look run may miss the rarest kind
            assert set(faults) == {k for k, w in DEFAULT_MIX.items() if w > 0}, faults
        assert 0.14 < sum(faults.values()) / requests_first < 0.26
        # one HTTP request per attempt: the records account for everything the server saw
        assert sum(r.attempts for r in records) == requests_first
        retried = [r for r in records if r.attempts > 1]
        assert retried and any(r.error is None for r in retried)

        results = json.loads((out / "results.json").read_text())
        run = results["run"]
        assert run["attempts"] == requests_first
        assert run["retried_requests"] == len(retried) and run["max_attempts"] == max(r.attempts for r in records)
        assert results["overall"]["n"] == N_SAMPLES and results["overall"]["errors"] == len(errors)
        assert results["overall"]["correct"] == sum(r.correct for r in answered)
        assert results["status"] == ("partial" if errors else "complete")
        config = json.loads((out / "config.json").read_text())
        assert config["runtime"]["retry_env"] == {
            "timeout_s": 1.5,
            "max_retries": 3,
            "retry_base_delay_s": 0.05,
            "retry_max_delay_s": 0.4,
            "budget_s": 60.0,
        }

        # the same command again, faults off: only the error records are sent again
        server.set_schedule(None)
        error_ids = {r.record_id for r in errors}
        second = cvbench(args, env, tmp_path, timeout=600)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        resent = len(server.requests) - requests_first
        assert resent == len(error_ids)
        final = list(iter_records(out))
        assert [r.record_id for r in final] == ids  # rewritten into input order
        assert all(r.error is None and r.parse_status == "parsed" for r in final)
        before = {r.record_id: r for r in records}
        for r in final:
            if r.record_id not in error_ids:
                assert r.parsed == before[r.record_id].parsed and r.correct == before[r.record_id].correct
        results = json.loads((out / "results.json").read_text())
        assert results["status"] == "complete" and results["overall"]["errors"] == 0
        assert results["run"]["retried_errors"] == len(error_ids)
        assert Counter(r.parse_status for r in final) == Counter({"parsed": N_SAMPLES})
