"""Geometric facts measured from the rendered views and the 3D scene; every answer derives from these."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from cvbench.tasks.synthetic.render import RenderedView, render_view
from cvbench.tasks.synthetic.scene import Scene, SceneObject, contact_distance


@dataclass(frozen=True)
class ObjectInView:
    """One object as seen by one camera."""

    object_id: str
    visible_px: int  # pixels where this object is the nearest surface
    full_px: int  # pixels of its unoccluded projection, including any part outside the frame
    in_frame_px: int  # pixels of its unoccluded projection inside the frame
    measurable: bool  # the full projection was measured completely (not clipped by the padded canvas)
    depth: float  # camera-space z of the object's centre
    centre_px: tuple[float, float]  # projection of the object's centre
    occluder: str | None  # the object covering most of its hidden in-frame pixels
    occluder_share: float  # share of the hidden in-frame pixels that the occluder covers

    @property
    def visible_fraction(self) -> float:
        return self.visible_px / self.full_px if self.full_px else 0.0

    @property
    def apparent_size(self) -> float:
        """Linear apparent size: square root of the unoccluded projected area (pixels)."""
        return float(np.sqrt(self.full_px))

    @property
    def occluded_px(self) -> int:
        return self.in_frame_px - self.visible_px

    def as_dict(self) -> dict[str, object]:
        return {
            "visible_px": self.visible_px,
            "full_px": self.full_px,
            "in_frame_px": self.in_frame_px,
            "visible_fraction": round(self.visible_fraction, 4),
            "depth": round(self.depth, 4),
            "centre_px": [round(self.centre_px[0], 2), round(self.centre_px[1], 2)],
            "apparent_size": round(self.apparent_size, 3),
            "measurable": self.measurable,
            "occluder": self.occluder,
            "occluder_share": round(self.occluder_share, 4),
        }


@dataclass(frozen=True)
class SceneFacts:
    scene: Scene
    views: tuple[RenderedView, ...]
    seen: tuple[dict[str, ObjectInView], ...]  # per camera: object id -> facts
    gaps: dict[tuple[str, str], float]  # sorted id pair -> 3D surface gap (0 = touching)
    # derived per-view region statistics, filled on first use by the question generators
    cache: dict[tuple[object, ...], object] = field(default_factory=dict, compare=False, repr=False)

    def gap(self, a: str, b: str) -> float:
        return self.gaps[(a, b) if a < b else (b, a)]

    def centre_distance(self, a: str, b: str) -> float:
        return float(np.linalg.norm(self.scene.obj(a).c - self.scene.obj(b).c))

    def index_of(self, object_id: str) -> int:
        return next(i for i, o in enumerate(self.scene.objects) if o.object_id == object_id)


def measure_view(scene: Scene, view: RenderedView) -> dict[str, ObjectInView]:
    cam = view.camera
    out: dict[str, ObjectInView] = {}
    for index, obj in enumerate(scene.objects):
        x0, y0, x1, y1 = view.frame_rects[index]  # everything about the object lies in this crop
        full = view.full_masks[index][y0:y1, x0:x1]
        crop_ids = view.ids[y0:y1, x0:x1]
        visible = crop_ids == index
        hidden = full & ~visible
        occluder, share = None, 0.0
        if hidden.any():
            covering = crop_ids[hidden]
            covering = covering[covering >= 0]
            if covering.size:
                counts = np.bincount(covering, minlength=len(scene.objects))
                best = int(counts.argmax())
                occluder, share = scene.objects[best].object_id, float(counts[best] / hidden.sum())
        pc = cam.to_camera(obj.c)[0]
        cx, cy = cam.project(obj.c)[0]
        out[obj.object_id] = ObjectInView(
            obj.object_id,
            int(visible.sum()),
            view.full_area_ext[index],
            int(full.sum()),
            not view.ext_clipped[index],
            float(pc[2]),
            (float(cx), float(cy)),
            occluder,
            share,
        )
    return out


def scene_facts(scene: Scene, with_gaps: bool = True) -> SceneFacts:
    views = tuple(render_view(scene, cam) for cam in scene.cameras)
    seen = tuple(measure_view(scene, v) for v in views)
    gaps: dict[tuple[str, str], float] = {}
    if with_gaps:
        for a, b in combinations(scene.objects, 2):
            key = (a.object_id, b.object_id) if a.object_id < b.object_id else (b.object_id, a.object_id)
            gaps[key] = _gap(a, b)
    return SceneFacts(scene, views, seen, gaps)


GAP_EXACT_BELOW = 0.5


def _gap(a: SceneObject, b: SceneObject) -> float:
    """The surface gap; pairs whose bounding spheres are over GAP_EXACT_BELOW apart get that
    bound instead (a lower bound, far beyond any contact threshold, with no dense sampling)."""
    ra = float(np.linalg.norm(a.shape.half_extents()))
    rb = float(np.linalg.norm(b.shape.half_extents()))
    bound = float(np.linalg.norm(a.c - b.c)) - ra - rb
    if bound > GAP_EXACT_BELOW:
        return bound
    return contact_distance(a, b)
