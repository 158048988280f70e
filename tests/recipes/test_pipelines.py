"""The recipes' data paths: YOLOv3 / Faster R-CNN loaders wired end to end."""
import numpy as np

from gluon_bof.recipes.faster_rcnn.data import build_faster_rcnn_train_loader, build_faster_rcnn_val_loader
from gluon_bof.recipes.yolo3.data import PAPER_RANDOM_SHAPES as RANDOM_SHAPES
from gluon_bof.recipes.yolo3.data import build_yolo3_train_loader, build_yolo3_val_loader
from gluon_bof.data.transforms.presets import YOLO3TrainTransform

ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
STRIDES = [8, 16, 32]


class _Toy:
    """Random images of varying size, 1-3 boxes each."""

    def __init__(self, n=12, seed=0):
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n):
            h, w = int(rng.integers(40, 70)), int(rng.integers(40, 70))
            img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            k = 1 + i % 3
            x0, y0 = rng.integers(0, 15, size=(2, k))
            label = np.stack([x0, y0, x0 + 20, y0 + 20, rng.integers(0, 3, k), np.zeros(k)], 1).astype(np.float32)
            self.items.append((img, label))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _StandInTargets:
    """Shape-faithful stand-in for YOLOv3TargetGenerator: objectness[:N] holds the box weights."""

    def __init__(self, num_classes):
        self.k = num_classes

    def __call__(self, label, input_hw, has_weight=False):
        h, w = input_hw
        a = 3 * sum((h // s) * (w // s) for s in STRIDES)
        obj = np.zeros((a, 1), np.float32)
        obj[:len(label), 0] = label[:, -1] if has_weight else 1
        z2 = np.zeros((a, 2), np.float32)
        return obj, z2, z2, z2, np.zeros((a, self.k), np.float32)


def _yolo(workers, mixup=False, **kw):
    return build_yolo3_train_loader(_Toy(), 3, ANCHORS, STRIDES, batch_size=4, seed=11, num_workers=workers,
                                    data_shape=64, shapes=(64, 96), shape_interval=1, mixup=mixup,
                                    target_generator=_StandInTargets(3), **kw)


def test_yolo3_train_batches_layout_and_worker_independence():
    ref = list(_yolo(0).iter_epoch(0))
    with _yolo(2) as par:
        got = list(par.iter_epoch(0))
    assert len(ref) == len(got) == 3
    sizes = set()
    for b, g in zip(ref, got):
        img, obj, ctr, scl, wts, cls, gt = b
        n, _, h, w = img.shape
        sizes.add(h)
        a = 3 * (h * w // 64 + h * w // 256 + h * w // 1024)
        assert img.shape == (4, 3, h, w) and img.dtype == np.float32 and h == w and h in (64, 96)
        assert obj.shape == (4, a, 1) and ctr.shape == scl.shape == wts.shape == (4, a, 2)
        assert cls.shape == (4, a, 3) and gt.shape[0] == 4 and gt.shape[2] == 4
        assert np.all((gt == -1).all(-1) | (gt >= 0).all(-1))  # padding rows are all -1
        assert np.all(gt[gt >= 0] <= h)
        for u, v in zip(b, g):
            np.testing.assert_array_equal(u, v)
    assert sizes == {64, 96}


def test_yolo3_set_mixup_reaches_workers():
    with _yolo(2, mixup=True) as loader:
        on = list(loader.iter_epoch(0))
        loader.set_mixup(False)
        assert loader.mixup is False
        off = list(loader.iter_epoch(0))
    w_on = np.concatenate([b[1][b[1] > 0] for b in on])
    w_off = np.concatenate([b[1][b[1] > 0] for b in off])
    assert np.all(w_off == 1.0)
    assert np.mean(w_on < 1.0) > 0.8
    # the mixup switch does not reshuffle the order or the shapes
    assert [b[0].shape for b in on] == [b[0].shape for b in off]


def _recording_transform(img, label, rng, shape):
    """Stand-in transform whose image carries its first augmentation draw."""
    out = np.zeros((3,) + tuple(shape), np.float32)
    out[0, 0, 0] = rng.random()
    return out, label


def test_mixup_switch_leaves_augmentation_draws_unchanged():
    def draws(mixup):
        loader = build_yolo3_train_loader(_Toy(), 3, ANCHORS, STRIDES, batch_size=4, seed=2, mixup=mixup,
                                          shapes=(64,), transform=_recording_transform,
                                          target_generator=_StandInTargets(3))
        return np.concatenate([b[0][:, 0, 0, 0] for b in loader.iter_epoch(1)])
    on, off = draws(True), draws(False)
    np.testing.assert_array_equal(on, off)
    assert len(np.unique(on)) == len(on)


def test_yolo3_default_shapes_are_paper_shapes():
    assert RANDOM_SHAPES == (320, 352, 384, 416, 448, 480, 512, 544, 576, 608)
    loader = build_yolo3_train_loader(_Toy(), 3, ANCHORS, STRIDES, batch_size=1, seed=0,
                                      target_generator=_StandInTargets(3))
    assert isinstance(loader.sample_fn.transform, YOLO3TrainTransform)
    assert {loader.batch_shape(0, b) for b in range(0, 400, 10)} == {(s, s) for s in RANDOM_SHAPES}
    assert loader.batch_shape(0, 3) == loader.batch_shape(0, 9) and loader.shape_interval == 10
    fixed = build_yolo3_train_loader(_Toy(), 3, ANCHORS, STRIDES, batch_size=1, seed=0, random_shape=False,
                                     data_shape=96, target_generator=_StandInTargets(3))
    assert next(iter(fixed.iter_epoch(0)))[0].shape == (1, 3, 96, 96)


def test_yolo3_val_loader_order_and_padding():
    ds = _Toy(5)
    batches = list(build_yolo3_val_loader(ds, data_shape=(64, 96), batch_size=2).iter_epoch(0))
    assert [b[0].shape for b in batches] == [(2, 3, 64, 96), (2, 3, 64, 96), (1, 3, 64, 96)]
    labels = batches[0][1]
    assert labels.shape == (2, 2, 6)  # items 0 and 1 have 1 and 2 boxes
    np.testing.assert_array_equal(labels[0, 1], -1)
    h, w = ds[0][0].shape[:2]
    np.testing.assert_allclose(labels[0, 0, :4], ds[0][1][0, :4] * [96 / w, 64 / h, 96 / w, 64 / h], rtol=1e-5)


def test_faster_rcnn_loaders():
    ds = _Toy(6)
    train = build_faster_rcnn_train_loader(ds, batch_size=2, seed=0, short=50, max_size=80, mixup=True)
    for img, label in train.iter_epoch(0):
        assert img.ndim == 4 and img.shape[:2] == (2, 3) and min(img.shape[2:]) >= 50
        assert label.shape[2] == 7 and np.any((label[..., 6] < 1) & (label[..., 6] > 0))
    val = build_faster_rcnn_val_loader(ds, short=50, max_size=80, batch_size=3)
    img, label, scale = next(iter(val.iter_epoch(0)))
    assert scale.shape == (3,) and label.shape[2] == 6
    for i in range(3):
        h = ds[i][0].shape[0]
        new_h = h / scale[i]
        assert abs(new_h - round(new_h)) < 1e-3 and img[i, :, int(round(new_h)):].sum() == 0


def test_yolo3_batch_equals_manual_composition_with_real_targets():
    from gluon_bof.data.mixup import MixupDetection
    from gluon_bof.data.pipelines import split_rng
    from gluon_bof.data.rng import sample_rng
    from gluon_bof.model.yolo.targets import YOLOv3TargetGenerator

    ds = _Toy()
    loader = build_yolo3_train_loader(ds, 3, ANCHORS, STRIDES, batch_size=3, seed=4, shapes=(64, 96),
                                      shape_interval=1, mixup=True, label_smooth=True)
    batch = next(iter(loader.iter_epoch(2, start_batch=1)))
    shape = loader.batch_shape(2, 1)
    gen = YOLOv3TargetGenerator(3, ANCHORS, STRIDES, label_smooth=True)
    transform = YOLO3TrainTransform(64, 64)
    for row, (src, idx) in enumerate(loader.batch_items(2, 1)):
        mix_rng, aug_rng = split_rng(sample_rng(4, src, idx))
        img, label = MixupDetection(ds).sample(idx, mix_rng, True)
        img, label = transform(img, label, aug_rng, shape=shape)
        expect = (img, *gen(label, shape, has_weight=True), label[:, :4])
        for got, exp in zip(batch, expect):
            np.testing.assert_array_equal(got[row][:len(exp)], exp)
        assert np.all(batch[6][row][len(label):] == -1)
    # targets carry the mixup weights and the smoothed classes
    obj = batch[1]
    assert np.any((obj > 0) & (obj < 1)) and np.isclose(batch[5].max(), 1 - 1 / 40)
