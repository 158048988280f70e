"""ShapesDetection: determinism, split separation, label validity, and round trips through VOC/COCO files."""
import numpy as np
import pytest

from gluon_bof.data.coco import COCODetection
from gluon_bof.data.shapes import MAX_REL_SIZE, SHAPE_CLASSES, ShapesDetection, _background, render
from gluon_bof.data.voc import VOCDetection


def test_items_are_deterministic_from_seed_and_index():
    a, b = ShapesDetection(5, seed=3), ShapesDetection(50, seed=3)
    for i in (0, 4):
        np.testing.assert_array_equal(a[i][0], b[i][0])  # independent of num_images and access order
        np.testing.assert_array_equal(a[i][1], b[i][1])
    assert not np.array_equal(a[0][0][:64], ShapesDetection(5, seed=4)[0][0][:64])


def test_uses_no_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    ShapesDetection(3, seed=0)[2]
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_train_and_val_share_no_image():
    train = [ShapesDetection(20, seed=0, split="train").generate(i)[0] for i in range(20)]
    val = [ShapesDetection(20, seed=0, split="val").generate(i)[0] for i in range(20)]
    train_keys = {(t.shape, t[::37, ::41].tobytes()) for t in train}
    assert not any((v.shape, v[::37, ::41].tobytes()) in train_keys for v in val)


def test_images_and_labels_are_valid():
    ds = ShapesDetection(40, seed=1)
    counts = np.zeros(len(SHAPE_CLASSES), int)
    num_objects = []
    for i in range(len(ds)):
        img, label = ds[i]
        h, w = img.shape[:2]
        assert img.dtype == np.uint8 and img.shape[2] == 3 and 320 <= h <= 500 and 320 <= w <= 500
        assert (w, h) == ds.image_size(i)
        assert label.dtype == np.float32 and label.shape[1] == 6
        assert 1 <= len(label) <= 6
        assert np.all(label[:, 0] >= 0) and np.all(label[:, 1] >= 0)
        assert np.all(label[:, 2] <= w - 1) and np.all(label[:, 3] <= h - 1)
        assert np.all(label[:, 0] < label[:, 2]) and np.all(label[:, 1] < label[:, 3])
        assert np.all(label[:, :4] == np.round(label[:, :4]))  # whole pixels
        sides = np.maximum(label[:, 2] - label[:, 0], label[:, 3] - label[:, 1]) + 1
        assert np.all(sides <= 0.71 * min(w, h) + 1)
        assert set(np.unique(label[:, 5])) <= {0.0, 1.0}
        counts += np.bincount(label[:, 4].astype(int), minlength=len(SHAPE_CLASSES))
        num_objects.append(len(label))
    assert np.all(counts > 0)  # every class appears
    assert len(set(num_objects)) >= 4  # object count varies
    assert MAX_REL_SIZE == 0.5


def test_box_is_the_extent_of_the_painted_pixels():
    """Render draws the background first: redrawing it from the same seed isolates the object's pixels."""
    img, label = render(np.random.default_rng(0), 200, 160, max_objects=1)
    background = _background(np.random.default_rng(0), 200, 160)
    ys, xs = np.nonzero(np.any(img != background, axis=2))
    assert label.shape == (1, 6) and label[0, 5] == 0
    np.testing.assert_array_equal(label[0, :4], [xs.min(), ys.min(), xs.max(), ys.max()])
    assert xs.max() - xs.min() + 1 >= 8 and ys.max() - ys.min() + 1 >= 8


def test_occluded_objects_are_flagged_difficult_sometimes():
    ds = ShapesDetection(150, seed=2)
    labels = [ds.label(i) for i in range(len(ds))]
    difficult = np.concatenate([lab[:, 5] for lab in labels])
    assert 0 < difficult.mean() < 0.15


def test_im_sizes_without_drawing():
    ds = ShapesDetection(4, seed=5, min_size=100, max_size=120)
    assert ds.im_sizes == [ds[i][0].shape[1::-1] for i in range(4)]
    assert all(100 <= s <= 120 for wh in ds.im_sizes for s in wh)


