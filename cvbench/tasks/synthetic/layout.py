"""Random scene layouts: objects resting on the ground or on each other, and cameras around them.

Objects that are not meant to touch keep their footprint circles at least MIN_GAP apart, so
every pair is either in contact by construction or clearly separated; the answers are still
computed from the measured geometry, never from these intentions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cvbench.tasks.synthetic.scene import (
    COLOURS,
    Camera,
    Decal,
    Scene,
    SceneObject,
    lying_matrix,
    yaw_matrix,
)
from cvbench.tasks.synthetic.shapes import Shape
from cvbench.tasks.synthetic.textures import MARKERS

MIN_GAP = 0.22
NEAR_MISS_GAP = (0.22, 0.4)  # how far a near miss stands off the neighbour it nearly touches
LOOKALIKE_SCENE_SHARE = 0.65  # scenes that get a group of appearance-identical objects
LOOKALIKE_ANCHOR_GAP = (0.03, 0.12)  # footprint gap between a group member and the object it stands beside
TEXT_LABELS: tuple[str, ...] = (
    "A7",
    "K2",
    "M4",
    "R9",
    "T3",
    "X5",
    "B8",
    "E6",
    "H1",
    "P0",
    "Z3",
    "N7",
    "42",
    "17",
    "86",
    "53",
    "GO",
    "UP",
    "OK",
    "ZY",
    "Q1",
    "F4",
    "W2",
    "J8",
)
GROUND_STYLES: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((206, 196, 178), (186, 176, 160)),
    ((196, 200, 188), (176, 181, 170)),
    ((204, 192, 196), (184, 173, 178)),
    ((190, 198, 206), (170, 178, 187)),
)


@dataclass(frozen=True)
class Footprint:
    x: float
    y: float
    radius: float


def footprint(obj: SceneObject) -> Footprint:
    """A circle on the ground containing the object's whole vertical projection."""
    corners = obj.world_corners()
    if obj.shape.kind in ("sphere", "cylinder", "cone") and obj.rotation == yaw_matrix(0.0):
        r = obj.shape.dims[0]
    else:
        r = float(np.max(np.hypot(corners[:, 0] - obj.centre[0], corners[:, 1] - obj.centre[1])))
    return Footprint(obj.centre[0], obj.centre[1], r)


def random_shape(rng: np.random.Generator, scale: float = 1.0) -> tuple[Shape, str]:
    """A random shape and its pose style ("upright" | "lying")."""
    kind = rng.choice(["box", "box", "box", "cylinder", "cylinder", "sphere", "cone", "lying"])

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi)) * scale

    if kind == "box":
        return Shape("box", (u(0.16, 0.42), u(0.16, 0.42), u(0.14, 0.42))), "upright"
    if kind == "cylinder":
        return Shape("cylinder", (u(0.14, 0.34), u(0.14, 0.45))), "upright"
    if kind == "sphere":
        return Shape("sphere", (u(0.15, 0.32),)), "upright"
    if kind == "cone":
        return Shape("cone", (u(0.18, 0.34), u(0.22, 0.5))), "upright"
    return Shape("cylinder", (u(0.11, 0.2), u(0.28, 0.5))), "lying"


def random_decal(rng: np.random.Generator) -> Decal:
    if rng.random() < 0.5:
        return Decal("text", str(rng.choice(TEXT_LABELS)))
    return Decal("marker", str(rng.choice(MARKERS)))


def ground_object(
    object_id: str, shape: Shape, pose: str, x: float, y: float, yaw: float, colour: str, decal: Decal | None = None
) -> SceneObject:
    """An object resting on the ground at (x, y)."""
    if pose == "lying":
        return SceneObject(object_id, shape, (x, y, shape.dims[0]), lying_matrix(yaw), colour, None)
    rot = yaw_matrix(yaw) if shape.kind == "box" else yaw_matrix(0.0)
    z = shape.half_extents()[2]
    can_print = shape.kind in ("box", "cylinder")
    return SceneObject(object_id, shape, (x, y, float(z)), rot, colour, decal if can_print else None)


def stacked_object(
    object_id: str,
    shape: Shape,
    support: SceneObject,
    dx: float,
    dy: float,
    yaw: float,
    colour: str,
    decal: Decal | None = None,
) -> SceneObject:
    """An upright object resting on the flat top of `support` (a box or an upright cylinder)."""
    base = support.top_z()
    z = base + float(shape.half_extents()[2])
    rot = yaw_matrix(yaw) if shape.kind == "box" else yaw_matrix(0.0)
    can_print = shape.kind in ("box", "cylinder")
    return SceneObject(
        object_id,
        shape,
        (support.centre[0] + dx, support.centre[1] + dy, z),
        rot,
        colour,
        decal if can_print else None,
        support=support.object_id,
    )


