"""Scene description: objects on a ground plane (world z up, ground at z = 0) and pinhole cameras."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import cast

import numpy as np

from cvbench.tasks.synthetic.shapes import Shape, signed_distance, surface_points

# Named colours (RGB) used for objects; names are what a person would call them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 40, 40),
    "orange": (236, 130, 30),
    "yellow": (235, 205, 40),
    "green": (50, 160, 60),
    "teal": (30, 150, 150),
    "blue": (45, 80, 200),
    "purple": (125, 60, 170),
    "pink": (230, 120, 170),
    "brown": (130, 80, 45),
    "white": (232, 232, 228),
    "grey": (128, 128, 128),
    "black": (40, 40, 44),
}


def colour_rgb(colour: str) -> tuple[int, int, int]:
    """RGB of a COLOURS name, or of an exact "#rrggbb" shade (the MMVM generator's look-alike colours)."""
    if colour in COLOURS:
        return COLOURS[colour]
    if len(colour) == 7 and colour[0] == "#":
        try:
            return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
        except ValueError:
            pass
    raise ValueError(f"unknown colour {colour!r}: expected one of {', '.join(COLOURS)} or '#rrggbb'")


SHAPE_NOUNS = {"box": "box", "cylinder": "cylinder", "sphere": "ball", "cone": "cone"}


@dataclass(frozen=True)
class Decal:
    """Something printed on the sides of an object: a short text or a marker symbol."""

    kind: str  # "text" | "marker"
    value: str  # the text, or a marker name from textures.MARKERS


@dataclass(frozen=True)
class SceneObject:
    object_id: str  # "o3": stable within the scene
    shape: Shape
    centre: tuple[float, float, float]  # world position of the canonical frame's origin
    rotation: tuple[tuple[float, float, float], ...]  # 3x3, local -> world
    colour: str  # key of COLOURS, or "#rrggbb" (colour_rgb)
    decal: Decal | None = None
    support: str | None = None  # object_id of the object it rests on (None: the ground)

    @property
    def name(self) -> str:
        noun = SHAPE_NOUNS[self.shape.kind]
        label = ""
        if self.decal is not None:
            label = (
                f" printed '{self.decal.value}'" if self.decal.kind == "text" else f" with a {self.decal.value} marker"
            )
        return f"{self.colour} {noun}{label}"

    @property
    def R(self) -> np.ndarray:
        return np.array(self.rotation, dtype=np.float64)

    @property
    def c(self) -> np.ndarray:
        return np.array(self.centre, dtype=np.float64)

    def world_corners(self) -> np.ndarray:
        """The 8 corners of the canonical bounding box, in world coordinates."""
        h = self.shape.half_extents()
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        return cast("np.ndarray", (signs * h) @ self.R.T + self.c)

    def top_z(self) -> float:
        return (
            float(self.world_corners()[:, 2].max())
            if self.shape.kind != "sphere"
            else self.centre[2] + self.shape.dims[0]
        )

    def signed_distance(self, world_pts: np.ndarray) -> np.ndarray:
        return signed_distance(self.shape, (world_pts - self.c) @ self.R)

    def surface(self, spacing: float = 0.015) -> np.ndarray:
        return cast("np.ndarray", surface_points(self.shape, spacing) @ self.R.T + self.c)


def yaw_matrix(yaw: float) -> tuple[tuple[float, float, float], ...]:
    c, s = float(np.cos(yaw)), float(np.sin(yaw))
    return ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))


def lying_matrix(yaw: float) -> tuple[tuple[float, float, float], ...]:
    """Local z axis laid horizontally (along world x rotated by yaw): a cylinder on its side."""
    c, s = float(np.cos(yaw)), float(np.sin(yaw))
    # columns: local x -> world up, local y -> horizontal (right-handed), local z -> (cos yaw, sin yaw, 0)
    return ((0.0, s, c), (0.0, -c, s), (1.0, 0.0, 0.0))


def contact_distance(a: SceneObject, b: SceneObject, spacing: float = 0.015) -> float:
    """3D gap between two object surfaces (0 when touching, negative when interpenetrating).

    Exact signed distance of each shape evaluated on dense surface samples of the other;
    the sampling error is at most about `spacing`.
    """
    d_ab = float(b.signed_distance(a.surface(spacing)).min())
    d_ba = float(a.signed_distance(b.surface(spacing)).min())
    return min(d_ab, d_ba)


@dataclass(frozen=True)
class Camera:
    name: str  # "cam0"
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    width: int
    height: int
    focal: float  # pixels

    def basis(self) -> np.ndarray:
        """Rows: right, down, forward (camera x, y, z) in world coordinates."""
        return self._basis

    @cached_property
    def _basis(self) -> np.ndarray:
        f = np.array(self.target, dtype=np.float64) - np.array(self.position, dtype=np.float64)
        f /= np.linalg.norm(f)
        r = np.cross(f, np.array([0.0, 0.0, 1.0]))
        r /= np.linalg.norm(r)
        d = np.cross(f, r)
        return np.stack([r, d, f])

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        return cast("np.ndarray", (np.atleast_2d(pts) - np.array(self.position)) @ self.basis().T)

    def project(self, pts: np.ndarray) -> np.ndarray:
        """Pixel coordinates (x, y) of world points (continuous; pixel centres at +0.5)."""
        pc = self.to_camera(pts)
        z = np.maximum(pc[:, 2], 1e-6)
        return np.stack(
            [self.focal * pc[:, 0] / z + self.width / 2, self.focal * pc[:, 1] / z + self.height / 2], axis=1
        )

    def rays(self, xs: np.ndarray, ys: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        """Unit world directions through pixel centres (integer pixel indices, may lie off-image)."""
        b: np.ndarray = self.basis().astype(dtype)
        cx: np.ndarray = ((xs + 0.5 - self.width / 2) / self.focal).astype(dtype)
        cy: np.ndarray = ((ys + 0.5 - self.height / 2) / self.focal).astype(dtype)
        d = cx[..., None] * b[0] + cy[..., None] * b[1] + b[2]
        return cast("np.ndarray", d / np.sqrt(np.einsum("...i,...i->...", d, d))[..., None])


@dataclass(frozen=True)
class Scene:
    scene_id: str
    objects: tuple[SceneObject, ...]
    cameras: tuple[Camera, ...]
    light: tuple[float, float, float]  # unit direction towards the light
    ground: tuple[tuple[int, int, int], tuple[int, int, int]]  # two tile colours

    def obj(self, object_id: str) -> SceneObject:
        return next(o for o in self.objects if o.object_id == object_id)
