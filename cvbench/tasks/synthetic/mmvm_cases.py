"""MMVM case scenes: a query object among look-alike candidates, told apart by one designed cue.

For every cue in a case's label list the query has a value of that attribute that no other
candidate has; every attribute outside the list is the same for all candidates, so the labelled
cues are the designed ways to pick the query out (CL colour, SZ size, SP shape or posture, TM
printed text, OM printed marker, OO orientation, BR what sits on top of it, RP its neighbour
among unique landmark objects).

Colours are exact shades ("#rrggbb"), not a dozen named colours: with CL the other candidates
wear nearby shades of the query's colour (each at least MIN_SHADE_DELTA_E away in CIELAB, a
difference a person sees side by side), so that colour statistics alone do not single it out
once the light changes. The two views are lit from different directions (photos taken at other
times); the candidate view's white balance is set per case by the generator (mmvm.py).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from cvbench.core.types import CUE_CODES
from cvbench.tasks.synthetic.layout import GROUND_STYLES, TEXT_LABELS, look_at_camera
from cvbench.tasks.synthetic.scene import (
    COLOURS,
    Decal,
    Scene,
    SceneObject,
    colour_rgb,
    lying_matrix,
    yaw_matrix,
)
from cvbench.tasks.synthetic.shapes import Shape
from cvbench.tasks.synthetic.textures import MARKERS

# shape-or-posture variants: (shape kind, dims at scale 1, pose)
VARIANTS: dict[str, tuple[str, tuple[float, ...], str]] = {
    "cube": ("box", (0.26, 0.26, 0.26), "upright"),
    "tall box": ("box", (0.18, 0.18, 0.4), "upright"),
    "slab": ("box", (0.36, 0.24, 0.11), "upright"),
    "cylinder": ("cylinder", (0.24, 0.28), "upright"),
    "lying cylinder": ("cylinder", (0.16, 0.36), "lying"),
    "ball": ("sphere", (0.25,), "upright"),
    "cone": ("cone", (0.26, 0.36), "upright"),
}
BAR = ("box", (0.46, 0.12, 0.13), "upright")  # an elongated box whose heading is visible (OO)
PRINTABLE = ("cube", "cylinder")
FLAT_TOPPED = ("cube", "tall box", "cylinder")
ATTACHMENTS: dict[str, tuple[str, tuple[float, ...]]] = {
    "ball": ("sphere", (0.11,)),
    "block": ("box", (0.095, 0.095, 0.095)),
    "cone": ("cone", (0.11, 0.14)),
}
SIZE_LEVELS = (0.72, 1.0, 1.4, 1.95)
SECONDARY: dict[str, tuple[str, ...]] = {
    "CL": ("SZ", "RP", "BR"),
    "SZ": ("CL", "RP"),
    "RP": ("CL", "BR"),
    "TM": ("CL", "SZ"),
    "OM": ("CL", "SZ"),
    "SP": ("CL", "RP"),
    "OO": ("CL", "RP"),
    "BR": ("CL", "RP"),
}
SECONDARY_PROBABILITY = 0.3
MAX_CANDIDATES: dict[str, int] = {"TM": 10, "OM": 14, "BR": 20}
COUNT_BUCKETS: tuple[tuple[int, int], ...] = ((2, 4), (5, 8), (9, 12), (13, 25), (26, 37))
MIN_SHADE_DELTA_E = 20.0  # CL: every other candidate's shade is at least this far from the query's (CIELAB)
MAX_SHADE_DELTA_E = 45.0  # ... and at most this far, so that colour statistics confuse them under another light
VIEW_DISTANCE = (0.9, 1.35)  # each view's camera distance, times the distance that frames the grid
VIEW_AIM_SHIFT = 0.15  # each view aims up to this share of the grid's half extent off its centre
# The candidate view's azimuth is this many degrees (either way) from the query view's, drawn once per
# case (not per layout attempt, so the rank search cannot pick views by it), uniformly over a range
# centred on 90: image position, apparent size, depth (fog) and which faces show carry over between
# two views in proportion to the cosine of the turn, so a range of turns under 90 (up to
# `mmvm/4`: 40-100) let every appearance statistic find the match above chance; around 90 they
# carry over as often as they reverse.
VIEW_TURN = (40.0, 140.0)


@dataclass(frozen=True)
class Look:
    """Everything about a candidate that a cue can be about."""

    variant: str  # key of VARIANTS, or "bar"
    colour: str
    scale: float
    yaw: float
    decal: Decal | None = None
    attachment: tuple[str, str] | None = None  # (ATTACHMENTS key, colour) resting on its top


@dataclass(frozen=True)
class CaseDesign:
    case_id: str
    cues: tuple[str, ...]  # primary first
    scene: Scene
    query: str  # object id of the query
    candidates: tuple[str, ...]  # object ids of the look-alike candidates (query included)
    landmark_of_query: str | None  # RP: the landmark the query stands next to
    looks: dict[str, Look]  # candidate object id -> look
    cand_light: tuple[float, float, float]  # light of the candidate view (scene.light lights the query view)
    absent: bool = False  # the query was taken away before the candidate view was taken

    @property
    def marked(self) -> tuple[str, ...]:
        """The candidates marked in the candidate view: every look-alike there (the query is not
        there when it is absent)."""
        return tuple(c for c in self.candidates if not (self.absent and c == self.query))

    def cand_scene(self) -> Scene:
        """The scene the candidate camera sees: without the query and what rests on it when absent."""
        if not self.absent:
            return self.scene
        gone = {self.query} | {o.object_id for o in self.scene.objects if o.support == self.query}
        return replace(self.scene, objects=tuple(o for o in self.scene.objects if o.object_id not in gone))


def candidate_count(cue: str, k: int, rng: np.random.Generator) -> int:
    """Candidate count for the k-th case of a cue: buckets in turn (2-4 ... 26-37), capped per cue."""
    lo, hi = COUNT_BUCKETS[(k + CUE_CODES.index(cue)) % len(COUNT_BUCKETS)]  # cues start at different buckets
    cap = MAX_CANDIDATES.get(cue, 37)
    lo, hi = min(lo, cap), min(hi, cap)
    return int(rng.integers(lo, hi + 1))


def choose_cues(cue: str, rng: np.random.Generator) -> tuple[str, ...]:
    if rng.random() < SECONDARY_PROBABILITY:
        return (cue, str(rng.choice(SECONDARY[cue])))
    return (cue,)


def _hex(rgb: tuple[float, float, float]) -> str:
    r, g, b = (round(255 * min(1.0, max(0.0, v))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _lab(colour: str) -> np.ndarray:
    px = np.array([[colour_rgb(colour)]], dtype=np.uint8)
    lab = cv2.cvtColor(px, cv2.COLOR_RGB2LAB).reshape(3).astype(np.float64)
    return np.array([lab[0] * 100.0 / 255.0, lab[1] - 128.0, lab[2] - 128.0])


def delta_e(a: str, b: str) -> float:
    """CIE76 colour difference of two colours."""
    return float(np.linalg.norm(_lab(a) - _lab(b)))


def random_shade(rng: np.random.Generator) -> str:
    """A saturated, mid-bright colour of any hue."""
    h, s, v = float(rng.uniform(0, 1)), float(rng.uniform(0.45, 0.85)), float(rng.uniform(0.55, 0.9))
    return _hex(colorsys.hsv_to_rgb(h, s, v))


def nearby_shade(colour: str, rng: np.random.Generator) -> str:
    """Another shade MIN_SHADE_DELTA_E..MAX_SHADE_DELTA_E away from `colour`: a little other hue,
    saturation and brightness."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in colour_rgb(colour)))
    for _ in range(200):
        shade = _hex(
            colorsys.hsv_to_rgb(
                (h + float(rng.uniform(-0.09, 0.09))) % 1.0,
                min(0.95, max(0.2, s + float(rng.uniform(-0.25, 0.25)))),
                min(0.95, max(0.3, v + float(rng.uniform(-0.22, 0.22)))),
            )
        )
        if MIN_SHADE_DELTA_E <= delta_e(shade, colour) <= MAX_SHADE_DELTA_E:
            return shade
    raise RuntimeError(f"no shade near {colour} in 200 draws")  # not reached for random_shade colours