def separated(fp: Footprint, others: list[Footprint], gap: float = MIN_GAP) -> bool:
    return all(np.hypot(fp.x - o.x, fp.y - o.y) >= fp.radius + o.radius + gap for o in others)


def look_at_camera(
    name: str,
    azimuth: float,
    distance: float,
    height: float,
    target: tuple[float, float, float],
    width: int,
    height_px: int,
    hfov_deg: float,
) -> Camera:
    pos = (target[0] + distance * float(np.cos(azimuth)), target[1] + distance * float(np.sin(azimuth)), height)
    focal = (width / 2) / float(np.tan(np.radians(hfov_deg) / 2))
    return Camera(name, pos, target, width, height_px, focal)


def crossview_scene(scene_id: str, rng: np.random.Generator, width: int = 640, height: int = 480) -> Scene:
    """A CrossViewBench scene: 5-9 objects (some stacked, some touching, some hidden), in about two
    thirds of the scenes (then with 4-7 ordinary objects) plus a group of 3-4 look-alikes, and 2-4 cameras."""
    n_cams = int(rng.choice([2, 3, 3, 4]))
    az0 = float(rng.uniform(0, 2 * np.pi))
    azimuths = [az0]
    for _ in range(n_cams - 1):
        azimuths.append(azimuths[-1] + float(rng.uniform(np.radians(45), np.radians(120))))
    target = (float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.2, 0.2)), 0.25)
    cams = tuple(
        look_at_camera(
            f"cam{i}",
            a,
            float(rng.uniform(4.2, 5.6)),
            float(rng.uniform(1.4, 3.4)),
            target,
            width,
            height,
            float(rng.uniform(52, 62)),
        )
        for i, a in enumerate(azimuths)
    )

    colours = list(COLOURS)
    objects: list[SceneObject] = []
    feet: list[Footprint] = []
    with_group = rng.random() < LOOKALIKE_SCENE_SHARE
    # a scene with a look-alike group keeps fewer ordinary objects: the group adds 3-4 more (fewer
    # when members find no free spot)
    n_target = int(rng.integers(4, 8)) if with_group else int(rng.integers(5, 10))
    area = 1.9

    def next_id() -> str:
        return f"o{len(objects)}"

    def pick_colour() -> str:
        return str(rng.choice(colours))

    # optional hider: a big object with a small one right behind it as seen from one camera
    if rng.random() < 0.6:
        hider = ground_object(
            next_id(),
            Shape("box", (float(rng.uniform(0.35, 0.5)), float(rng.uniform(0.3, 0.45)), float(rng.uniform(0.4, 0.6)))),
            "upright",
            float(rng.uniform(-0.6, 0.6)),
            float(rng.uniform(-0.6, 0.6)),
            0.0,
            pick_colour(),
            random_decal(rng) if rng.random() < 0.3 else None,
        )
        cam = cams[int(rng.integers(0, n_cams))]
        to_cam = np.array(cam.position[:2]) - np.array(hider.centre[:2])
        to_cam /= np.linalg.norm(to_cam)
        hider = replace(hider, rotation=yaw_matrix(float(np.arctan2(to_cam[1], to_cam[0]))))
        objects.append(hider)
        feet.append(footprint(hider))
        small, pose = random_shape(rng, scale=0.6)
        for _ in range(10):
            dist = feet[0].radius + float(rng.uniform(0.45, 0.8))
            jitter = float(rng.uniform(-0.1, 0.1))
            pos = np.array(hider.centre[:2]) - to_cam * dist + np.array([-to_cam[1], to_cam[0]]) * jitter
            hidden = ground_object(
                next_id(), small, pose, float(pos[0]), float(pos[1]), float(rng.uniform(0, np.pi)), pick_colour()
            )
            if hidden.top_z() < hider.top_z() * 0.8 and separated(footprint(hidden), feet):
                objects.append(hidden)
                feet.append(footprint(hidden))
                break

    attempts = 0
    while len(objects) < n_target and attempts < 400:
        attempts += 1
        shape, pose = random_shape(rng)
        colour = pick_colour()
        decal = random_decal(rng) if rng.random() < 0.35 else None
        yaw = float(rng.uniform(0, np.pi))
        roll = rng.random()
        ground_ids = [i for i, o in enumerate(objects) if o.support is None]
        if roll < 0.2 and ground_ids:  # stack on a flat-topped object
            sup = objects[int(rng.choice(ground_ids))]
            flat_top = sup.shape.kind == "box" or (sup.shape.kind == "cylinder" and sup.rotation == yaw_matrix(0.0))
            if not flat_top:
                continue
            if any(o.support == sup.object_id for o in objects) or pose == "lying":
                continue
            top_half = float(min(sup.shape.half_extents()[:2]))
            shape = _shrink_to(shape, top_half * 0.95)
            cand = stacked_object(
                next_id(),
                shape,
                sup,
                float(rng.uniform(-0.3, 0.3)) * top_half,
                float(rng.uniform(-0.3, 0.3)) * top_half,
                yaw,
                colour,
                decal,
            )
            others = [f for f, o in zip(feet, objects) if o.object_id != sup.object_id]
            if cand.top_z() > 1.6 or not separated(footprint(cand), others):
                continue
        elif roll < 0.55 and ground_ids:  # touch an object standing on the ground, or nearly
            sup = objects[int(rng.choice(ground_ids))]
            touching = _touching(next_id(), shape, pose, sup, rng, colour, decal)
            if touching is None:
                continue
            cand = touching if roll < 0.4 else _moved_off(touching, sup, float(rng.uniform(*NEAR_MISS_GAP)))
            others = [f for f, o in zip(feet, objects) if o.object_id != sup.object_id and o.support != sup.object_id]
            if not separated(footprint(cand), others) or max(abs(cand.centre[0]), abs(cand.centre[1])) > area + 0.3:
                continue
        else:
            x, y = (float(v) for v in rng.uniform(-area, area, size=2))
            cand = ground_object(next_id(), shape, pose, x, y, yaw, colour, decal)
            if not separated(footprint(cand), feet):
                continue
        objects.append(cand)
        feet.append(footprint(cand))

    if with_group:
        objects.extend(_lookalike_group(objects, feet, rng, area))

    light = np.array([float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.6, 0.6)), 1.0])
    light /= np.linalg.norm(light)
    ground = GROUND_STYLES[int(rng.integers(0, len(GROUND_STYLES)))]
    return Scene(scene_id, tuple(objects), cams, (float(light[0]), float(light[1]), float(light[2])), ground)


