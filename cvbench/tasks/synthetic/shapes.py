"""Analytic convex shapes in their canonical frame: ray intersection, signed distance, surface samples.

Canonical frames are centred at the origin with the local z axis as the shape's axis:
box [-hx, hx] x [-hy, hy] x [-hz, hz]; cylinder of radius r over z in [-hh, hh]; sphere of
radius r; cone with base radius r at z = -hh and apex at z = +hh. All functions are pure and
vectorised over rays or points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

SHAPE_KINDS: tuple[str, ...] = ("box", "cylinder", "sphere", "cone")
_EPS = 1e-9


@dataclass(frozen=True)
class Shape:
    kind: str  # one of SHAPE_KINDS
    dims: tuple[float, ...]  # box (hx, hy, hz); cylinder/cone (r, hh); sphere (r,)

    def __post_init__(self) -> None:
        expected = {"box": 3, "cylinder": 2, "sphere": 1, "cone": 2}
        if self.kind not in expected:
            raise ValueError(f"unknown shape kind {self.kind!r}; expected one of {SHAPE_KINDS}")
        if len(self.dims) != expected[self.kind] or any(d <= 0 for d in self.dims):
            raise ValueError(f"{self.kind} needs {expected[self.kind]} positive dims, got {self.dims}")

    def half_extents(self) -> np.ndarray:
        """Half extents of the canonical axis-aligned bounding box."""
        if self.kind == "box":
            return np.array(self.dims, dtype=np.float64)
        if self.kind == "sphere":
            return np.array([self.dims[0]] * 3, dtype=np.float64)
        r, hh = self.dims
        return np.array([r, r, hh], dtype=np.float64)

    def volume(self) -> float:
        if self.kind == "box":
            hx, hy, hz = self.dims
            return 8.0 * hx * hy * hz
        if self.kind == "sphere":
            return 4.0 / 3.0 * np.pi * self.dims[0] ** 3
        r, hh = self.dims
        full = np.pi * r * r * 2.0 * hh
        return full if self.kind == "cylinder" else full / 3.0


@dataclass(frozen=True)
class Hits:
    """Nearest positive intersection per ray: t (inf = miss), local normal and local point."""

    t: np.ndarray  # (M,)
    normal: np.ndarray  # (M, 3), unit, meaningful where t is finite
    point: np.ndarray  # (M, 3)


def intersect(shape: Shape, origin: np.ndarray, dirs: np.ndarray) -> Hits:
    """Intersect rays (one shared `origin` (3,) or per-ray origins (M, 3)) with the shape."""
    o = np.broadcast_to(np.asarray(origin, dtype=np.float64), dirs.shape)
    if shape.kind == "box":
        t, n = _box(np.array(shape.dims), o, dirs)
    elif shape.kind == "sphere":
        t, n = _sphere(shape.dims[0], o, dirs)
    elif shape.kind == "cylinder":
        t, n = _cylinder(shape.dims[0], shape.dims[1], o, dirs)
    else:
        t, n = _cone(shape.dims[0], shape.dims[1], o, dirs)
    point = o + dirs * np.where(np.isfinite(t), t, 0.0)[:, None]
    return Hits(t, n, point)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    b = np.where(np.abs(b) < _EPS, np.where(b < 0, -_EPS, _EPS), b)
    return cast("np.ndarray", a / b)


def _box(h: np.ndarray, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t1 = _safe_div(-h - o, d)
    t2 = _safe_div(h - o, d)
    tmin = np.minimum(t1, t2)
    tmax = np.maximum(t1, t2)
    tnear = tmin.max(axis=1)
    tfar = tmax.min(axis=1)
    hit = (tnear <= tfar) & (tnear > _EPS)
    axis = tmin.argmax(axis=1)
    n = np.zeros_like(d)
    rows = np.arange(d.shape[0])
    n[rows, axis] = -np.sign(d[rows, axis])
    return np.where(hit, tnear, np.inf), n


def _sphere(r: float, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.einsum("ij,ij->i", d, d)
    b = 2.0 * np.einsum("ij,ij->i", o, d)
    c = np.einsum("ij,ij->i", o, o) - r * r
    disc = b * b - 4 * a * c
    ok = disc >= 0
    sq = np.sqrt(np.where(ok, disc, 0.0))
    t0 = (-b - sq) / (2 * a)
    t = np.where(ok & (t0 > _EPS), t0, np.inf)
    p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    return t, p / r


def _quadratic_roots(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both real roots (nan where none); handles a ~ 0 as a linear equation."""
    disc = b * b - 4 * a * c
    small_a = np.abs(a) < 1e-12
    sq = np.sqrt(np.where(disc >= 0, disc, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = (-b - sq) / (2 * a)
        r2 = (-b + sq) / (2 * a)
        lin = -c / np.where(np.abs(b) < 1e-12, np.nan, b)
    r1 = np.where(small_a, lin, r1)
    r2 = np.where(small_a, np.nan, r2)
    return r1, r2


def _nearest(candidates: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    stack = np.stack([np.where(np.isfinite(c) & (c > _EPS), c, np.inf) for c in candidates], axis=1)
    which = stack.argmin(axis=1)
    return stack[np.arange(stack.shape[0]), which], which


def _cylinder(r: float, hh: float, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2 * (o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1])
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - r * r
    s1, s2 = _quadratic_roots(a, b, c)
    side = []
    for s in (s1, s2):
        z = o[:, 2] + s * d[:, 2]
        side.append(np.where(np.abs(z) <= hh, s, np.nan))
    caps = []
    for zc in (-hh, hh):
        s = _safe_div(zc - o[:, 2], d[:, 2])
        x = o[:, 0] + s * d[:, 0]
        y = o[:, 1] + s * d[:, 1]
        caps.append(np.where(x * x + y * y <= r * r, s, np.nan))
    t, which = _nearest(side + caps)
    p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    n = np.zeros_like(d)
    is_side = which < 2
    n[is_side, 0] = p[is_side, 0] / r
    n[is_side, 1] = p[is_side, 1] / r
    n[which == 2, 2] = -1.0
    n[which == 3, 2] = 1.0
    return t, n


def _cone(r: float, hh: float, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k2 = (r / (2 * hh)) ** 2
    w0 = hh - o[:, 2]  # distance below the apex at t = 0
    a = d[:, 0] ** 2 + d[:, 1] ** 2 - k2 * d[:, 2] ** 2
    b = 2 * (o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]) + 2 * k2 * w0 * d[:, 2]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - k2 * w0 * w0
    s1, s2 = _quadratic_roots(a, b, c)
    side = []
    for s in (s1, s2):
        z = o[:, 2] + s * d[:, 2]
        side.append(np.where((z >= -hh) & (z <= hh), s, np.nan))
    s = _safe_div(-hh - o[:, 2], d[:, 2])
    x = o[:, 0] + s * d[:, 0]
    y = o[:, 1] + s * d[:, 1]
    base = np.where(x * x + y * y <= r * r, s, np.nan)
    t, which = _nearest(side + [base])
    p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    n = np.stack([p[:, 0], p[:, 1], k2 * (hh - p[:, 2])], axis=1)
    n[which == 2] = (0.0, 0.0, -1.0)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), _EPS)
    return t, n


# ------------------------------------------------------------------------------ distances


def signed_distance(shape: Shape, p: np.ndarray) -> np.ndarray:
    """Exact signed distance from local points (M, 3) to the shape surface (negative inside)."""
    if shape.kind == "box":
        return _box_sdf(p, np.array(shape.dims))
    if shape.kind == "sphere":
        return cast("np.ndarray", np.linalg.norm(p, axis=1) - shape.dims[0])
    r, hh = shape.dims
    q = np.stack([np.hypot(p[:, 0], p[:, 1]), p[:, 2]], axis=1)  # (radius, height) profile plane
    if shape.kind == "cylinder":
        return _box_sdf(q, np.array([r, hh]))
    # the full (mirrored) profile, so that the axis r = 0 is not mistaken for a surface
    return _polygon_sdf(q, np.array([[-r, -hh], [r, -hh], [0.0, hh]]))


def _box_sdf(p: np.ndarray, h: np.ndarray) -> np.ndarray:
    q = np.abs(p) - h
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return cast("np.ndarray", outside + inside)


def _polygon_sdf(p: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Signed distance to a convex 2D polygon (counter-clockwise vertices)."""
    best = np.full(p.shape[0], np.inf)
    inside = np.ones(p.shape[0], dtype=bool)
    for i in range(len(verts)):
        a, b = verts[i], verts[(i + 1) % len(verts)]
        e = b - a
        w = p - a
        s = np.clip((w @ e) / (e @ e), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(w - s[:, None] * e, axis=1))
        inside &= (e[0] * w[:, 1] - e[1] * w[:, 0]) >= 0
    return np.where(inside, -best, best)


def surface_points(shape: Shape, spacing: float) -> np.ndarray:
    """Points on the surface (local frame), about `spacing` apart, including every edge."""
    if shape.kind == "box":
        return _box_surface(np.array(shape.dims), spacing)
    if shape.kind == "sphere":
        r = shape.dims[0]
        n = max(64, int(4 * np.pi * r * r / spacing**2))
        i = np.arange(n) + 0.5
        phi = np.arccos(1 - 2 * i / n)
        theta = np.pi * (1 + 5**0.5) * i
        return r * np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)
    r, hh = shape.dims
    n_ang = max(24, int(2 * np.pi * r / spacing))
    ang = np.linspace(0, 2 * np.pi, n_ang, endpoint=False)
    n_z = max(2, int(2 * hh / spacing) + 1)
    zs = np.linspace(-hh, hh, n_z)
    radii = np.full_like(zs, r) if shape.kind == "cylinder" else r * (hh - zs) / (2 * hh)
    rr, aa = np.meshgrid(radii, ang, indexing="ij")
    zz = np.repeat(zs[:, None], n_ang, axis=1)
    side = np.stack([rr * np.cos(aa), rr * np.sin(aa), zz], axis=-1).reshape(-1, 3)
    disks = [_disk(r, -hh, spacing)] + ([_disk(r, hh, spacing)] if shape.kind == "cylinder" else [])
    return np.concatenate([side] + disks)


def _disk(r: float, z: float, spacing: float) -> np.ndarray:
    g = np.arange(-r, r + spacing / 2, spacing)
    xx, yy = np.meshgrid(g, g)
    keep = xx**2 + yy**2 <= r * r
    pts = np.stack([xx[keep], yy[keep], np.full(keep.sum(), z)], axis=1)
    return pts


def _box_surface(h: np.ndarray, spacing: float) -> np.ndarray:
    faces = []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        gu = np.linspace(-h[u], h[u], max(2, int(2 * h[u] / spacing) + 1))
        gv = np.linspace(-h[v], h[v], max(2, int(2 * h[v] / spacing) + 1))
        uu, vv = np.meshgrid(gu, gv)
        for sign in (-1.0, 1.0):
            pts = np.zeros((uu.size, 3))
            pts[:, axis] = sign * h[axis]
            pts[:, u] = uu.ravel()
            pts[:, v] = vv.ravel()
            faces.append(pts)
    return np.concatenate(faces)
