"""--dataset names -> (train, val) datasets, as the training scripts build them."""
import pytest

from gluon_bof.data.factory import build_datasets, parse_voc_splits
from gluon_bof.data.shapes import ShapesDetection
from gluon_bof.data.validation import DatasetError


def test_voc_splits_parse_and_reject_malformed_entries():
    assert parse_voc_splits("2007_trainval, 2012_trainval") == ((2007, "trainval"), (2012, "trainval"))
    for bad in ("trainval", "07-test", "2007_", ""):
        with pytest.raises(ValueError, match="YEAR_NAME|no VOC split"):
            parse_voc_splits(bad)


def test_shapes_train_and_val_are_the_embedded_splits():
    train, val = build_datasets("shapes", shapes_train_size=5, shapes_val_size=3, shapes_seed=1)
    assert isinstance(train, ShapesDetection) and (len(train), len(val)) == (5, 3)
    assert train.classes == val.classes == ShapesDetection.CLASSES


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
