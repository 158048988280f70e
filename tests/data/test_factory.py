"""--dataset names -> (train, val) datasets, as the training scripts build them."""
import pytest

from gluon_bof.data.factory import build_datasets
from gluon_bof.data.shapes import ShapesDetection
from gluon_bof.data.validation import DatasetError
from gluon_bof.data.voc import parse_voc_splits
from gluon_bof.recipes.cli import parse_size_range


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


def test_custom_needs_classes_and_root_and_unknown_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--classes"):
        build_datasets("custom", str(tmp_path))
    with pytest.raises(ValueError, match="--dataset-root"):
        build_datasets("custom", None, ["a"])
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        build_datasets("kitti")
    with pytest.raises(DatasetError, match="trainval.txt"):
        build_datasets("voc", str(tmp_path))
