import numpy as np
import pytest

from cvbench.core.types import Region
from cvbench.imaging import masks as M


def random_masks(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = rng.integers(1, 48, 2)
        yield rng.random((h, w)) < rng.random()


def test_rle_round_trip_compressed_and_uncompressed():
    for m in random_masks():
        assert (M.decode_rle(M.encode_rle(m)) == m).all()
        assert (M.decode_rle(M.encode_rle_uncompressed(m)) == m).all()


def test_compressed_counts_are_a_utf8_string():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    rle = M.encode_rle(m)
    assert isinstance(rle["counts"], str) and rle["size"] == [10, 12]
    assert sum(M.compressed_run_lengths(rle["counts"].encode())) == 120


@pytest.mark.parametrize("counts", ["zzzz", "", "00000"])
def test_corrupt_compressed_rle_is_an_error(counts):
    with pytest.raises(M.MaskError):
        M.decode_rle({"size": [20, 30], "counts": counts})


def test_uncompressed_rle_with_wrong_total_is_an_error():
    with pytest.raises(M.MaskError, match="sum"):
        M.decode_rle({"size": [4, 4], "counts": [3, 4]})


def test_bbox_fallback_is_rounded_clipped_and_inclusive():
    m = M.bbox_to_mask([1.4, 2.6, 4.5, 50], 10, 8)
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (1, 4, 3, 9)


def test_invalid_rle_falls_back_to_bbox_with_a_warning():
    region = Region("7", rle={"size": [10, 10], "counts": "zz"}, bbox_xyxy=(2, 2, 4, 4))
    out = M.decode_region(region, (10, 10))
    assert out.source == "bbox" and out.mask.sum() == 9 and "invalid RLE" in out.warnings[0]


def test_invalid_rle_without_bbox_is_an_error():
    with pytest.raises(M.MaskError, match="region 3"):
        M.decode_region(Region("3", rle={"size": [10, 10], "counts": "zz"}), (10, 10))


def test_mask_size_mismatch_is_resized_with_a_warning():
    m = np.zeros((10, 10), bool)
    m[:5] = True
    out = M.decode_region(Region("1", rle=M.encode_rle(m)), (20, 20))
    assert out.mask.shape == (20, 20) and out.mask[:10].all() and not out.mask[10:].any()
    assert "differs from image size" in out.warnings[0]


def test_polygons_drop_odd_and_short_and_union_overlaps():
    square = [0, 0, 9, 0, 9, 9, 0, 9]
    overlapping = [5, 5, 14, 5, 14, 14, 5, 14]
    m = M.polygons_to_mask([square, overlapping, [1, 2, 3], [1, 2, 3, 4]], 20, 20)
    # union, not the upstream sum-and-zero quirk: the overlap stays set
    assert m[7, 7] and m[2, 2] and m[12, 12]
    with pytest.raises(M.MaskError):
        M.polygons_to_mask([[1, 2, 3, 4, 5]], 10, 10)


def test_polygon_declared_size_mismatch_rescales_with_warning():
    region = Region("1", polygons=((0, 0, 9, 0, 9, 9, 0, 9),), declared_hw=(20, 20))
    out = M.decode_region(region, (40, 40))
    assert out.mask.shape == (40, 40) and "annotation size" in out.warnings[0]
    assert abs(M.area(out.mask) - 4 * M.area(M.polygons_to_mask([[0, 0, 9, 0, 9, 9, 0, 9]], 20, 20))) < 60


def test_geometry_helpers():
    m = np.zeros((30, 40), bool)
    m[10:20, 5:25] = True
    assert M.area(m) == 200
    assert M.bbox(m) == (5, 10, 24, 19)
    assert M.centroid(m) == (14.5, 14.5)
    (c,) = M.contours(m)
    assert all(m[y, x] for x, y in c)
    x, y = M.interior_point(m)
    assert m[y, x] and 12 <= y <= 17 and 12 <= x <= 17
    assert M.bbox(np.zeros((3, 3), bool)) is None and M.interior_point(np.zeros((3, 3), bool)) is None
