"""Shared plumbing of the local adapters: the micro-batcher, option reading, scores, errors."""

from __future__ import annotations

import asyncio
import threading

import pytest

from cvbench.core.types import Option
from cvbench.model_adapters.local_common import (
    MicroBatcher,
    best_letter,
    check_known_options,
    error_response,
    option_bool,
    option_int,
    reduce_letter_scores,
    split_question,
)
from cvbench.model_adapters.registry import ModelResolutionError


def test_concurrent_submissions_are_batched_up_to_the_limit_in_one_worker_thread() -> None:
    threads: set[str] = set()
    batches: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        threads.add(threading.current_thread().name)
        batches.append(list(items))
        return [x * 10 for x in items]

    async def main() -> list[int]:
        batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=3, max_wait_s=0.05, thread_name="t-model")
        try:
            return list(await asyncio.gather(*(batcher.submit(i) for i in range(7))))
        finally:
            await batcher.aclose()

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50, 60]
    assert sorted(x for b in batches for x in b) == list(range(7))
    assert max(len(b) for b in batches) == 3 and len(batches) == 3
    assert len(threads) == 1 and threads.pop().startswith("t-model")


def test_items_with_different_keys_never_share_a_batch() -> None:
    batches: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        batches.append(list(items))
        return items

    async def main() -> list[str]:
        batcher: MicroBatcher[str, str] = MicroBatcher(run, max_batch=8, max_wait_s=0.05)
        jobs = [batcher.submit(f"{key}{i}", key) for i in range(3) for key in ("g", "s")]
        try:
            return list(await asyncio.gather(*jobs))
        finally:
            await batcher.aclose()

    assert asyncio.run(main()) == ["g0", "s0", "g1", "s1", "g2", "s2"]
    assert all(len({item[0] for item in batch}) == 1 for batch in batches)
    assert sorted(len(b) for b in batches) == [3, 3]


def test_a_failing_batch_is_retried_item_by_item() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        if 13 in items:
            raise ValueError("bad item 13")
        return items

    async def main() -> list[object]:
        batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=4, max_wait_s=0.05)
        try:
            return list(await asyncio.gather(*(batcher.submit(i) for i in (1, 13, 2)), return_exceptions=True))
        finally:
            await batcher.aclose()

    one, bad, two = asyncio.run(main())
    assert one == 1 and two == 2
    assert isinstance(bad, ValueError) and "13" in str(bad)
    assert calls[0] == [1, 13, 2] and [1] in calls and [13] in calls and [2] in calls


def test_wrong_result_count_is_an_error_for_every_item() -> None:
    async def main() -> list[object]:
        batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [], max_batch=1)
        try:
            return list(await asyncio.gather(batcher.submit(1), return_exceptions=True))
        finally:
            await batcher.aclose()

    (outcome,) = asyncio.run(main())
    assert isinstance(outcome, RuntimeError) and "0 results for 1 items" in str(outcome)


def test_error_responses_classify_failures() -> None:
    oom = error_response(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert oom.error.kind == "server" and oom.error.message.startswith("out of memory") and oom.text is None
    assert error_response(ValueError("Image 2: bad bytes")).error.kind == "invalid_request"
    assert error_response(TimeoutError("slow")).error.kind == "timeout"
    assert error_response(RuntimeError("kaputt")).error.kind == "internal"
    assert not error_response(RuntimeError("x")).ok


def test_option_readers_reject_bad_values_by_name() -> None:
    assert option_int({"batch_size": "4"}, "batch_size", 1) == 4
    with pytest.raises(ModelResolutionError, match="batch_size"):
        option_int({"batch_size": "0"}, "batch_size", 1)
    assert option_bool({"x": "yes"}, "x", False) is True
    with pytest.raises(ModelResolutionError, match="x="):
        option_bool({"x": "maybe"}, "x", False)
    with pytest.raises(ModelResolutionError, match="devcie"):
        check_known_options({"devcie": "cpu"}, ("device",), "hf")


def test_letter_scores_and_ties() -> None:
    table = {"A": [1, 2], "B": [3]}
    logits = {1: -1.0, 2: -0.5, 3: -0.7}
    scores = reduce_letter_scores(logits.__getitem__, table)
    assert scores == {"A": -0.5, "B": -0.7} and best_letter(scores) == "A"
    assert best_letter({"A": 1.0, "B": 1.0}) is None
    assert best_letter({}) is None


def test_split_question_removes_only_trailing_option_lines() -> None:
    options = (Option("A", "1"), Option("B", "2"))
    assert split_question("Q?\n\nA. 1\nB. 2", options) == "Q?"
    assert split_question("Q?\n\nA. 1\nB. 2\n", options) == "Q?"
    assert split_question("A. 1\nB. 2\nQ?", options) == "A. 1\nB. 2\nQ?"
