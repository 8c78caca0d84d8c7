"""The renderer and the measured facts agree with independent geometry."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from cvbench.core.seeding import rng_for
from cvbench.imaging.masks import centroid
from cvbench.tasks.synthetic.facts import scene_facts
from cvbench.tasks.synthetic.layout import crossview_scene, look_at_camera
from cvbench.tasks.synthetic.questions import APART_MIN, CONTACT_EPS
from cvbench.tasks.synthetic.render import render_view
from cvbench.tasks.synthetic.scene import (
    Camera,
    Scene,
    SceneObject,
    lying_matrix,
    yaw_matrix,
)
from cvbench.tasks.synthetic.shapes import Shape, intersect, signed_distance

SHAPES = [
    Shape("box", (0.4, 0.25, 0.3)),
    Shape("cylinder", (0.3, 0.45)),
    Shape("sphere", (0.35,)),
    Shape("cone", (0.3, 0.4)),
]
LIGHT = (0.0, 0.0, 1.0)
GROUND = ((200, 200, 200), (180, 180, 180))


def _scene(objects: list[SceneObject], cams: list[Camera]) -> Scene:
    return Scene("test", tuple(objects), tuple(cams), LIGHT, GROUND)


def _brute_gap(a: SceneObject, b: SceneObject, spacing: float = 0.03) -> float:
    """Smallest distance between dense surface samples of two objects (no signed distances)."""
    pa, pb = a.surface(spacing), b.surface(spacing)
    best = np.inf
    for i in range(0, len(pa), 256):
        d = np.linalg.norm(pa[i : i + 256, None, :] - pb[None, :, :], axis=2)
        best = min(best, float(d.min()))
    return best


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.kind)
def test_ray_hits_lie_on_the_surface_and_misses_never_enter(shape: Shape) -> None:
    rng = np.random.default_rng(1)
    origins = rng.normal(size=(4000, 3))
    origins = 3.0 * origins / np.linalg.norm(origins, axis=1, keepdims=True)
    targets = rng.uniform(-0.5, 0.5, size=(4000, 3))
    dirs = targets - origins
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    hits = intersect(shape, origins, dirs)
    hit = np.isfinite(hits.t)
    assert 0.2 < hit.mean() < 0.98  # both outcomes are exercised
    assert np.abs(signed_distance(shape, hits.point[hit])).max() < 1e-6
    # the normal points out of the shape: a small step along it leaves the surface
    outside = signed_distance(shape, hits.point[hit] + 1e-4 * hits.normal[hit])
    assert (outside > 0).mean() > 0.999
    # a missed ray stays outside all along its path
    steps = np.linspace(0.0, 6.0, 400)
    along = origins[~hit][:, None, :] + dirs[~hit][:, None, :] * steps[None, :, None]
    assert signed_distance(shape, along.reshape(-1, 3)).min() > -1e-9


def test_an_occluded_object_shows_fewer_pixels_than_its_projection() -> None:
    front = SceneObject("o0", Shape("box", (0.4, 0.4, 0.5)), (0.0, -1.0, 0.5), yaw_matrix(0.0), "red")
    back = SceneObject("o1", Shape("sphere", (0.35,)), (0.6, 1.0, 0.35), yaw_matrix(0.0), "blue")
    cam = Camera("cam0", (0.0, -6.0, 1.2), (0.0, 0.0, 0.4), 320, 240, 300.0)
    scene = _scene([front, back], [cam])
    f = scene_facts(scene, with_gaps=False)
    sf, sb = f.seen[0]["o0"], f.seen[0]["o1"]
    assert sf.visible_px == sf.full_px > 0
    assert 0 < sb.visible_px < sb.full_px
    assert sb.occluder == "o0" and sb.occluder_share == 1.0
    view = f.views[0]
    for i in range(2):
        visible, full = view.ids == i, view.full_masks[i]
        assert not (visible & ~full).any()  # what is seen of an object lies inside its projection
    # removing the occluder reveals the whole projection
    alone = scene_facts(_scene([back], [cam]), with_gaps=False).seen[0]["o1"]
    assert alone.visible_px == alone.full_px == sb.full_px


def test_depth_buffer_keeps_the_nearest_surface() -> None:
    near = SceneObject("o0", Shape("cylinder", (0.3, 0.4)), (0.0, 0.0, 0.4), yaw_matrix(0.0), "green")
    far = SceneObject("o1", Shape("box", (0.6, 0.2, 0.6)), (0.0, 1.5, 0.6), yaw_matrix(0.0), "teal")
    cam = Camera("cam0", (0.0, -5.0, 0.8), (0.0, 0.0, 0.4), 200, 160, 220.0)
    view = render_view(_scene([near, far], [cam]), cam)
    both = view.full_masks[0] & view.full_masks[1]
    assert both.sum() > 100
    assert (view.ids[both] == 0).all()  # where both project, the nearer cylinder wins
    # and the depth there is the cylinder's: no farther than its far side
    assert (view.depth[both] < np.linalg.norm(np.array(cam.position) - near.c) + 0.31).all()


def _projected_x(cam: Camera, p: np.ndarray) -> float:
    """Image x of a world point, from the camera's position and target only."""
    fwd = np.array(cam.target) - np.array(cam.position)
    fwd /= np.linalg.norm(fwd)
    right = np.array([fwd[1], -fwd[0], 0.0]) / np.hypot(fwd[0], fwd[1])  # horizontal, to the viewer's right
    rel = p - np.array(cam.position)
    return cam.focal * float(rel @ right) / float(rel @ fwd) + cam.width / 2