def _moved_off(obj: SceneObject, sup: SceneObject, gap: float) -> SceneObject:
    """`obj` pushed `gap` further away from `sup` along the line between their centres: a near miss,
    placed like a touching neighbour (so it overlaps `sup` in the images just as often) but not
    touching; only depth tells them apart."""
    away = np.array(obj.centre[:2]) - np.array(sup.centre[:2])
    away /= max(float(np.linalg.norm(away)), 1e-9)
    x, y = np.array(obj.centre[:2]) + away * gap
    return replace(obj, centre=(float(x), float(y), obj.centre[2]))


def _shrink_to(shape: Shape, max_half: float) -> Shape:
    """Scale a shape down so that its horizontal half extent is at most `max_half`."""
    cur = float(max(shape.half_extents()[:2]))
    if cur <= max_half:
        return shape
    k = max_half / cur
    return Shape(shape.kind, tuple(d * k for d in shape.dims))


def _touching(
    object_id: str,
    shape: Shape,
    pose: str,
    sup: SceneObject,
    rng: np.random.Generator,
    colour: str,
    decal: Decal | None,
) -> SceneObject | None:
    """An object placed on the ground so that it touches `sup` (box faces or round sides)."""
    if pose == "lying" or sup.shape.kind not in ("box", "cylinder") or sup.rotation[2] != (0.0, 0.0, 1.0):
        return None
    if shape.kind == "box" and sup.shape.kind == "box":
        R = sup.R
        axis = int(rng.integers(0, 2))
        sign = float(rng.choice([-1.0, 1.0]))
        other = 1 - axis
        lateral = float(rng.uniform(-0.4, 0.4)) * min(sup.shape.dims[other], shape.dims[other])
        offset = np.zeros(3)
        offset[axis] = sign * (sup.shape.dims[axis] + shape.dims[axis])
        offset[other] = lateral
        world = R @ offset
        yaw = float(np.arctan2(R[1, 0], R[0, 0]))
        return ground_object(
            object_id, shape, "upright", sup.centre[0] + world[0], sup.centre[1] + world[1], yaw, colour, decal
        )
    ang = float(rng.uniform(0, 2 * np.pi))
    direction = np.array([np.cos(ang), np.sin(ang)])
    if sup.shape.kind == "box":
        R = sup.R
        axis = int(rng.integers(0, 2))
        sign = float(rng.choice([-1.0, 1.0]))
        if shape.kind == "sphere" and shape.dims[0] > sup.shape.dims[2] * 2:
            return None
        direction = sign * R[:2, axis]
        dist = sup.shape.dims[axis] + shape.dims[0]
        lateral_axis = R[:2, 1 - axis]
        lateral = float(rng.uniform(-0.4, 0.4)) * sup.shape.dims[1 - axis]
        pos = np.array(sup.centre[:2]) + direction * dist + lateral_axis * lateral
        return ground_object(object_id, shape, "upright", float(pos[0]), float(pos[1]), 0.0, colour, decal)
    # support is an upright cylinder
    if shape.kind == "box":
        pos = np.array(sup.centre[:2]) + direction * (sup.shape.dims[0] + shape.dims[0])
        return ground_object(object_id, shape, "upright", float(pos[0]), float(pos[1]), ang, colour, decal)
    if shape.kind == "cylinder":
        pos = np.array(sup.centre[:2]) + direction * (sup.shape.dims[0] + shape.dims[0])
        return ground_object(object_id, shape, "upright", float(pos[0]), float(pos[1]), 0.0, colour, decal)
    return None


