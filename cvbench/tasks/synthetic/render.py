"""Per-pixel ray casting of a scene into one camera, with a z-buffer.

Every object is intersected only over the pixel rectangle its bounding box projects to. The
rectangle may reach beyond the image (up to PAD_FRACTION of the image size on each side), so
that the full, unoccluded projection of a partly out-of-frame object is still measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from cvbench.tasks.synthetic.scene import Camera, Scene, SceneObject, colour_rgb
from cvbench.tasks.synthetic.shapes import intersect
from cvbench.tasks.synthetic.textures import decal_texture

PAD_FRACTION = 0.5
GROUND_ID = -1
SKY_ID = -2
TILE = 0.5  # ground tile size (world units)


@dataclass(frozen=True)
class RenderedView:
    camera: Camera
    image: np.ndarray  # H x W x 3 uint8 RGB
    depth: np.ndarray  # H x W float64: distance along the ray to the nearest surface (inf: sky)
    ids: np.ndarray  # H x W int32: index into scene.objects, GROUND_ID or SKY_ID
    full_masks: tuple[np.ndarray, ...]  # per object: H x W bool unoccluded projection (in frame)
    full_area_ext: tuple[int, ...]  # per object: unoccluded projection area incl. the out-of-frame part
    ext_clipped: tuple[bool, ...]  # per object: the projection reached past the padded canvas
    frame_rects: tuple[tuple[int, int, int, int], ...]  # per object: (x0, y0, x1, y1) in frame holding its projection

    def visible_mask(self, index: int) -> np.ndarray:
        return cast("np.ndarray", self.ids == index)


def render_view(scene: Scene, cam: Camera) -> RenderedView:
    h, w = cam.height, cam.width
    xs = np.arange(w, dtype=np.float64)[None, :]
    ys = np.arange(h, dtype=np.float64)[:, None]
    dirs = cam.rays(xs, ys, np.float64).reshape(
        -1, 3
    )  # float64 throughout: float32 rounding differs across numpy/BLAS builds and flips pixels
    origin = np.array(cam.position, dtype=np.float64)

    depth = np.full(h * w, np.inf)
    ids = np.full(h * w, SKY_ID, dtype=np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dirs[:, 2] < -1e-9, -origin[2] / dirs[:, 2], np.inf)
    on_ground = np.isfinite(t_ground)
    depth[on_ground] = t_ground[on_ground]
    ids[on_ground] = GROUND_ID

    normals = np.zeros((h * w, 3), dtype=np.float64)
    albedo = np.zeros((h * w, 3), dtype=np.float64)
    rects: list[tuple[int, int, int, int]] = []
    full_masks: list[np.ndarray] = []
    areas: list[int] = []
    clipped: list[bool] = []
    pad_x, pad_y = int(w * PAD_FRACTION), int(h * PAD_FRACTION)

    for index, obj in enumerate(scene.objects):
        x0, y0, x1, y1, was_clipped = _rect(cam, obj, pad_x, pad_y)
        full = np.zeros((h, w), dtype=bool)
        rects.append((min(max(x0, 0), w), min(max(y0, 0), h), max(min(x1, w), 0), max(min(y1, h), 0)))
        if x1 <= x0 or y1 <= y0:
            full_masks.append(full)
            areas.append(0)
            clipped.append(was_clipped)
            continue
        ry, rx = np.mgrid[y0:y1, x0:x1]
        rdirs = cam.rays(rx, ry).reshape(-1, 3)
        R, c = obj.R, obj.c
        hits = intersect(obj.shape, (origin - c) @ R, rdirs @ R)
        hit = np.isfinite(hits.t)
        areas.append(int(hit.sum()))
        clipped.append(was_clipped)
        in_frame = (rx.ravel() >= 0) & (rx.ravel() < w) & (ry.ravel() >= 0) & (ry.ravel() < h)
        sel = hit & in_frame
        flat = ry.ravel()[sel] * w + rx.ravel()[sel]
        full.ravel()[flat] = True
        full_masks.append(full)
        closer = hits.t[sel] < depth[flat]
        flat_c = flat[closer]
        depth[flat_c] = hits.t[sel][closer]
        ids[flat_c] = index
        normals[flat_c] = hits.normal[sel][closer] @ R.T
        albedo[flat_c] = _object_albedo(obj, hits.point[sel][closer], hits.normal[sel][closer])

    light = np.array(scene.light, dtype=np.float64)
    image = np.empty((h * w, 3), dtype=np.float64)
    obj_px = ids >= 0
    image[obj_px] = albedo[obj_px] * _shade_objects(normals[obj_px], dirs[obj_px], light)[:, None]

    ground_px = ids == GROUND_ID
    gdirs = dirs[ground_px]
    gpts = (origin + gdirs * depth[ground_px][:, None]).astype(np.float64)
    gcol = _ground_colour(scene, gpts)
    ground_index = np.full(h * w, -1, dtype=np.int64)
    ground_index[ground_px] = np.arange(int(ground_px.sum()))
    lit = 1.0 - 0.45 * _in_shadow(scene, cam, gpts, ground_index.reshape(h, w), light)
    fog = np.clip((depth[ground_px] - 9.0) / 25.0, 0.0, 0.7).astype(np.float64)
    gcol *= lit[:, None]
    far = fog > 0
    gcol[far] = gcol[far] * (1 - fog[far, None]) + _sky_colour(gdirs[far]) * fog[far, None]
    image[ground_px] = gcol
    sky_px = ids == SKY_ID
    image[sky_px] = _sky_colour(dirs[sky_px])

    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(h, w, 3)
    return RenderedView(
        cam, out, depth.reshape(h, w), ids.reshape(h, w), tuple(full_masks), tuple(areas), tuple(clipped), tuple(rects)
    )


def _rect(cam: Camera, obj: SceneObject, pad_x: int, pad_y: int) -> tuple[int, int, int, int, bool]:
    """Pixel rectangle [x0, x1) x [y0, y1) covering the object's projection, on the padded canvas."""
    corners = obj.world_corners()
    pc = cam.to_camera(corners)
    lo_x, lo_y, hi_x, hi_y = -pad_x, -pad_y, cam.width + pad_x, cam.height + pad_y
    if (pc[:, 2] <= 0.05).any():  # straddles the camera plane: test the whole padded canvas
        return lo_x, lo_y, hi_x, hi_y, True
    px = cam.project(corners)
    x0, y0 = int(np.floor(px[:, 0].min())) - 1, int(np.floor(px[:, 1].min())) - 1
    x1, y1 = int(np.ceil(px[:, 0].max())) + 1, int(np.ceil(px[:, 1].max())) + 1
    was_clipped = x0 < lo_x or y0 < lo_y or x1 > hi_x or y1 > hi_y
    return max(x0, lo_x), max(y0, lo_y), min(x1, hi_x), min(y1, hi_y), was_clipped


