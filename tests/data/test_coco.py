"""COCODetection: xywh conversion, clipping, crowd/area/ignore filters, id mapping, and parity with GluonCV."""
import json
import os

import cv2
import numpy as np
import pytest

from gluon_bof.data.coco import COCODetection
from gluon_bof.data.validation import DatasetError, DatasetWarning

CLASSES = ("cat", "dog", "car")
CAT_IDS = (1, 3, 7)  # not contiguous, as in COCO


def write_coco(root, split="instances_val2017", images=None, annotations=None, categories=None):
    """A COCO JSON plus tiny JPEGs under root/<split minus 'instances_'>/."""
    img_dir = split[len("instances_"):]
    os.makedirs(os.path.join(root, img_dir), exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    for k, entry in enumerate(images):
        img = np.full((entry["height"], entry["width"], 3), 40 * k, np.uint8)
        cv2.imwrite(os.path.join(root, img_dir, entry["file_name"]), img)
    if categories is None:
        categories = [{"id": i, "name": n} for i, n in zip(CAT_IDS, CLASSES)]
    with open(os.path.join(root, "annotations", split + ".json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def image(i, w, h):
    return {"id": i, "file_name": "%012d.jpg" % i, "width": w, "height": h,
            "coco_url": "http://example.invalid/val2017/%012d.jpg" % i}


def ann(i, img, cat, bbox, area=None, **extra):
    d = {"id": i, "image_id": img, "category_id": cat, "bbox": bbox,
         "area": bbox[2] * bbox[3] if area is None else area, "iscrowd": 0}
    d.update(extra)
    return d


@pytest.fixture
def coco_root(tmp_path):
    images = [image(5, 64, 48), image(2, 40, 30), image(9, 32, 32), image(11, 50, 50)]
    annotations = [
        ann(1, 5, 3, [10.5, 4, 20, 10]),                  # dog, float box
        ann(2, 5, 7, [50, 40, 30, 20]),                   # car, runs off the image: clipped
        ann(3, 5, 1, [0, 0, 64, 48], iscrowd=1),          # crowd cat
        ann(4, 2, 1, [3, 3, 1, 5]),                       # w=1: xmax == xmin, dropped
        ann(5, 2, 3, [1, 2, 3, 4], area=2.5),             # small area
        ann(6, 2, 7, [5, 5, 10, 10], ignore=1),           # ignored
        ann(7, 9, 3, [2, 2, 8, 8], area=0),               # zero area: dropped
        ann(8, 11, 1, [0, 0, 50, 50]),                    # whole image
    ]
    write_coco(str(tmp_path), images=images, annotations=annotations)
    return str(tmp_path)


def load(root, **kw):
    with pytest.warns(DatasetWarning):
        return COCODetection(root, splits="instances_val2017", **kw)


def test_items_sorted_by_image_id_with_xywh_conversion_and_clipping(coco_root):
    ds = load(coco_root)
    assert ds.image_ids == [2, 5, 11]  # 9 has no usable object and is skipped
    np.testing.assert_array_equal(ds.label(1), [[10.5, 4, 29.5, 13, 1, 0], [50, 40, 63, 47, 2, 0],
                                                [0, 0, 63, 47, 0, 1]])
    np.testing.assert_array_equal(ds.label(0), [[1, 2, 3, 5, 1, 0]])
    np.testing.assert_array_equal(ds.label(2), [[0, 0, 49, 49, 0, 0]])
    img, label = ds[1]
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and label.dtype == np.float32


def test_category_mapping_and_metric_attributes(coco_root):
    ds = load(coco_root)
    assert ds.classes == CLASSES
    assert ds.json_id_to_contiguous == {1: 0, 3: 1, 7: 2}
    assert ds.contiguous_id_to_json == {0: 1, 1: 3, 2: 7}
    assert sorted(ds.coco.getImgIds()) == [2, 5, 9, 11]
    assert ds.im_aspect_ratios == [40 / 30, 64 / 48, 1.0]


def test_crowd_min_area_and_empty_options(coco_root):
    ds = load(coco_root, use_crowd=False, min_object_area=3, skip_empty=False)
    assert ds.image_ids == [2, 5, 9, 11]
    assert ds.label(0).shape == (0, 6)  # 1-wide box dropped, small box and ignored box left out
    assert ds.label(2).shape == (0, 6) and ds.label(2).dtype == np.float32
    np.testing.assert_array_equal(ds.label(1)[:, 4], [1, 2])  # no crowd cat
    assert ds.problems.count("crowd_skipped") == 1 and ds.problems.count("small_area") == 2


def test_clip_and_drop_are_counted_in_one_warning_each(coco_root):
    with pytest.warns(DatasetWarning) as record:
        COCODetection(coco_root, splits="instances_val2017")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert any("fixed 1 time(s) in 1 file(s) [box_clipped" in m for m in messages)
    assert any("dropped 2 time(s) in 1 file(s) [box_degenerate" in m for m in messages)


def test_expected_classes_must_match(coco_root):
    with pytest.raises(DatasetError, match=r"instances_val2017\.json \[classes_mismatch\]"):
        COCODetection(coco_root, splits="instances_val2017", classes=("cat", "car", "dog"))


def test_missing_annotation_file(tmp_path):
    with pytest.raises(DatasetError, match=r"instances_train2017\.json \[annotation_missing\]"):
        COCODetection(str(tmp_path))


@pytest.mark.filterwarnings("ignore::gluon_bof.data.validation.DatasetWarning")
def test_missing_image_is_an_error_naming_it(coco_root):
    os.remove(os.path.join(coco_root, "val2017", "%012d.jpg" % 5))
    with pytest.raises(DatasetError, match=r"000000000005\.jpg \[image_missing"):
        COCODetection(coco_root, splits="instances_val2017")


def test_unknown_category_id_is_an_error(tmp_path):
    write_coco(str(tmp_path), images=[image(1, 20, 20)], annotations=[ann(1, 1, 99, [1, 1, 5, 5])])
    with pytest.raises(DatasetError, match=r"category_unknown.*category_id 99"):
        COCODetection(str(tmp_path), splits="instances_val2017")


def test_image_path_without_coco_url(tmp_path):
    entry = image(1, 20, 20)
    del entry["coco_url"]
    write_coco(str(tmp_path), images=[entry], annotations=[ann(1, 1, 1, [1, 1, 5, 5])])
    ds = COCODetection(str(tmp_path), splits="instances_val2017")
    assert ds.image_path(0) == os.path.join(str(tmp_path), "val2017", "000000000001.jpg")
    assert ds[0][0].shape == (20, 20, 3)


@pytest.mark.oracle
@pytest.mark.parametrize("use_crowd", [True, False])
@pytest.mark.parametrize("min_area", [0, 3])
def test_labels_equal_gluoncv(coco_root, use_crowd, min_area):
    from gluoncv.data import COCODetection as GluonCOCO

    class Reference(GluonCOCO):
        CLASSES = list(CLASSES)

    ours = load(coco_root, use_crowd=use_crowd, min_object_area=min_area)
    theirs = Reference(coco_root, splits="instances_val2017", use_crowd=use_crowd, min_object_area=min_area)
    assert len(ours) == len(theirs)
    for i in range(len(ours)):
        img, label = ours[i]
        ref_img, ref_label = theirs[i]
        np.testing.assert_array_equal(label[:, :5], np.asarray(ref_label, np.float32))
        np.testing.assert_array_equal(img, ref_img.asnumpy())
    assert ours.json_id_to_contiguous == theirs.json_id_to_contiguous
    assert ours.contiguous_id_to_json == theirs.contiguous_id_to_json
    assert ours.im_aspect_ratios == theirs.get_im_aspect_ratio()


@pytest.mark.oracle
def test_empty_images_differ_from_gluoncv_only_by_the_dummy_row(coco_root):
    from gluoncv.data import COCODetection as GluonCOCO

    class Reference(GluonCOCO):
        CLASSES = list(CLASSES)

    ours = load(coco_root, skip_empty=False)
    theirs = Reference(coco_root, splits="instances_val2017", skip_empty=False)
    empty = ours.image_ids.index(9)
    assert ours.label(empty).shape == (0, 6)
    assert theirs[empty][1].tolist() == [[-1, -1, -1, -1, -1]]  # GluonCV pads with a dummy row