@pytest.mark.parametrize("kwargs", [dict(split="dev"), dict(num_images=-1), dict(min_size=10),
                                    dict(min_size=300, max_size=200), dict(max_objects=0)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ShapesDetection(**{"num_images": 2, **kwargs})


def test_index_out_of_range():
    with pytest.raises(IndexError):
        ShapesDetection(2)[2]


def test_write_voc_reads_back_equal(tmp_path):
    ds = ShapesDetection(6, seed=7, split="val", min_size=96, max_size=128)
    ds.write_voc(str(tmp_path), year=2007, split="test")
    back = VOCDetection(str(tmp_path), splits=((2007, "test"),), classes=SHAPE_CLASSES)
    assert len(back) == 6 and back.im_sizes == ds.im_sizes
    for i in range(6):
        img, label = back[i]
        np.testing.assert_array_equal(label, ds.label(i))
        assert np.abs(img.astype(int) - ds[i][0]).mean() < 6  # JPEG quality 95


def test_write_coco_reads_back_equal(tmp_path):
    ds = ShapesDetection(6, seed=7, min_size=96, max_size=128)
    ds.write_coco(str(tmp_path), "instances_train2017")
    back = COCODetection(str(tmp_path), splits="instances_train2017")
    assert back.classes == SHAPE_CLASSES and back.image_ids == [1, 2, 3, 4, 5, 6]
    for i in range(6):
        np.testing.assert_array_equal(back.label(i), ds.label(i))  # difficult travels as iscrowd
        assert back[i][0].shape == ds[i][0].shape


@pytest.mark.oracle
def test_written_datasets_read_by_gluoncv_equal(tmp_path):
    from gluoncv.data import COCODetection as GluonCOCO
    from gluoncv.data import VOCDetection as GluonVOC

    class RefVOC(GluonVOC):
        CLASSES = SHAPE_CLASSES

    class RefCOCO(GluonCOCO):
        CLASSES = list(SHAPE_CLASSES)

    ds = ShapesDetection(8, seed=11, min_size=96, max_size=128)
    ds.write_voc(str(tmp_path / "voc"), year=2007, split="trainval")
    ds.write_coco(str(tmp_path / "coco"), "instances_train2017")
    voc = RefVOC(str(tmp_path / "voc"), splits=((2007, "trainval"),))
    coco = RefCOCO(str(tmp_path / "coco"), splits="instances_train2017")
    ours_voc = VOCDetection(str(tmp_path / "voc"), splits=((2007, "trainval"),), classes=SHAPE_CLASSES)
    assert len(voc) == len(coco) == 8
    for i in range(8):
        np.testing.assert_array_equal(np.asarray(voc[i][1], np.float32), ds.label(i))
        np.testing.assert_array_equal(np.asarray(coco[i][1], np.float32), ds.label(i)[:, :5])
        np.testing.assert_array_equal(voc[i][0].asnumpy(), ours_voc[i][0])


def test_cache_returns_the_same_items_as_drawing_and_copies():
    from gluon_bof.data.shapes import ShapesDetection
    import pickle
    cached = ShapesDetection(5, seed=3, split="train", cache_mb=64)
    plain = ShapesDetection(5, seed=3, split="train", cache_mb=0)
    for i in range(5):
        for _ in range(2):
            a, b = cached[i], plain[i]
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    assert len(cached._cache) == 5 and not plain._cache
    img, label = cached[0]
    img[:] = 0
    label[:] = -7
    np.testing.assert_array_equal(cached[0][0], plain[0][0])      # the caller's copy was modified
    np.testing.assert_array_equal(cached[0][1], plain[0][1])
    assert pickle.loads(pickle.dumps(cached))._cache == {}       # a pickled copy starts empty
    tight = ShapesDetection(5, seed=3, split="train", cache_mb=plain[0][0].nbytes * 1.5 / 2 ** 20)
    for i in range(5):
        tight[i]
    assert len(tight._cache) == 1 and tight._cached_bytes <= tight._cache_bytes