def _object_albedo(obj: SceneObject, local_pts: np.ndarray, local_n: np.ndarray) -> np.ndarray:
    base = np.array(colour_rgb(obj.colour), dtype=np.float64) / 255.0
    col = np.repeat(base[None, :], local_pts.shape[0], axis=0)
    if obj.decal is None or local_pts.shape[0] == 0:
        return col
    ink = _decal_coverage(obj, local_pts, local_n)
    lum = float(base @ np.array([0.299, 0.587, 0.114]))
    ink_colour = np.array([0.06, 0.06, 0.07]) if lum > 0.45 else np.array([0.97, 0.97, 0.95])
    return cast("np.ndarray", col * (1 - ink[:, None]) + ink_colour * ink[:, None])


def _decal_coverage(obj: SceneObject, p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Ink coverage at local surface points: the decal on each vertical side and the lid of a
    box, or three times around a cylinder and on its lid; nothing elsewhere."""
    tex = decal_texture(obj.decal.kind, obj.decal.value)  # type: ignore[union-attr]
    th, tw = tex.shape
    aspect = tw / th
    u = np.full(p.shape[0], -1.0)
    v = np.full(p.shape[0], -1.0)
    if obj.shape.kind == "box":
        hx, hy, hz = obj.shape.dims
        for axis, sign in ((0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)):
            on = np.abs(n[:, axis] - sign) < 1e-6
            # the horizontal axis that runs left to right for a viewer facing this side
            right = np.array([0.0, sign, 0.0]) if axis == 0 else np.array([-sign, 0.0, 0.0])
            face_w = 2 * (hy if axis == 0 else hx)
            lw = min(0.8 * face_w, 0.75 * 2 * hz * aspect)
            lh = lw / aspect
            u[on] = (p[on] @ right) / lw + 0.5
            v[on] = -p[on, 2] / lh + 0.5
        top = np.abs(n[:, 2] - 1.0) < 1e-6  # also on the lid, for cameras looking down
        lw = min(0.8 * 2 * hx, 0.8 * 2 * hy * aspect)
        lh = lw / aspect
        u[top] = p[top, 0] / lw + 0.5
        v[top] = -p[top, 1] / lh + 0.5
    elif obj.shape.kind == "cylinder":
        r, hh = obj.shape.dims
        side = np.abs(n[:, 2]) < 1e-6
        theta = np.arctan2(p[:, 1], p[:, 0])
        arc = 2 * np.pi * r / 3
        lw = min(0.8 * arc, 0.75 * 2 * hh * aspect)
        lh = lw / aspect
        rel = (theta + np.pi / 3) % (2 * np.pi / 3) - np.pi / 3  # angle from the nearest of 3 label centres
        u[side] = rel[side] * r / lw + 0.5
        v[side] = -p[side, 2] / lh + 0.5
        lid = np.abs(n[:, 2] - 1.0) < 1e-6
        lw = 2 * 0.9 * r / np.sqrt(1 + 1 / aspect**2)  # the label's corners stay inside the lid
        lh = lw / aspect
        u[lid] = p[lid, 0] / lw + 0.5
        v[lid] = -p[lid, 1] / lh + 0.5
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    out = np.zeros(p.shape[0])
    out[inside] = tex[(v[inside] * th).astype(int), (u[inside] * tw).astype(int)]
    return out


def _shade_objects(normals: np.ndarray, dirs: np.ndarray, light: np.ndarray) -> np.ndarray:
    diffuse = np.clip(normals @ light, 0.0, None)
    sky_fill = 0.1 * (normals[:, 2] + 1.0) / 2.0
    half = light - dirs
    half /= np.maximum(np.sqrt(np.einsum("ij,ij->i", half, half)), 1e-9)[:, None]
    spec = 0.18 * np.clip(np.einsum("ij,ij->i", normals, half), 0.0, None) ** 24
    return cast("np.ndarray", 0.46 + 0.5 * diffuse + sky_fill + spec)


def _ground_colour(scene: Scene, pts: np.ndarray) -> np.ndarray:
    a = np.array(scene.ground[0], dtype=np.float64) / 255.0
    b = np.array(scene.ground[1], dtype=np.float64) / 255.0
    gx = pts[:, 0] / TILE
    gy = pts[:, 1] / TILE
    fx, fy = np.floor(gx), np.floor(gy)
    checker = ((fx + fy) % 2 == 0)[:, None]
    col = np.where(checker, a, b)
    ex = np.minimum(gx - fx, fx + 1 - gx)  # distance to the nearest tile edge, in tiles
    ey = np.minimum(gy - fy, fy + 1 - gy)
    grout = (np.minimum(ex, ey) < 0.025)[:, None]
    return np.where(grout, col * 0.8, col)


def _in_shadow(scene: Scene, cam: Camera, pts: np.ndarray, ground_index: np.ndarray, light: np.ndarray) -> np.ndarray:
    """1.0 where a ground point's path to the (directional) light is blocked by an object.

    `ground_index` maps each pixel to its row in `pts` (-1: not ground). An object's shadow lies
    inside the convex hull of its bounding-box corners cast onto the ground, so only ground
    pixels inside that hull's image rectangle are tested.
    """
    shadow = np.zeros(pts.shape[0], dtype=np.float64)
    for obj in scene.objects:
        corners = obj.world_corners()
        foot = corners - (corners[:, 2:3] / light[2]) * light  # corners cast onto the ground (z = 0)
        if (cam.to_camera(foot)[:, 2] <= 0.05).any():
            cand = np.flatnonzero(shadow == 0)
        else:
            fp = cam.project(foot)
            x0, y0 = (max(0, int(v)) for v in np.floor(fp.min(axis=0)) - 1)
            x1, y1 = np.ceil(fp.max(axis=0)) + 2
            x1, y1 = min(cam.width, int(x1)), min(cam.height, int(y1))
            if x1 <= x0 or y1 <= y0:
                continue
            cand = ground_index[y0:y1, x0:x1].ravel()
            cand = cand[cand >= 0]
            cand = cand[shadow[cand] == 0]
        if cand.size == 0:
            continue
        R, c = obj.R, obj.c
        local_o = (pts[cand].astype(np.float64) + light * 1e-4 - c) @ R
        local_d = np.repeat((light @ R)[None, :], local_o.shape[0], axis=0)
        hits = intersect(obj.shape, local_o, local_d)
        shadow[cand[np.isfinite(hits.t)]] = 1.0
    return shadow


def _sky_colour(dirs: np.ndarray) -> np.ndarray:
    up = np.clip(dirs[:, 2], 0.0, 1.0)[:, None]
    horizon = np.array([0.86, 0.89, 0.93], dtype=np.float64)
    zenith = np.array([0.55, 0.68, 0.86], dtype=np.float64)
    return cast("np.ndarray", horizon * (1 - up) + zenith * up)
