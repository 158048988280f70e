"""VOC layout as users have it: class names in any case, images of any common extension, big images, many boxes."""
import os
import string
import tempfile

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gluon_bof.data import base
from gluon_bof.data.validation import DatasetError, DatasetWarning
from gluon_bof.data.voc import IMAGE_EXTENSIONS, VOCDetection, check_class_list, collect_voc_classes

from photo_folder import CLASSES, write_photo_folder

OBJ = ("<object><name>{}</name><difficult>0</difficult><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax>"
       "<ymax>15</ymax></bndbox></object>")


def write_item(root, img_id, names, ext=".png", size=(32, 24), folder="Data"):
    base_dir = os.path.join(root, folder)
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(base_dir, sub), exist_ok=True)
    if ext:
        cv2.imwrite(os.path.join(base_dir, "JPEGImages", img_id + ext), np.full((size[1], size[0], 3), 90, np.uint8))
    xml = ("<annotation><filename>%s.tif</filename><size><width>%d</width><height>%d</height></size>%s"
           "</annotation>" % (img_id, size[0], size[1], "".join(OBJ.format(n) for n in names)))
    with open(os.path.join(base_dir, "Annotations", img_id + ".xml"), "w") as f:
        f.write(xml)
    return base_dir


def write_list(base_dir, ids, split="train"):
    with open(os.path.join(base_dir, "ImageSets", "Main", split + ".txt"), "w") as f:
        f.write("".join(i + "\n" for i in ids))


def test_names_match_ignoring_case_and_keep_the_given_spelling(tmp_path):
    d = write_item(str(tmp_path), "a", ["car", "PERSON", " Person ", "Car", "bus"])
    write_list(d, ["a"])
    with pytest.warns(DatasetWarning, match=r"dropped 1 time.*object 4 'bus'"):
        ds = VOCDetection(str(tmp_path), splits=(("Data", "train"),), classes=["Car", "Person"], image_ext=None)
    assert ds.classes == ("Car", "Person")
    np.testing.assert_array_equal(ds.label(0)[:, 4], [0, 1, 1, 0])  # 'bus' is unknown: dropped
    assert ds.problems.count("unknown_class") == 1 and "'bus'" in ds.problems.problems[0].detail


@settings(max_examples=25, deadline=None)
@given(names=st.lists(st.text(string.ascii_letters + " -_", min_size=1, max_size=8).map(str.strip)
                      .filter(bool), min_size=1, max_size=5, unique_by=str.lower),
       flips=st.lists(st.booleans(), min_size=8, max_size=8))
def test_any_case_of_a_class_name_maps_to_its_id(names, flips):
    with tempfile.TemporaryDirectory() as root:
        variants = ["".join(ch.upper() if flips[i % 8] else ch.lower() for i, ch in enumerate(n)) for n in names]
        d = write_item(root, "a", [" %s " % v for v in reversed(variants)])
        write_list(d, ["a"])
        ds = VOCDetection(root, splits=(("Data", "train"),), classes=names, image_ext=None)
        assert ds.classes == tuple(names)
        np.testing.assert_array_equal(ds.label(0)[:, 4], list(reversed(range(len(names)))))


def test_case_insensitive_duplicates_are_refused():
    with pytest.raises(ValueError, match=r"duplicated class names \['Car', 'car'\]"):
        check_class_list(["Car", "car"])


def test_every_common_extension_is_found_by_id_whatever_the_xml_filename_says(tmp_path):
    write_photo_folder(str(tmp_path), {"train": 6}, mixed_extensions=True)
    ds = VOCDetection(str(tmp_path), splits=(("MyData", "train"),), classes=CLASSES, image_ext="auto")
    names = [os.path.basename(ds.image_path(i)) for i in range(len(ds))]
    assert names == ["train_000.png", "train_001.png", "train_002.jpeg", "train_003.bmp", "train_004.tif",
                     "train_005.JPG"]
    for i in range(len(ds)):
        img, label = ds[i]
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3  # RGBA and gray become RGB
        assert len(label) >= 1
    assert ds.problems.count() == 0


