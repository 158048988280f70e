"""eval_yolo3.py / eval_faster_rcnn.py: the same protocol as validation during training, on our
checkpoints and on GluonCV's files, with a clear error for a file of another network."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

import eval_faster_rcnn
import eval_yolo3
import train_faster_rcnn
import train_yolo3

SHAPES = ["circle", "rectangle", "triangle", "star", "cross", "ring"]
DATA = ["--dataset", "shapes", "--shapes-val-size", "6", "--shapes-image-size", "96:128", "-j", "0"]


@pytest.fixture(scope="module")
def yolo_run(tmp_path_factory):
    save_dir = str(tmp_path_factory.mktemp("yolo"))
    train_yolo3.main(DATA + ["--network", "tiny", "--shapes-train-size", "8", "--batch-size", "4",
                             "--data-shape", "96", "--random-shapes", "64:96", "--epochs", "1", "--no-progress",
                             "--picture", "0", "--lr", "0.01", "--save-dir", save_dir])
    return save_dir


@pytest.fixture(scope="module")
def frcnn_run(tmp_path_factory):
    save_dir = str(tmp_path_factory.mktemp("frcnn"))
    train_faster_rcnn.main(DATA + ["--network", "mobilenet0.25", "--shapes-train-size", "4", "--short", "96",
                                   "--max-size", "128", "--epochs", "1", "--no-progress", "--picture", "0",
                                   "--lr", "0.01", "--save-dir", save_dir])
    return save_dir


def _final_map(save_dir):
    with open(os.path.join(save_dir, "results_final.json")) as f:
        return json.load(f)["map"]


def test_eval_yolo3_gives_the_training_runs_final_map(yolo_run, tmp_path):
    out = str(tmp_path / "eval.json")
    value = eval_yolo3.main(["--params", os.path.join(yolo_run, "epoch0000.params"), "--network", "tiny",
                             "--data-shape", "96", "--results", out] + DATA)
    assert value == pytest.approx(_final_map(yolo_run), abs=1e-12)
    with open(out) as f:
        assert json.load(f)["map"] == pytest.approx(value)


def test_eval_faster_rcnn_gives_the_training_runs_final_map(frcnn_run, tmp_path):
    out = str(tmp_path / "eval.json")
    value = eval_faster_rcnn.main(["--params", os.path.join(frcnn_run, "epoch0000.params"), "--network",
                                   "mobilenet0.25", "--short", "96", "--max-size", "128", "--results", out] + DATA)
    assert value == pytest.approx(_final_map(frcnn_run), abs=1e-12)
    with open(out) as f:
        results = json.load(f)
    assert results["model"] == "faster_rcnn_mobilenet0.25_shapes" and results["extra"]["short"] == 96


def test_a_file_of_another_network_is_a_clear_error(yolo_run):
    with pytest.raises(SystemExit, match="epoch0000.params does not fit FasterRCNN with 6 classes"):
        eval_faster_rcnn.main(["--params", os.path.join(yolo_run, "epoch0000.params"), "--network",
                               "mobilenet0.25", "--short", "96", "--max-size", "128"] + DATA)


@pytest.mark.oracle
@pytest.mark.filterwarnings("ignore:Parameter .* is already initialized")
def test_eval_scripts_read_gluoncv_files(tmp_path):
    """Weights saved by GluonCV's own nets (as its model-zoo files are) evaluate with the same detections
    GluonCV's net gives on the same input."""
    from gluoncv import model_zoo

    data = [v if v != "6" else "2" for v in DATA]  # two validation images: the ResNet-50 is slow on a CPU
    mx.random.seed(0)
    yolo = model_zoo.get_model("yolo3_mobilenet1.0_custom", pretrained_base=False, classes=SHAPES)
    yolo.initialize()
    yolo(mx.nd.zeros((1, 3, 96, 96)))
    yolo_file = str(tmp_path / "yolo3_mobilenet1.0_custom.params")
    yolo.save_parameters(yolo_file)
    value = eval_yolo3.main(["--params", yolo_file, "--network", "mobilenet1.0", "--data-shape", "96"] + data)
    assert 0.0 <= value <= 1.0

    frcnn = model_zoo.get_model("faster_rcnn_resnet50_v1b_voc", pretrained_base=False)
    frcnn.initialize()
    frcnn(mx.nd.zeros((1, 3, 96, 96)))
    frcnn.reset_class(SHAPES)  # GluonCV's VOC architecture with the Shapes classes
    frcnn.initialize()
    frcnn(mx.nd.zeros((1, 3, 96, 96)))
    frcnn_file = str(tmp_path / "faster_rcnn_resnet50_v1b_shapes_classes.params")
    frcnn.save_parameters(frcnn_file)
    value = eval_faster_rcnn.main(["--params", frcnn_file, "--network", "resnet50_v1b", "--short", "96",
                                   "--max-size", "128"] + data)
    assert 0.0 <= value <= 1.0
    custom = model_zoo.get_model("faster_rcnn_resnet50_v1b_custom", pretrained_base=False, classes=SHAPES)
    custom.initialize()
    custom(mx.nd.zeros((1, 3, 96, 96)))
    custom_file = str(tmp_path / "faster_rcnn_resnet50_v1b_custom.params")
    custom.save_parameters(custom_file)  # GluonCV's *_custom model has 3 anchor scales, not 5
    with pytest.raises(SystemExit, match=r"rpn.anchor_generator.anchors' has shape \(1, 1, 128, 128, 36\) in the "
                                         r"file but \(1, 1, 128, 128, 60\) in this model"):
        eval_faster_rcnn.main(["--params", custom_file, "--network", "resnet50_v1b", "--short", "96",
                               "--max-size", "128"] + data)

    # same detections as GluonCV's net on one validation image
    from gluon_bof.recipes.faster_rcnn import FasterRCNNRecipe
    args = eval_faster_rcnn.parse_args(["--params", frcnn_file, "--network", "resnet50_v1b", "--short", "96",
                                        "--max-size", "128"] + data)
    recipe = FasterRCNNRecipe()
    ours = recipe.build_net(args, SHAPES, mx.gluon.nn.BatchNorm, {})
    recipe.load_weights(ours, frcnn_file, [mx.cpu()])
    x = mx.nd.array(np.random.default_rng(0).normal(size=(1, 3, 96, 128)).astype(np.float32))
    for a, b in zip(ours(x), frcnn(x)):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-4, atol=1e-4)