def design_looks(cues: tuple[str, ...], n: int, q: int, rng: np.random.Generator) -> list[Look]:
    """Looks for n candidates where candidate q is unique in every cue attribute and all
    candidates share every other attribute."""
    colours = list(COLOURS)
    if "OO" in cues:
        base_variant = "bar"
    elif "TM" in cues:
        base_variant = "cube"  # flat sides keep every text whole from any heading
    elif "OM" in cues:
        base_variant = str(rng.choice(PRINTABLE))
    elif "BR" in cues:
        base_variant = str(rng.choice(FLAT_TOPPED))
    else:
        base_variant = str(rng.choice([v for v in VARIANTS if v != "slab"]))
    base = Look(base_variant, random_shade(rng), 1.0, float(rng.uniform(0, np.pi)))
    if "TM" in cues or "OM" in cues:
        base = replace(base, scale=1.3)
    looks = [base] * n

    def others(values: list[Any], query_value: Any) -> list[Any]:
        return [v for v in values if v != query_value]

    for cue in cues:
        if cue == "CL":
            qv = looks[q].colour
            looks = [replace(lk, colour=qv if i == q else nearby_shade(qv, rng)) for i, lk in enumerate(looks)]
        elif cue == "SZ":
            qi = int(rng.integers(0, len(SIZE_LEVELS)))
            pool = [s for j, s in enumerate(SIZE_LEVELS) if j != qi]
            looks = [
                replace(lk, scale=lk.scale * (SIZE_LEVELS[qi] if i == q else float(rng.choice(pool))))
                for i, lk in enumerate(looks)
            ]
        elif cue == "SP":
            qv = str(rng.choice(list(VARIANTS)))
            pool = others(list(VARIANTS), qv)
            looks = [replace(lk, variant=qv if i == q else str(rng.choice(pool))) for i, lk in enumerate(looks)]
        elif cue == "TM":
            texts = [TEXT_LABELS[j] for j in rng.permutation(len(TEXT_LABELS))[:n]]
            looks = [replace(lk, decal=Decal("text", texts[i])) for i, lk in enumerate(looks)]
        elif cue == "OM":
            qv = str(rng.choice(MARKERS))
            pool = others(list(MARKERS), qv)
            looks = [
                replace(lk, decal=Decal("marker", qv if i == q else str(rng.choice(pool))))
                for i, lk in enumerate(looks)
            ]
        elif cue == "OO":
            turn = float(rng.choice([-1.0, 1.0])) * np.pi / 2
            looks = [
                replace(lk, yaw=lk.yaw + (turn if i == q else float(rng.uniform(-0.06, 0.06))))
                for i, lk in enumerate(looks)
            ]
        elif cue == "BR":
            kinds = list(ATTACHMENTS)
            q_attachment = (str(rng.choice(kinds)), str(rng.choice(colours)))
            pairs = [(k, c) for k in kinds for c in colours if (k, c) != q_attachment]
            # every candidate carries something (up to `mmvm/4` 45% of the others carried nothing, and
            # one with a whole, uncovered top was never the match: a cue for a shape statistic)
            looks = [
                replace(lk, attachment=q_attachment if i == q else pairs[int(rng.integers(0, len(pairs)))])
                for i, lk in enumerate(looks)
            ]
        # RP is about placement, handled by the layout
    return looks