def test_an_explicit_extension_takes_files_as_named_without_the_dot_too(tmp_path):
    d = write_item(str(tmp_path), "a", ["Car"], ext=".png")
    write_list(d, ["a"])
    ds = VOCDetection(str(tmp_path), splits=(("Data", "train"),), classes=["Car"], image_ext="png")
    assert ds.image_path(0).endswith(os.path.join("JPEGImages", "a.png")) and ds[0][0].shape == (24, 32, 3)


def test_two_files_for_one_id_are_an_error_naming_both(tmp_path):
    d = write_item(str(tmp_path), "a", ["Car"], ext=".png")
    cv2.imwrite(os.path.join(d, "JPEGImages", "a.jpg"), np.zeros((24, 32, 3), np.uint8))
    write_list(d, ["a"])
    with pytest.raises(DatasetError, match=r"a \[image_ambiguous.*files a\.jpg, a\.png; pass the extension"):
        VOCDetection(str(tmp_path), splits=(("Data", "train"),), classes=["Car"], image_ext=None)
    ds = VOCDetection(str(tmp_path), splits=(("Data", "train"),), classes=["Car"], image_ext=".png")
    assert ds.image_path(0).endswith("a.png")


def test_a_missing_image_lists_the_extensions_tried(tmp_path):
    d = write_item(str(tmp_path), "a", ["Car"], ext=None)
    write_list(d, ["a"])
    with pytest.raises(DatasetError, match=r"a\.jpg \[image_missing.*no file a\.\{jpg,jpeg,png,bmp,tif,tiff\}"):
        VOCDetection(str(tmp_path), splits=(("Data", "train"),), classes=["Car"], image_ext=None)
    assert IMAGE_EXTENSIONS[0] == ".jpg"


def test_collected_classes_are_sorted_ignoring_case_in_their_most_common_spelling(tmp_path):
    d = write_item(str(tmp_path), "a", ["car", "Car", "Car", "zebra", "Apple", "PERSON"])
    write_item(str(tmp_path), "b", ["person", "person"])
    write_list(d, ["a"], "train")
    write_list(d, ["b"], "val")
    assert collect_voc_classes(str(tmp_path), (("Data", "train"),)) == ("Apple", "Car", "person", "zebra")
    with pytest.raises(DatasetError, match=r"test\.txt \[split_missing\]"):
        collect_voc_classes(str(tmp_path), (("Data", "test"),))
    e = write_item(str(tmp_path), "c", [], folder="Empty")
    write_list(e, ["c"])
    with pytest.raises(ValueError, match="no object <name> found"):
        collect_voc_classes(str(tmp_path), (("Empty", "train"),))


def test_large_image_and_hundreds_of_boxes(tmp_path):
    write_photo_folder(str(tmp_path), {"train": 2}, large=(3000, 2000), crowded_split="train")
    ds = VOCDetection(str(tmp_path), splits=(("MyData", "train"),), classes=CLASSES, image_ext=None)
    img, label = ds[0]
    assert img.shape == (2000, 3000, 3) and label[:, 2].max() > 1000
    crowded = ds.label(2)
    assert crowded.shape == (300, 6) and ds.max_objects == 300
    assert ds.im_sizes[0] == (3000, 2000) and ds.problems.count() == 0


def test_image_header_reads_sizes_beyond_pils_decompression_bomb_limit(tmp_path, monkeypatch):
    from PIL import Image

    path = str(tmp_path / "big.png")
    cv2.imwrite(path, np.zeros((60, 80), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # as if the image were a 100-gigapixel aerial scan
    assert base.image_header(path)[:2] == (80, 60)
    assert Image.MAX_IMAGE_PIXELS == 100  # the limit is restored
