"""VOCDetection: layout, labels (-1 on XML coordinates), custom classes, sizes, and parity with GluonCV."""
import os
import pickle

import cv2
import numpy as np
import pytest

from gluon_bof.data.validation import DatasetError, DatasetWarning
from gluon_bof.data.voc import VOCDetection

OBJ = ("<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin>"
       "<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")


def write_item(voc_dir, img_id, width, height, objects, seed=0):
    """One JPEG plus its XML; ``objects`` are (name, difficult, x0, y0, x1, y1) in 1-based XML coordinates."""
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(voc_dir, sub), exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    cv2.imwrite(os.path.join(voc_dir, "JPEGImages", img_id + ".jpg"), img)
    objs = "".join(OBJ.format(name=n, difficult=d, x0=a, y0=b, x1=c, y1=e) for n, d, a, b, c, e in objects)
    xml = ("<annotation><size><width>%d</width><height>%d</height><depth>3</depth></size>%s</annotation>"
           % (width, height, objs))
    with open(os.path.join(voc_dir, "Annotations", img_id + ".xml"), "w") as f:
        f.write(xml)


def write_split(voc_dir, name, ids):
    with open(os.path.join(voc_dir, "ImageSets", "Main", name + ".txt"), "w") as f:
        f.write("".join(i + "\n" for i in ids))


@pytest.fixture
def voc_root(tmp_path):
    """VOC2007 (trainval: 2 images, one with a difficult object; test: an image without objects) and VOC2012."""
    v7, v12 = str(tmp_path / "VOC2007"), str(tmp_path / "VOC2012")
    write_item(v7, "000001", 60, 40, [("dog", 0, 1, 2, 30, 40), ("person", 1, 10.5, 5, 60, 20)])
    write_item(v7, "000002", 50, 70, [(" Cat ", 0, 5, 6, 7, 8)], seed=1)
    write_item(v7, "000003", 30, 30, [], seed=2)
    write_split(v7, "trainval", ["000001", "000002"])
    write_split(v7, "test", ["000003"])
    write_item(v12, "2012_000001", 45, 35, [("car", 0, 3, 3, 40, 30)], seed=3)
    write_split(v12, "trainval", ["2012_000001"])
    return str(tmp_path)


def test_labels_are_0_based_with_class_and_difficult(voc_root):
    ds = VOCDetection(voc_root, splits=((2007, "trainval"),))
    assert len(ds) == 2
    img, label = ds[0]
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    assert label.dtype == np.float32
    dog, person = VOCDetection.CLASSES.index("dog"), VOCDetection.CLASSES.index("person")
    np.testing.assert_array_equal(label, [[0, 1, 29, 39, dog, 0], [9.5, 4, 59, 19, person, 1]])
    # names are stripped and lowercased before matching, as in GluonCV
    assert ds.label(1)[0, 4] == VOCDetection.CLASSES.index("cat")


def test_image_is_rgb_of_the_jpeg(voc_root):
    ds = VOCDetection(voc_root, splits=((2007, "trainval"),))
    bgr = cv2.imread(os.path.join(voc_root, "VOC2007", "JPEGImages", "000001.jpg"))
    np.testing.assert_array_equal(ds[0][0], bgr[:, :, ::-1])


def test_empty_image_label_is_0_by_6(voc_root):
    ds = VOCDetection(voc_root, splits=((2007, "test"),))
    label = ds[0][1]
    assert label.shape == (0, 6) and label.dtype == np.float32


def test_several_splits_in_order_and_folder_names(voc_root):
    ds = VOCDetection(voc_root, splits=((2007, "trainval"), ("VOC2012", "trainval")))
    assert [i for _, i in ds.items] == ["000001", "000002", "2012_000001"]
    assert ds.label(2)[0, 4] == VOCDetection.CLASSES.index("car")