def _look_shape(look: Look) -> tuple[Shape, str]:
    kind, dims, pose = BAR if look.variant == "bar" else VARIANTS[look.variant]
    return Shape(kind, tuple(d * look.scale for d in dims)), pose


def _object(object_id: str, look: Look, x: float, y: float) -> SceneObject:
    shape, pose = _look_shape(look)
    if pose == "lying":
        return SceneObject(object_id, shape, (x, y, shape.dims[0]), lying_matrix(look.yaw), look.colour)
    rot = yaw_matrix(look.yaw) if shape.kind == "box" else yaw_matrix(0.0)
    decal = look.decal if shape.kind in ("box", "cylinder") else None
    return SceneObject(object_id, shape, (x, y, float(shape.half_extents()[2])), rot, look.colour, decal)


def _footprint_radius(look: Look) -> float:
    shape, pose = _look_shape(look)
    h = shape.half_extents()
    if pose == "lying":
        return float(np.hypot(h[2], h[0]))
    return float(np.hypot(h[0], h[1])) if shape.kind == "box" else float(h[0])


def design_case(
    case_id: str,
    cues: tuple[str, ...],
    n: int,
    rng: np.random.Generator,
    attempt_rng: np.random.Generator,
    absent: bool = False,
) -> CaseDesign:
    """The case's scene with `n` marked candidates. `rng` fixes the looks and the turn between the
    two views; `attempt_rng` the layout and the cameras' framing (re-drawn when a layout leaves a
    candidate too hidden). With `absent` the
    scene holds one more look-alike, the query, which the candidate view does not show (taken away
    between the photos); image size and layout follow the marked count either way, so nothing
    but the scene's content tells the two kinds of case apart."""
    shown = n
    n = n + 1 if absent else n
    q = int(rng.integers(0, n))
    looks = design_looks(cues, n, q, rng)
    use_rp = "RP" in cues
    n_landmarks = int(rng.integers(2, 4)) if use_rp else 0
    turn = float(rng.choice([-1.0, 1.0])) * float(np.radians(rng.uniform(*VIEW_TURN)))
    spacing = 2 * max(_footprint_radius(lk) for lk in looks) + 0.32
    need = n + n_landmarks + (8 if use_rp else 0)
    cols = max(3, int(np.ceil(np.sqrt(need * 1.15))))
    rows = max(3, int(np.ceil(need / cols)))
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    order = [cells[i] for i in attempt_rng.permutation(len(cells))]

    landmark_cells: list[tuple[int, int]] = []
    query_cell = None
    if use_rp:
        l1 = order[0]  # any cell: an interior landmark would put the query nearer the middle than most
        near_l1 = [(l1[0] + dr, l1[1] + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
        near_l1 = [cell for cell in near_l1 if 0 <= cell[0] < rows and 0 <= cell[1] < cols]
        beside = [cell for cell in near_l1 if cell[0] == l1[0] or cell[1] == l1[1]]  # not diagonal
        query_cell = beside[int(attempt_rng.integers(0, len(beside)))]
        far = [cell for cell in order if max(abs(cell[0] - l1[0]), abs(cell[1] - l1[1])) >= 2]
        landmark_cells = [l1] + far[: n_landmarks - 1]
        blocked = set(near_l1) | set(landmark_cells)
        free = [cell for cell in order if cell not in blocked]
    else:
        free = order
    cand_cells = free[: n - (1 if use_rp else 0)]
    if use_rp:
        cand_cells.insert(q, query_cell)
    else:
        cand_cells = free[:n]

    jitter = 0.05 if use_rp else 0.1  # RP: keep "next to the landmark" unmistakable

    def centre(cell: tuple[int, int]) -> tuple[float, float]:
        jx, jy = attempt_rng.uniform(-jitter, jitter, size=2) * spacing
        return ((cell[1] - (cols - 1) / 2) * spacing + float(jx), (cell[0] - (rows - 1) / 2) * spacing + float(jy))

    objects: list[SceneObject] = []
    cand_ids: list[str] = []
    look_by_id: dict[str, Look] = {}
    for look, cell in zip(looks, cand_cells):
        oid = f"o{len(objects)}"
        x, y = centre(cell)
        obj = _object(oid, look, x, y)
        objects.append(obj)
        cand_ids.append(oid)
        look_by_id[oid] = look
        if look.attachment is not None:
            kind, colour = look.attachment
            a_kind, a_dims = ATTACHMENTS[kind]
            a_shape = Shape(a_kind, tuple(d * max(1.0, look.scale) for d in a_dims))
            z = obj.top_z() + float(a_shape.half_extents()[2])
            objects.append(
                SceneObject(f"o{len(objects)}", a_shape, (x, y, z), yaw_matrix(0.0), colour, None, support=oid)
            )
    used_colours = {lk.colour for lk in looks}
    free_colours = [c for c in COLOURS if c not in used_colours]
    landmark_colours = [free_colours[i] for i in attempt_rng.permutation(len(free_colours))]
    landmark_shapes = [Shape("cylinder", (0.13, 0.5)), Shape("cone", (0.26, 0.45)), Shape("box", (0.12, 0.12, 0.55))]
    landmark_ids: list[str] = []
    for j, cell in enumerate(landmark_cells):
        x, y = centre(cell)
        shape = landmark_shapes[j % len(landmark_shapes)]
        # distinct shapes make landmarks unique even when colours run out
        colour = landmark_colours[j] if j < len(landmark_colours) else "grey"
        oid = f"o{len(objects)}"
        objects.append(SceneObject(oid, shape, (x, y, float(shape.half_extents()[2])), yaw_matrix(0.0), colour))
        landmark_ids.append(oid)

    half_extent = 0.5 * spacing * np.hypot(cols, rows)
    az = float(attempt_rng.uniform(0, 2 * np.pi))
    width, height = (640, 480) if shown <= 8 else (800, 600) if shown <= 25 else (1024, 768)
    cams = []
    for k, a in enumerate((az, az + turn)):
        # each photo has its own framing: aim point and distance (so zoom) differ between the views,
        # so that image position and apparent area do not carry over from one view to the other
        elev = float(attempt_rng.uniform(np.radians(38), np.radians(58)))
        hfov = 56.0
        dist = (half_extent / np.tan(np.radians(hfov / 2)) + 1.2) * float(attempt_rng.uniform(*VIEW_DISTANCE))
        aim = attempt_rng.uniform(-VIEW_AIM_SHIFT, VIEW_AIM_SHIFT, size=2) * half_extent
        cams.append(
            look_at_camera(
                f"cam{k}",
                a,
                dist * float(np.cos(elev)),
                dist * float(np.sin(elev)),
                (float(aim[0]), float(aim[1]), 0.15),
                width,
                height,
                hfov,
            )
        )
    light = np.array([float(attempt_rng.uniform(-0.5, 0.5)), float(attempt_rng.uniform(-0.5, 0.5)), 1.0])
    light /= np.linalg.norm(light)
    cand_light = _other_light(attempt_rng)
    ground = GROUND_STYLES[int(attempt_rng.integers(0, len(GROUND_STYLES)))]
    scene = Scene(case_id, tuple(objects), tuple(cams), (float(light[0]), float(light[1]), float(light[2])), ground)
    return CaseDesign(
        case_id,
        cues,
        scene,
        cand_ids[q],
        tuple(cand_ids),
        landmark_ids[0] if landmark_ids else None,
        look_by_id,
        cand_light,
        absent,
    )


def _other_light(rng: np.random.Generator) -> tuple[float, float, float]:
    """The candidate view's light: from another side and height than the query view's (which is
    within about 35 degrees of overhead), so that every face's shading changes between the views."""
    azimuth = float(rng.uniform(0, 2 * np.pi))
    elevation = float(rng.uniform(np.radians(25), np.radians(50)))
    return (
        float(np.cos(elevation) * np.cos(azimuth)),
        float(np.cos(elevation) * np.sin(azimuth)),
        float(np.sin(elevation)),
    )