@pytest.mark.parametrize("k", range(3))
def test_left_right_order_agrees_with_the_camera_geometry(k: int) -> None:
    scene = crossview_scene(f"s{k}", rng_for(3, "geometry-test", k), 320, 240)
    f = scene_facts(scene, with_gaps=False)
    checked = 0
    for cam_i, cam in enumerate(scene.cameras):
        view = f.views[cam_i]
        for a, b in combinations(scene.objects, 2):
            sa, sb = f.seen[cam_i][a.object_id], f.seen[cam_i][b.object_id]
            assert sa.centre_px[0] == pytest.approx(_projected_x(cam, a.c), abs=1e-6)
            dx = sb.centre_px[0] - sa.centre_px[0]
            if abs(dx) < 40 or sa.visible_fraction < 1 or sb.visible_fraction < 1:
                continue
            ca = centroid(view.ids == f.index_of(a.object_id))
            cb = centroid(view.ids == f.index_of(b.object_id))
            assert np.sign(cb[0] - ca[0]) == np.sign(dx)  # the rendered pixels sit in the same order
            checked += 1
    assert checked > 0


def test_scale_change_agrees_with_depth() -> None:
    ball = SceneObject("o0", Shape("sphere", (0.3,)), (0.0, 0.0, 0.3), yaw_matrix(0.0), "yellow")
    near = look_at_camera("cam0", 0.0, 3.0, 1.0, (0.0, 0.0, 0.3), 400, 300, 50.0)
    far = look_at_camera("cam1", 2.0, 6.0, 1.0, (0.0, 0.0, 0.3), 400, 300, 50.0)
    f = scene_facts(_scene([ball], [near, far]), with_gaps=False)
    s0, s1 = f.seen[0]["o0"], f.seen[1]["o0"]
    # a sphere's apparent (linear) size scales with the inverse of its distance
    assert s0.apparent_size / s1.apparent_size == pytest.approx(s1.depth / s0.depth, rel=0.03)


def test_stacked_and_touching_objects_are_in_contact_and_others_apart() -> None:
    base = SceneObject("o0", Shape("box", (0.4, 0.3, 0.25)), (0.0, 0.0, 0.25), yaw_matrix(0.4), "red")
    on_top = SceneObject("o1", Shape("sphere", (0.2,)), (0.05, 0.0, 0.7), yaw_matrix(0.0), "blue", support="o0")
    lying = SceneObject("o2", Shape("cylinder", (0.15, 0.4)), (1.5, 0.0, 0.15), lying_matrix(1.0), "grey")
    assert _brute_gap(base, on_top) < 0.03
    assert _brute_gap(base, lying) > 0.5


@pytest.mark.parametrize("k", range(4))
def test_generated_scene_contacts_match_brute_force_distances(k: int) -> None:
    scene = crossview_scene(f"s{k}", rng_for(8, "contact-test", k), 160, 120)
    f = scene_facts(scene)
    for a, b in combinations(scene.objects, 2):
        gap = f.gap(a.object_id, b.object_id)
        assert gap > -0.01, f"{a.object_id} and {b.object_id} interpenetrate"
        if a.support == b.object_id or b.support == a.object_id:
            assert gap <= CONTACT_EPS
        if gap <= CONTACT_EPS:
            assert _brute_gap(a, b) <= CONTACT_EPS + 0.03
        elif gap >= APART_MIN and gap < 0.6:
            assert _brute_gap(a, b) >= gap - 0.01
