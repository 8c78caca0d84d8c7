from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np

from cvbench.core.types import (
    GenerationConfig,
    ModelAdapter,
    NativeRegions,
    NativeView,
    Option,
    Prompt,
    RegionRef,
    Request,
    TaskFacts,
)
from cvbench.model_adapters.baselines import make_first_option, make_random
from cvbench.model_adapters.mask_heuristic import make_mask_heuristic, ref_names
from cvbench.model_adapters.registry import ModelOptions
from cvbench.model_adapters.resolve import resolve_model
from cvbench.scoring.parsing import parse_answer

RED, BLUE, GREEN, YELLOW = (210, 40, 40), (40, 70, 210), (40, 170, 60), (230, 200, 40)


def view(
    boxes: list[tuple[int, int, int, int]],
    colours: list[tuple[int, int, int]],
    ids: list[str] | None = None,
    h: int = 60,
    w: int = 100,
) -> NativeView:
    img = np.full((h, w, 3), 120, np.uint8)
    masks = []
    for (x1, y1, x2, y2), c in zip(boxes, colours):
        img[y1:y2, x1:x2] = c
        m = np.zeros((h, w), bool)
        m[y1:y2, x1:x2] = True
        masks.append(m)
    return NativeView("v", img, tuple(masks), tuple(ids or [str(i) for i in range(len(boxes))]))


def ask(adapter: ModelAdapter, prompt: Prompt) -> str:
    response = asyncio.run(adapter.generate(Request(adapter.info.model_id, prompt, GenerationConfig())))
    assert response.ok
    letter = parse_answer(response.text, prompt.options).letter
    assert letter is not None
    return letter


def cvb_prompt(
    task_type: str,
    question: str,
    options: list[str],
    views: list[NativeView],
    refs: list[tuple[int, int]],
    sample_id: str = "s",
) -> Prompt:
    opts = tuple(Option("ABCD"[i], t) for i, t in enumerate(options))
    text = question + "\n\n" + "\n".join(o.line for o in opts)
    native = NativeRegions(views=tuple(views), refs=tuple(RegionRef(v, r) for v, r in refs))
    return Prompt(
        sample_id=sample_id,
        text=text,
        images=(),
        options=opts,
        mode="native",
        native=native,
        task=TaskFacts("crossviewbench", task_type),
    )


def test_random_is_seeded_and_uniform() -> None:
    options = tuple(Option(letter, letter) for letter in "ABCD")
    adapter = make_random("", ModelOptions(seed=3))
    assert isinstance(adapter, ModelAdapter) and adapter.info.access == "baseline"

    def prompt(i: int) -> Prompt:
        return Prompt(sample_id=f"s{i}", text="q", images=(), options=options, mode="overlay")

    first = [ask(adapter, prompt(i)) for i in range(400)]
    assert first == [ask(make_random("", ModelOptions(seed=3)), prompt(i)) for i in range(400)]
    assert first != [ask(make_random("", ModelOptions(seed=4)), prompt(i)) for i in range(400)]
    counts = Counter(first)
    assert set(counts) == set("ABCD") and min(counts.values()) > 60


def test_first_option_and_registry_names() -> None:
    options = (Option("A", "x"), Option("B", "y"))
    p = Prompt(sample_id="s", text="q", images=(), options=options, mode="overlay")
    assert ask(make_first_option("", ModelOptions()), p) == "A"
    for name, model_id in (
        ("random", "baseline:random"),
        ("baseline:first-option", "baseline:first-option"),
        ("mask-heuristic", "baseline:mask-heuristic"),
    ):
        assert resolve_model(name, ModelOptions()).info.model_id == model_id
    assert make_mask_heuristic("", ModelOptions()).capabilities.native_regions


def test_mmvm_picks_the_candidate_that_looks_like_the_query() -> None:
    query = view([(10, 10, 30, 40)], [GREEN], ["q"])
    cands = view([(5, 5, 20, 30), (30, 5, 50, 30), (60, 5, 80, 30)], [RED, GREEN, BLUE], ["7", "2", "5"])
    options = (
        Option("A", "2"),
        Option("B", "5"),
        Option("C", "7"),
        Option("D", "None of the above choices are correct"),
    )
    native = NativeRegions(views=(query, cands), refs=(), query=RegionRef(0, 0), candidate_order=(1, 2, 0))
    p = Prompt(
        sample_id="m",
        text="which?",
        images=(),
        options=options,
        mode="native",
        native=native,
        task=TaskFacts("mmvm"),
    )
    assert ask(make_mask_heuristic("", ModelOptions()), p) == "A"


