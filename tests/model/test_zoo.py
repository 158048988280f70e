"""The get_model registry."""
import pytest

from gluon_bof.model import get_model, list_models, register_model, zoo


def test_gluoncv_yolo_names_are_registered():
    names = set(list_models())
    for bb in ("darknet53", "mobilenet1.0", "mobilenet0.25"):
        for ds in ("voc", "coco", "custom"):
            assert "yolo3_%s_%s" % (bb, ds) in names
    assert "yolo3_tiny_shapes" in names


def test_default_classes_and_case_insensitive_lookup():
    assert get_model("YOLO3_mobilenet0.25_COCO").num_class == 80
    voc = get_model("yolo3_mobilenet0.25_voc")
    assert voc.num_class == 20 and voc.classes[0] == "aeroplane"
    assert get_model("yolo3_mobilenet0.25_voc", classes=["a", "b"]).num_class == 2
    from gluon_bof.data.shapes import ShapesDetection
    assert get_model("yolo3_tiny_shapes").classes == tuple(ShapesDetection.CLASSES)


def test_register_decorator_duplicate_and_unknown(monkeypatch):
    monkeypatch.setattr(zoo, "_MODELS", dict(zoo._MODELS))

    @register_model("My_Test_Model")
    def build(scale=1):
        return ("built", scale)

    assert get_model("my_test_model", scale=3) == ("built", 3)
    with pytest.raises(ValueError, match="already registered"):
        register_model("my_test_model", lambda: None)
    with pytest.raises(ValueError, match="unknown model 'nope'.*yolo3_darknet53_voc"):
        get_model("nope")


def test_faster_rcnn_names_are_registered_by_the_same_decorator():
    names = set(list_models())
    for name in ("faster_rcnn_resnet50_v1b_voc", "faster_rcnn_resnet50_v1b_coco", "faster_rcnn_resnet101_v1d_coco",
                 "faster_rcnn_resnet18_v1b_shapes", "faster_rcnn_mobilenet0.25_shapes",
                 "faster_rcnn_mobilenet0.5_shapes"):
        assert name in names
    assert list(get_model("faster_rcnn_mobilenet0.25_shapes").classes) == ["circle", "rectangle", "triangle", "star",
                                                                            "cross", "ring"]


def test_a_provider_that_cannot_be_imported_is_an_error(monkeypatch):
    monkeypatch.setattr(zoo, "PROVIDERS", zoo.PROVIDERS + ["gluon_bof.model.no_such_module"])
    monkeypatch.setattr(zoo, "_loaded", set())
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        list_models()
