"""Faster R-CNN train loader with RPN targets made in the workers, and GluonCV's fixed-ratio mixup."""
import numpy as np
import pytest

from gluon_bof.data.pipelines import FixedRatioMixup
from gluon_bof.recipes.faster_rcnn.data import build_faster_rcnn_train_loader
from gluon_bof.data.shapes import ShapesDetection
from gluon_bof.model import get_model
from gluon_bof.model.rcnn import RPNTargetTransform


@pytest.fixture(scope="module")
def rpn_fn():
    net = get_model("faster_rcnn_resnet18_v1b_shapes", per_device_batch_size=2)
    net.initialize()
    return RPNTargetTransform.from_net(net), net


def test_batches_carry_padded_rpn_targets_and_keep_the_images(rpn_fn):
    fn, net = rpn_fn
    data = ShapesDetection(num_images=4, seed=1, min_size=96, max_size=160)
    kw = dict(batch_size=2, seed=5, short=96, max_size=128, mixup=True)
    plain = next(iter(build_faster_rcnn_train_loader(data, **kw).iter_epoch(0)))
    with_t = next(iter(build_faster_rcnn_train_loader(data, rpn_target_fn=fn, **kw).iter_epoch(0)))
    assert len(plain) == 2 and len(with_t) == 6
    np.testing.assert_array_equal(plain[0], with_t[0])  # same augmentation draws with or without targets
    np.testing.assert_array_equal(plain[1], with_t[1])
    images, labels, cls_t, box_t, mask_t, weight_t = with_t
    h, w = images.shape[2:]
    anchors = net.anchors_for_image(h, w)
    n = anchors.shape[0]
    assert cls_t.shape == (2, n) and box_t.shape == (2, n, 4) and mask_t.shape == (2, n, 4)
    assert weight_t.shape == (2, n)
    for b in range(2):
        pos = cls_t[b] == 1
        assert 0 < pos.sum() <= 128 and (cls_t[b] >= 0).sum() <= 256
        np.testing.assert_array_equal(mask_t[b][pos], 1.0)
        assert np.all(mask_t[b][~pos] == 0)
        # positives take a weight of one of the image's gt boxes; the rest weigh 1
        gt_w = set(np.round(labels[b][labels[b][:, 4] >= 0, 6], 6))
        assert set(np.round(weight_t[b][pos], 6)) <= gt_w
        assert np.all(weight_t[b][~pos] == 1.0)
        # boxes lie inside the padded input the targets were made for
        valid = labels[b][:, 4] >= 0
        assert np.all(labels[b][valid, 2] <= w) and np.all(labels[b][valid, 3] <= h)


def test_fixed_ratio_mixup_blends_half_and_half():
    data = ShapesDetection(num_images=3, seed=2, min_size=96, max_size=128)
    mixed = FixedRatioMixup(data, 0.5)
    img, label = mixed.sample(0, np.random.default_rng(0), enabled=True)
    n0 = len(data[0][1])
    assert label.shape[1] == 7 and len(label) > n0
    np.testing.assert_array_equal(label[:, 6], 0.5)
    with pytest.raises(ValueError, match="ratio"):
        FixedRatioMixup(data, 1.5)