def appearance_key(obj: SceneObject) -> tuple[str, tuple[float, ...], str, tuple[float, float, float]]:
    """What two objects share when they look identical apart from a printed decal: shape, size,
    colour and pose axis (a lying cylinder differs from an upright one)."""
    return obj.shape.kind, tuple(round(d, 6) for d in obj.shape.dims), obj.colour, obj.rotation[2]


def _lookalike_group(
    objects: list[SceneObject], feet: list[Footprint], rng: np.random.Generator, area: float
) -> list[SceneObject]:
    """3-4 objects (2-4 before cvbench-synth-cvb/7) of one shape, size and colour (a colour no
    other object has), each standing on the ground right beside a different "anchor" object whose
    shape-and-colour is unique in the scene, so the layout tells the look-alikes apart. Half of
    the groups carry a distinct marker symbol per member, the rest none. Members that find no
    free spot are left out; a group of fewer than 2 is dropped."""
    used = {o.colour for o in objects}
    free = [c for c in COLOURS if c not in used]
    k = int(rng.choice([3, 4, 4]))
    marked = rng.random() < 0.5
    if rng.random() < 0.6:
        shape = Shape("cylinder", (float(rng.uniform(0.13, 0.2)), float(rng.uniform(0.15, 0.28))))
    else:
        shape = Shape(
            "box", (float(rng.uniform(0.13, 0.2)), float(rng.uniform(0.13, 0.2)), float(rng.uniform(0.12, 0.26)))
        )
    yaw = float(rng.uniform(0, np.pi))
    markers = [str(m) for m in rng.choice(MARKERS, size=k, replace=False)]
    if not free:
        return []
    colour = str(rng.choice(free))
    looks = [(o.shape.kind, o.colour) for o in objects]
    anchors = [o for o in objects if o.support is None and looks.count((o.shape.kind, o.colour)) == 1]
    anchors = [anchors[i] for i in rng.permutation(len(anchors))]
    members: list[SceneObject] = []
    member_feet: list[Footprint] = []
    for anchor in anchors:
        if len(members) == k:
            break
        a_fp = feet[objects.index(anchor)]
        others = [
            fp for fp, o in zip(feet, objects) if o.object_id != anchor.object_id and o.support != anchor.object_id
        ]
        for _ in range(12):
            ang = float(rng.uniform(0, 2 * np.pi))
            radius = float(np.max(shape.half_extents()[:2])) * (np.sqrt(2.0) if shape.kind == "box" else 1.0)
            dist = a_fp.radius + radius + float(rng.uniform(*LOOKALIKE_ANCHOR_GAP))
            x, y = a_fp.x + dist * float(np.cos(ang)), a_fp.y + dist * float(np.sin(ang))
            decal = Decal("marker", markers[len(members)]) if marked else None
            cand = ground_object(f"o{len(objects) + len(members)}", shape, "upright", x, y, yaw, colour, decal)
            fp = footprint(cand)
            if max(abs(x), abs(y)) > area + 0.3 or not separated(fp, others + member_feet):
                continue
            members.append(cand)
            member_feet.append(fp)
            break
    if len(members) < 2:
        return []
    feet.extend(member_feet)
    return members
