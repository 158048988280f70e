"""Anchor grid: hand-computed boxes, GluonCV parity, feature-size rule."""
import mxnet as mx
import numpy as np
import pytest

from gluon_bof.model.rcnn.anchors import (RPNAnchorGenerator, base_anchors, feature_size,
                                          generate_anchors)


def test_base_anchors_hand_computed():
    # stride 16: window centre 7.5. Ratio 1, scale 2 -> 32 x 32 box; ratio 0.5 -> w = round(sqrt(512)) = 23,
    # h = round(11.5) = 12 (numpy rounds half to even), scale 1 -> 23 x 12.
    got = base_anchors(16, 16, ratios=(0.5, 1), scales=(1, 2))
    expected = np.array([
        [7.5 - 11, 7.5 - 5.5, 7.5 + 11, 7.5 + 5.5],       # ratio 0.5, scale 1: 23 x 12
        [7.5 - 22.5, 7.5 - 11.5, 7.5 + 22.5, 7.5 + 11.5],  # ratio 0.5, scale 2: 46 x 24
        [0, 0, 15, 15],                                     # ratio 1, scale 1: 16 x 16
        [-8, -8, 23, 23],                                   # ratio 1, scale 2: 32 x 32
    ])
    np.testing.assert_allclose(got, expected)


def test_grid_order_is_row_major_then_anchor():
    a = generate_anchors(16, 16, (1,), (1, 2), alloc_size=(2, 3))
    assert a.shape == (1, 1, 2, 3, 8)
    flat = a.reshape(-1, 4)
    # position (row 1, col 2) is the 6th position; its first anchor is the 16x16 one shifted by (32, 16)
    np.testing.assert_allclose(flat[5 * 2], [32, 16, 47, 31])
    np.testing.assert_allclose(flat[5 * 2 + 1], [24, 8, 55, 39])


@pytest.mark.oracle
def test_anchor_generator_matches_gluoncv():
    from gluoncv.model_zoo.rcnn.rpn.anchor import RPNAnchorGenerator as GluonCVGen
    ours = RPNAnchorGenerator(16, 16, (0.5, 1, 2), (2, 4, 8, 16, 32), (32, 32))
    theirs = GluonCVGen(16, 16, (0.5, 1, 2), (2, 4, 8, 16, 32), (32, 32))
    ours.initialize()
    theirs.initialize()
    feat = mx.nd.zeros((1, 8, 9, 11))
    np.testing.assert_array_equal(ours(feat).asnumpy(), theirs(feat).asnumpy())
    np.testing.assert_array_equal(ours.anchors_for_feature(9, 11), ours(feat).asnumpy()[0])


def test_anchors_for_feature_rejects_too_large_map():
    gen = RPNAnchorGenerator(16, 16, (1,), (2,), (4, 4))
    gen.initialize()
    with pytest.raises(ValueError, match="alloc_size"):
        gen.anchors_for_feature(5, 4)


@pytest.mark.parametrize("size,expected", [(128, 8), (129, 9), (600, 38), (1000, 63), (15, 1)])
def test_feature_size_is_repeated_ceil_half(size, expected):
    assert feature_size(size) == expected


def test_feature_size_matches_resnet_backbone():
    from gluon_bof.model import get_model
    net = get_model("faster_rcnn_resnet18_v1b_shapes", classes=["a", "b"])
    net.initialize()
    for h, w in [(97, 130), (128, 161)]:
        feat = net.features(mx.nd.zeros((1, 3, h, w)))
        assert feat.shape[2:] == (feature_size(h), feature_size(w))
        assert net.anchors_for_image(h, w).shape == (feat.shape[2] * feat.shape[3] * 9, 4)
