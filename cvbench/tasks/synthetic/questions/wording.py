"""The question templates of the 17 task types and their rendering (`question_text`)."""

from __future__ import annotations

from cvbench.core.types import REGION_PLACEHOLDER as R


def _numbered(word: str, n: int, style: str = "is") -> str:
    """style "is": 'candidate 1 is <region>, candidate 2 is <region> and candidate 3 is <region>';
    style "paren": '<region> (candidate 1), <region> (candidate 2) and <region> (candidate 3)'."""
    parts = [f"{word} {k + 1} is {R}" if style == "is" else f"{R} ({word} {k + 1})" for k in range(n)]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# Two or three phrasings per task type with the same meaning, the same regions in the same order
# and the same options; fields: {r} a region, {cand4}/{obj3}/{obj4} numbered lists ("candidate 1
# is <region>, ..."), {cand4p}/{obj3p}/{obj4p} the same lists as "<region> (candidate 1), ...".
TEMPLATES: dict[str, tuple[str, ...]] = {
    "Q1": (
        (
            "The object {r} is marked in the first image. Four objects are marked in the second image: {cand4}. "
            "Which candidate is the same physical object as the one marked in the first image?"
        ),
        (
            "Look at {r} in the first image. In the second image four objects are marked: {cand4p}. Which "
            "candidate shows this same physical object?"
        ),
        (
            "In the first image, {r} is marked. Find the same physical object in the second image among the four "
            "marked candidates: {cand4}. Which candidate is it?"
        ),
    ),
    "Q2": (
        (
            "The object {r} is marked in the first image. Two objects are marked in the second image: the first "
            "is {r} and the second is {r}. Which of the two is the same physical object as the one marked in the "
            "first image?"
        ),
        (
            "Consider {r} in the first image. The second image marks two objects: the first is {r} and the second"
            " is {r}. Which of them is the same physical object as the one in the first image?"
        ),
        (
            "The first image marks {r}. Of the two objects marked in the second image, {r} (the first) and {r} "
            "(the second), which one is the same physical object?"
        ),
    ),
    "Q3": (
        (
            "Three objects are marked in the first image: {obj3}. Which of them is the same physical object as "
            "{r} in the second image?"
        ),
        (
            "The first image has three marked objects: {obj3p}. The second image marks {r}. Which of the three, "
            "if any, is the same physical object?"
        ),
        (
            "Three objects are marked in the first image ({obj3}) and one in the second image ({r}). Is the "
            "object marked in the second image one of the three, and if so, which?"
        ),
    ),
    "Q4": (
        (
            "Two objects are marked in the first image: object 1 is {r} and object 2 is {r}. Three objects are "
            "marked in the second image: X is {r}, Y is {r} and Z is {r}. Which matching of the first image's "
            "objects to the second image's objects is correct?"
        ),
        (
            "In the first image, object 1 is {r} and object 2 is {r}. In the second image, three objects are "
            "marked: X is {r}, Y is {r} and Z is {r}. Which option pairs each object of the first image with the "
            "same physical object in the second image?"
        ),
        (
            "The first image marks {r} (object 1) and {r} (object 2); the second image marks {r} (X), {r} (Y) and"
            " {r} (Z). Which correspondence between them is correct?"
        ),
    ),
    "Q5": (
        "Are {r} in the first image and {r} in the second image the same physical object?",
        ("The first image marks {r} and the second image marks {r}. Do both marks show the same physical object?"),
        "Do {r} (first image) and {r} (second image) show one and the same physical object?",
    ),
    "Q6": (
        "The object {r} is marked in the first image. Is any part of this object visible in the second image?",
        "Consider {r} in the first image. Can any part of this object be seen in the second image?",
        "Is the object {r} from the first image at least partly visible in the second image?",
    ),
    "Q7": (
        (
            "Four objects are marked in the first image: {obj4}. Which of them cannot be seen at all in the "
            "second image?"
        ),
        ("The first image marks four objects: {obj4p}. Which of them is completely invisible in the second image?"),
        (
            "Four objects are marked in the first image: {obj4}. One of them does not appear anywhere in the "
            "second image. Which one?"
        ),
    ),
    "Q8": (
        (
            "The object {r} is marked in the first image. In the second image this object is partly hidden behind"
            " another object. Which of the objects marked in the second image hides it? {Cand4}."
        ),
        (
            "The first image marks {r}. In the second image part of this object is hidden behind another object. "
            "Which marked object in the second image blocks the view of it? The candidates are {cand4p}."
        ),
        (
            "Find the object {r} from the first image in the second image, where something covers part of it. "
            "Which of the marked candidates in the second image is covering it? {Cand4}."
        ),
    ),
    "Q9": (
        (
            "The object {r} is marked in the first image. Which of the objects marked in the second image is "
            "closest to it in 3D space (centre to centre)? {Cand4}."
        ),
        (
            "Consider {r} in the first image. Among the objects marked in the second image, {cand4p}, which one "
            "has its centre nearest to this object's centre in 3D?"
        ),
        (
            "The first image marks {r}. Which object marked in the second image is the nearest to it in 3D space,"
            " measured between centres? {Cand4}."
        ),
    ),
    "Q10": (
        (
            "The object {r} is marked in the first image. Find the same object in the second image, where it is "
            "not marked. Does it appear larger in the second image than in the first?"
        ),
        (
            "Look at {r} in the first image and locate the same physical object in the second image (it is "
            "unmarked there). Is it bigger in the second image than in the first?"
        ),
        ("{r} is marked in the first image only. Does this object look larger in the second image than in the first?"),
    ),
    "Q11": (
        (
            "Four objects are marked in the first image: {obj4}. In the first image, which of them is the least "
            "complete, with the largest share of the object hidden behind other objects or cut off by the image "
            "border?"
        ),
        (
            "The first image marks four objects: {obj4p}. Which of them is the least complete in the first image,"
            " that is, has the largest part hidden by other objects or cut off at the image border?"
        ),
        (
            "Four objects are marked in the first image: {obj4}. Which one is least complete there (most occluded"
            " or truncated by the frame)?"
        ),
    ),
    "Q12": (
        (
            "The object {r} is marked in the first image. Find the same object in the second image, where it is "
            "not marked. In which image is a larger share of the object visible (less of it hidden or cut off)?"
        ),
        (
            "Look at {r} in the first image and locate the same physical object in the second image (it is "
            "unmarked there). Which image shows a bigger share of this object (less occluded or cut off)?"
        ),
        (
            "{r} is marked in the first image only. In which image, the first or the second, is more of this "
            "object visible?"
        ),
    ),
    "Q13": (
        (
            "In the first image, {r} is to the left of {r}. In the second image, is their left-right order "
            "reversed, with the first of them now to the right of the second?"
        ),
        (
            "The first image shows {r} to the left of {r}. Does the second image show the first of them to the "
            "right of the second, that is, is their left-right order reversed?"
        ),
        (
            "In the first image, {r} is left of {r}. Seen from the second image's camera, has their left-right "
            "order swapped?"
        ),
    ),
    "Q14": (
        (
            "Two objects are marked in the first image: first {r}, then {r}. Find the same two objects in the "
            "second image, where they are not marked. Which of the two shifts more in image position (pixels) "
            "between the first and the second image?"
        ),
        (
            "The first image marks two objects, first {r} and second {r}. Locate both in the second image (they "
            "are unmarked there). Which of them moves farther in pixel position from the first image to the second?"
        ),
        (
            "Two objects are marked in the first image ({r} first, {r} second). Which of them changes its image "
            "position more in the second image, where they are not marked?"
        ),
    ),
    "Q15": (
        (
            "In the first image, {r} is closer to the camera than {r}. Is the first of them also closer to the "
            "camera than the second in the second image?"
        ),
        (
            "From the first camera, {r} is nearer than {r}. From the second camera, is the first of them still "
            "nearer than the second?"
        ),
        (
            "In the first image, {r} is in front of {r} (closer to the camera). Does the same depth order hold in"
            " the second image?"
        ),
    ),
    "Q16": (
        (
            "Two objects are marked in the first image: first {r}, then {r}. Find the same two objects in the "
            "second image, where they are not marked. Which of the two grows more (or shrinks less) in apparent "
            "size from the first image to the second?"
        ),
        (
            "The first image marks two objects, first {r} and second {r}. Locate both in the second image (they "
            "are unmarked there). Which of them gains more in apparent size (or loses less) from the first image "
            "to the second?"
        ),
        (
            "Two objects are marked in the first image ({r} first, {r} second). Relative to its size there, which "
            "of them looks larger by the bigger factor in the second image, where they are not marked?"
        ),
    ),
    "Q17": (
        (
            "In the first image, {r} and {r} overlap in the picture. Are these two objects physically touching "
            "each other in 3D? The second image shows the same scene from another viewpoint."
        ),
        (
            "In the first image, {r} and {r} overlap. Do these two objects actually touch each other in 3D? The "
            "second image shows the scene from another viewpoint."
        ),
        (
            "In the first image the projections of {r} and {r} overlap. Using the second image (another "
            "viewpoint) as well: are the two objects in physical contact?"
        ),
    ),
}


def question_text(task_type: str, wording: int) -> str:
    """The question of `task_type` in phrasing `wording` (an index into TEMPLATES[task_type])."""
    templates = TEMPLATES[task_type]
    if not 0 <= wording < len(templates):
        raise ValueError(f"{task_type} has {len(templates)} wordings, got index {wording}")
    fields = {"r": R}
    for word, key, n in (("candidate", "cand", 4), ("object", "obj", 3), ("object", "obj", 4)):
        fields[f"{key}{n}"] = _numbered(word, n)
        fields[f"{key}{n}p"] = _numbered(word, n, "paren")
    fields["Cand4"] = _numbered("Candidate", 4)
    return templates[wording].format(**fields)