def test_crossviewbench_rules() -> None:
    h = make_mask_heuristic("", ModelOptions())
    v1 = view([(5, 20, 25, 50), (40, 20, 60, 50), (70, 20, 90, 50)], [RED, BLUE, GREEN])
    flipped = view([(5, 20, 25, 50), (40, 20, 60, 50), (70, 20, 90, 50)], [GREEN, BLUE, RED])
    bigger = view([(2, 5, 40, 58), (45, 20, 65, 50), (70, 20, 90, 50)], [RED, BLUE, GREEN])

    q1 = cvb_prompt(
        "Q1",
        "The object <region> is marked in the first image. Four objects are marked in the second "
        "image: candidate 1 is <region>, candidate 2 is <region> and candidate 3 is <region>. Which?",
        ["candidate 1", "candidate 2", "candidate 3"],
        [v1, flipped],
        [(0, 2), (1, 0), (1, 1), (1, 2)],
    )
    assert ask(h, q1) == "A"  # green sits first in the second view
    q3 = cvb_prompt(
        "Q3",
        "Three objects are marked in the first image: object 1 is <region>, object 2 is <region> "
        "and object 3 is <region>. Which of them is the same physical object as <region> in the second "
        "image?",
        ["object 1", "object 2", "object 3", "none of them"],
        [v1, flipped],
        [(0, 0), (0, 1), (0, 2), (1, 1)],
    )
    assert ask(h, q3) == "B"  # the blue one
    q4 = cvb_prompt(
        "Q4",
        "Two objects are marked in the first image: object 1 is <region> and object 2 is <region>. "
        "Three objects are marked in the second image: X is <region>, Y is <region> and Z is <region>. "
        "Which matching is correct?",
        [
            "object 1 is X and object 2 is Y",
            "object 1 is Z and object 2 is X",
            "object 1 is Y and object 2 is Z",
            "object 1 is X and object 2 is Z",
        ],
        [v1, flipped],
        [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2)],
    )
    assert ask(h, q4) == "B"  # red is Z (third in view 2), green is X
    q5_same = cvb_prompt(
        "Q5",
        "Are <region> in the first image and <region> in the second image the same?",
        ["yes", "no"],
        [v1, flipped],
        [(0, 1), (1, 1)],
    )
    q5_diff = cvb_prompt(
        "Q5",
        "Are <region> in the first image and <region> in the second image the same?",
        ["yes", "no"],
        [v1, flipped],
        [(0, 0), (1, 1)],
    )
    assert (ask(h, q5_same), ask(h, q5_diff)) == ("A", "B")
    q10 = cvb_prompt(
        "Q10",
        "The same object is marked in both images: <region> in the first image and <region> in "
        "the second. Does it appear larger in the second image?",
        ["yes", "no"],
        [v1, bigger],
        [(0, 0), (1, 0)],
    )
    q10_back = cvb_prompt(
        "Q10",
        "The same object is marked in both images: <region> in the first image and <region> "
        "in the second. Does it appear larger in the second image?",
        ["yes", "no"],
        [bigger, v1],
        [(0, 0), (1, 0)],
    )
    assert (ask(h, q10), ask(h, q10_back)) == ("A", "B")
    q13 = cvb_prompt(
        "Q13",
        "In the first image, <region> is to the left of <region>. In the second image, is their "
        "left-right order reversed?",
        ["yes", "no"],
        [v1, flipped],
        [(0, 0), (0, 2)],
    )
    q13_same = cvb_prompt(
        "Q13",
        "In the first image, <region> is to the left of <region>. In the second image, is "
        "their left-right order reversed?",
        ["yes", "no"],
        [v1, bigger],
        [(0, 0), (0, 2)],
    )
    assert (ask(h, q13), ask(h, q13_same)) == ("A", "B")
    q16 = cvb_prompt(
        "Q16",
        "Two objects are marked in both images: <region> and <region> in the first image, and the "
        "same two objects, in the same order, as <region> and <region> in the second image. Which grows "
        "more?",
        ["the first object", "the second object"],
        [v1, bigger],
        [(0, 1), (0, 0), (1, 1), (1, 0)],
    )
    assert ask(h, q16) == "B"  # the red one (second ref) grew


def test_ref_names() -> None:
    q = "object 1 is <region> and object 2 is <region>. X is <region>, Y is <region>. The object <region> is here."
    assert ref_names(q) == ["object 1", "object 2", "x", "y", None]


def test_text_only_reads_only_the_question_and_option_texts() -> None:
    adapter = resolve_model("text-only", ModelOptions())
    assert adapter.info.model_id == "baseline:text-only" and adapter.info.access == "baseline"
    views = [view([(0, 0, 10, 10)], [RED]), view([(50, 20, 60, 30), (0, 0, 10, 10)], [RED, BLUE])]
    prompt = cvb_prompt("Q5", "Is the blue cube the same object?", ["yes", "no"], views, [(0, 0), (1, 1)])
    assert ask(adapter, prompt) == "A"  # "yes" is the longer text; the masks play no part
    swapped = cvb_prompt("Q5", "Is the blue cube the same object?", ["yes", "no"], views[::-1], [(1, 1), (0, 0)])
    assert ask(adapter, swapped) == "A"
    named = cvb_prompt("Q1", "Which candidate is the red cone?", ["a box", "the red cone", "a ball"], views, [(0, 0)])
    assert ask(adapter, named) == "B"
    assert ask(resolve_model("baseline:text-only", ModelOptions()), named) == "B"