def test_custom_classes_and_index_map(voc_root):
    with pytest.warns(DatasetWarning, match=r"dropped 1 time\(s\) in 1 file\(s\) \[unknown_class.*'Cat'"):
        ds = VOCDetection(voc_root, splits=((2007, "trainval"),), classes=["person", "dog"])
    assert ds.classes == ("person", "dog") and ds.num_class == 2
    np.testing.assert_array_equal(ds.label(0)[:, 4], [1, 0])
    assert ds.label(1).shape == (0, 6)  # 'cat' is not a class here
    with pytest.warns(DatasetWarning):
        swapped = VOCDetection(voc_root, splits=((2007, "trainval"),), classes=["person", "dog"],
                               index_map={"person": 0, "dog": 7})
    np.testing.assert_array_equal(swapped.label(0)[:, 4], [7, 0])


@pytest.mark.parametrize("classes", [["dog", "Dog"], ["dog", "dog"], [" dog"], [""], []])
def test_bad_class_list_is_rejected(voc_root, classes):
    with pytest.raises(ValueError, match="class"):
        VOCDetection(voc_root, splits=((2007, "trainval"),), classes=classes)


def test_lazy_labels_equal_preloaded(voc_root):
    splits = ((2007, "trainval"), (2012, "trainval"))
    eager = VOCDetection(voc_root, splits=splits)
    lazy = VOCDetection(voc_root, splits=splits, preload_label=False)
    for i in range(len(eager)):
        np.testing.assert_array_equal(eager[i][1], lazy[i][1])
    assert lazy.im_sizes == eager.im_sizes == [(60, 40), (50, 70), (45, 35)]


def test_sizes_and_aspect_ratios_without_decoding(voc_root):
    ds = VOCDetection(voc_root, splits=((2007, "trainval"),))
    os.remove(os.path.join(voc_root, "VOC2007", "JPEGImages", "000001.jpg"))  # sizes come from the XML
    assert ds.im_aspect_ratios == [60 / 40, 50 / 70]
    assert ds.get_im_aspect_ratio() == ds.im_aspect_ratios


def test_transform_argument_and_method(voc_root):
    def fn(img, label):
        return img.shape, label.shape

    assert VOCDetection(voc_root, splits=((2007, "trainval"),), transform=fn)[0] == ((40, 60, 3), (2, 6))
    view = VOCDetection(voc_root, splits=((2007, "trainval"),)).transform(fn)
    assert view[1] == ((70, 50, 3), (1, 6)) and len(view) == 2 and view.num_class == 20


def _shapes_of(img, label):
    return img.shape, label.shape


def test_datasets_pickle_for_worker_processes(voc_root):
    view = VOCDetection(voc_root, splits=((2007, "trainval"),)).transform(_shapes_of)
    clone = pickle.loads(pickle.dumps(view))
    assert clone[0] == view[0] == ((40, 60, 3), (2, 6)) and clone.classes == view.classes


def test_label_is_a_copy(voc_root):
    ds = VOCDetection(voc_root, splits=((2007, "trainval"),))
    ds[0][1][:] = -5
    assert ds[0][1][0, 2] == 29


def test_missing_split_file_names_the_file(voc_root):
    with pytest.raises(DatasetError, match=r"ImageSets.Main.val\.txt \[split_missing\]"):
        VOCDetection(voc_root, splits=((2007, "val"),))


def test_bad_splits_argument(voc_root):
    with pytest.raises(ValueError, match="splits"):
        VOCDetection(voc_root, splits=["2007_trainval"])


@pytest.mark.oracle
def test_labels_and_images_equal_gluoncv(voc_root):
    import gluoncv

    splits = ((2007, "trainval"), (2007, "test"), (2012, "trainval"))
    ours = VOCDetection(voc_root, splits=splits)
    theirs = gluoncv.data.VOCDetection(voc_root, splits=splits)
    assert len(ours) == len(theirs) == 4
    for i in range(len(ours)):
        img, label = ours[i]
        ref_img, ref_label = theirs[i]
        np.testing.assert_array_equal(label, np.asarray(ref_label, np.float32).reshape(-1, 6))
        np.testing.assert_array_equal(img, ref_img.asnumpy())
    assert ours.classes == tuple(theirs.classes)
