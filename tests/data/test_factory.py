"""--dataset names -> (train, val) datasets, as the training scripts build them."""
import os

import pytest

from gluon_bof.data.factory import build_datasets
from gluon_bof.data.shapes import ShapesDetection
from gluon_bof.data.validation import DatasetError
from gluon_bof.data.voc import parse_voc_splits
from gluon_bof.recipes.cli import parse_size_range

import photo_folder
from photo_folder import write_photo_folder


def test_voc_splits_parse_and_reject_malformed_entries():
    assert parse_voc_splits("2007_trainval, 2012_trainval") == ((2007, "trainval"), (2012, "trainval"))
    assert parse_voc_splits("MyData_train") == (("MyData", "train"),)  # a folder that is not VOC<year>
    for bad in ("trainval", "07-test", "2007_", ""):
        with pytest.raises(ValueError, match="YEAR_NAME|no VOC split"):
            parse_voc_splits(bad)


def test_shapes_train_and_val_are_the_embedded_splits():
    train, val = build_datasets("shapes", shapes_train_size=5, shapes_val_size=3, shapes_seed=1)
    assert isinstance(train, ShapesDetection) and (len(train), len(val)) == (5, 3)
    assert train.classes == val.classes == ShapesDetection.CLASSES


def test_shapes_image_size_bounds_every_image_of_both_splits():
    train, val = build_datasets("shapes", shapes_train_size=20, shapes_val_size=20, shapes_image_size=(224, 320))
    for ds in (train, val):
        for i in range(len(ds)):
            img, _ = ds[i]
            assert 224 <= min(img.shape[:2]) and max(img.shape[:2]) <= 320
    default_train, _ = build_datasets("shapes", shapes_train_size=20, shapes_val_size=1)
    assert max(max(default_train[i][0].shape[:2]) for i in range(20)) > 320


def test_shapes_image_size_flag_parses_and_rejects():
    assert parse_size_range("224:320", "--f") == (224, 320)
    assert parse_size_range("256", "--f") == (256, 256)
    for bad in ("320:224", "32:64", "a:b", "1:2:3"):
        with pytest.raises(ValueError, match="--f"):
            parse_size_range(bad, "--f")


def test_shapes_written_as_voc_is_read_back_as_custom(tmp_path):
    ShapesDetection(num_images=4, seed=0, split="train").write_voc(str(tmp_path), year=2007, split="trainval")
    ShapesDetection(num_images=2, seed=0, split="val").write_voc(str(tmp_path), year=2007, split="test")
    train, val = build_datasets("custom", str(tmp_path), list(ShapesDetection.CLASSES), "2007_trainval", "2007_test")
    assert (len(train), len(val)) == (4, 2)
    assert train[0][1].shape[1] == 6


def test_custom_needs_a_root_and_unknown_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--dataset-root"):
        build_datasets("custom", None, ["a"])
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        build_datasets("kitti")
    with pytest.raises(DatasetError, match="trainval.txt"):
        build_datasets("voc", str(tmp_path))
    with pytest.raises(DatasetError, match=r"trainval\.txt \[split_missing\]"):
        build_datasets("custom", str(tmp_path))  # classes are collected only from splits that exist


def test_custom_without_classes_collects_them_from_train_and_val(tmp_path):
    write_photo_folder(str(tmp_path), {"train": 6, "val": 3}, crowded_split="val")
    train, val = build_datasets("custom", str(tmp_path), None, "MyData_train", "MyData_val")
    present = sorted({photo_folder.CLASSES[int(c)] for ds in (train, val) for i in range(len(ds))
                      for c in ds.label(i)[:, 4]})
    # sorted, spelled as most annotations spell them (one box is written RECTANGLE, 300 Rectangle)
    assert train.classes == val.classes == tuple(sorted(present))
    assert "Rectangle" in train.classes and "RECTANGLE" not in train.classes
    _, val_only = build_datasets("custom", str(tmp_path), None, val_splits="MyData_val", train=False)
    assert val_only.classes == val.classes  # the evaluation script finds the same list


@pytest.mark.filterwarnings("ignore::gluon_bof.data.validation.DatasetWarning")
def test_custom_finds_png_images_by_id_and_voc_keeps_jpg(tmp_path):
    write_photo_folder(str(tmp_path), {"train": 2, "val": 1})
    train, _ = build_datasets("custom", str(tmp_path), ["circle", "Rectangle"], "MyData_train", "MyData_val")
    assert [os.path.basename(train.image_path(i)) for i in range(2)] == ["train_000.png", "train_001.png"]
    assert train.classes == ("circle", "Rectangle")
    with pytest.raises(DatasetError, match=r"train_000\.jpg \[image_missing"):
        build_datasets("voc", str(tmp_path), ["circle"], "MyData_train", "MyData_val")  # GluonCV's .jpg
    train, _ = build_datasets("voc", str(tmp_path), ["circle"], "MyData_train", "MyData_val", image_ext="png")
    assert train[0][0].shape[2] == 3
