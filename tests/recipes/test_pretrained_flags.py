"""--pretrained-base, --finetune-from, --mixup-mode, --no-flip/--no-augment and --amp in the scripts."""
import logging
import os

import mxnet as mx
import numpy as np
import pytest

import train_faster_rcnn
import train_yolo3
from gluon_bof.model import get_model, store
from gluon_bof.model.backbones.mobilenet import mobilenet_features
from gluon_bof.recipes import get_recipe

TINY = ["--network", "tiny", "--dataset", "shapes", "--shapes-train-size", "4", "--shapes-val-size", "2",
        "--shapes-image-size", "128:160", "--data-shape", "128", "--random-shapes", "128:160", "--batch-size", "2",
        "-j", "0", "--no-progress", "--picture", "0", "--epochs", "1"]
FRCNN = ["--network", "mobilenet0.25", "--dataset", "shapes", "--shapes-train-size", "2", "--shapes-val-size", "1",
         "--shapes-image-size", "128:160", "--short", "128", "--max-size", "160", "-j", "0", "--no-progress",
         "--picture", "0", "--epochs", "1"]


def _mobilenet025_file(path, seed=3):
    """A GluonCV-layout mobilenet0.25 ImageNet file (features.* and the output Dense)."""
    rng = np.random.RandomState(seed)
    f = mobilenet_features(0.25)
    f.initialize()
    f(mx.nd.zeros((1, 3, 32, 32)))
    arrays = {"features." + k: mx.nd.array(rng.uniform(0.5, 1.5, v.shape))
              for k, v in f._collect_params_with_prefix().items()}
    arrays["output.weight"] = mx.nd.zeros((1000, 256))
    arrays["output.bias"] = mx.nd.zeros((1000,))
    mx.nd.save(str(path), arrays)
    return arrays


def _store_file(tmp_path, monkeypatch):
    import hashlib
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    tmp = models / "x.params"
    arrays = _mobilenet025_file(tmp)
    digest = hashlib.sha1(tmp.read_bytes()).hexdigest()
    os.replace(tmp, models / ("mobilenet0.25-%s.params" % digest[:8]))
    monkeypatch.setitem(store.MODEL_SHA1, "mobilenet0.25", digest)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    return arrays


def test_defaults_per_dataset_and_flags():
    parse = train_yolo3.parse_args
    assert parse(TINY).pretrained_base is False
    assert parse(["--dataset", "voc", "--network", "mobilenet0.25"]).pretrained_base is True
    assert parse(["--dataset", "voc", "--no-pretrained-base"]).pretrained_base is False
    assert parse(["--dataset", "voc", "--network", "tiny", "--tiny-width", "0.3"]).pretrained_base is False
    assert parse(["--dataset", "voc", "--network", "tiny", "--tiny-backbone", "plain"]).pretrained_base is False
    args = train_faster_rcnn.parse_args(["--dataset", "coco", "--network", "resnet101_v1d"])
    assert args.pretrained_base is True


def test_bad_weight_flags_are_usage_errors(capsys, tmp_path):
    for argv, text in [(TINY + ["--pretrained-base", str(tmp_path / "none.params")], "no such file"),
                       (TINY + ["--finetune-from", "yolo3_resnet_voc"], "neither an existing .params file"),
                       (TINY + ["--finetune-from", "yolo3_darknet53_voc", "--reuse-weights", "a:"], "NEW:OLD"),
                       (TINY + ["--tiny-width", "0.3", "--pretrained-base"], "publishes no ImageNet weights"),
                       (TINY + ["--tiny-backbone", "plain", "--pretrained-base"],
                        "publishes no ImageNet weights for this backbone (plain0.25)"),
                       (TINY + ["--tiny-backbone", "resnet"], "--tiny-backbone: invalid choice: 'resnet'"),
                       (TINY + ["--amp"], "--amp: mixed precision")]:
        with pytest.raises(SystemExit) as err:
            train_yolo3.parse_args(argv)
        assert err.value.code == 2 and text in capsys.readouterr().err, argv


def test_missing_store_file_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    recipe = get_recipe("yolo3")
    args = train_yolo3.parse_args(["--dataset", "custom", "--network", "mobilenet0.25", "--classes", "a"])
    with pytest.raises(SystemExit) as err:
        recipe.check_weight_files(args)
    text = str(err.value)
    assert str(tmp_path / "models") in text and "mobilenet0.25-f0046a3d.params" in text and "get_model(" in text
    args.resume = "x"
    recipe.check_weight_files(args)  # resuming needs no pretrained file


def test_pretrained_base_loads_into_training_net_and_logs(tmp_path, monkeypatch, caplog):
    arrays = _store_file(tmp_path, monkeypatch)
    recipe = get_recipe("yolo3")
    args = train_yolo3.parse_args(TINY + ["--pretrained-base"])
    with caplog.at_level(logging.INFO, logger="gluon_bof.recipes"):
        net, eval_net = recipe.build_training_nets(args, ["a", "b"], [mx.cpu()])
    params = net._collect_params_with_prefix()
    for key, file_key in net.backbone_keys.items():
        np.testing.assert_array_equal(params[key].data().asnumpy(), arrays[file_key].asnumpy())
    assert "mobilenet0.25 ImageNet backbone from" in caplog.text and "frozen (not trained): nothing" in caplog.text

    caplog.clear()
    args = train_faster_rcnn.parse_args(FRCNN + ["--pretrained-base"])
    frcnn = get_recipe("faster_rcnn")
    with caplog.at_level(logging.INFO, logger="gluon_bof.recipes"):
        net, _ = frcnn.build_training_nets(args, ["a"], [mx.cpu()])
    assert "BatchNorm statistics frozen (use_global_stats)" in caplog.text and "features.0 (1)" in caplog.text
    frozen = {k for k, p in net._collect_params_with_prefix().items() if p.grad_req == "null"}
    assert "features.0.weight" in frozen and "features.12.weight" in frozen and "features.15.weight" not in frozen


def test_no_pretrained_base_says_so(caplog, tmp_path):
    args = train_yolo3.parse_args(TINY)
    with caplog.at_level(logging.INFO, logger="gluon_bof.recipes"):
        get_recipe("yolo3").build_training_nets(args, ["a"], [mx.cpu()])
    assert "starts from random initialisation" in caplog.text


def test_finetune_from_params_resets_classes(tmp_path, caplog):
    old = get_model("yolo3_tiny_shapes")
    old.initialize()
    old(mx.nd.zeros((1, 3, 64, 64)))
    path = str(tmp_path / "shapes.params")
    old.save_parameters(path)
    shapes = list(old.classes)
    args = train_yolo3.parse_args(TINY + ["--finetune-from", path, "--finetune-classes", ",".join(shapes)])
    new = [shapes[2], "zebra"]
    with caplog.at_level(logging.INFO, logger="gluon_bof.recipes"):
        net, eval_net = get_recipe("yolo3").build_training_nets(args, new, [mx.cpu()])
    assert list(net.classes) == new and list(eval_net.classes) == new
    assert "output rows reused: %s<-%s" % (shapes[2], shapes[2]) in caplog.text
    w_old = old.yolo_outputs[0].prediction.weight.data().asnumpy()
    w_new = net.yolo_outputs[0].prediction.weight.data().asnumpy()
    np.testing.assert_array_equal(w_new[5], w_old[5 + 2])
    np.testing.assert_array_equal(net.stages[0][0].weight.data().asnumpy(), old.stages[0][0].weight.data().asnumpy())
    bad = train_yolo3.parse_args(TINY + ["--finetune-from", path])
    with pytest.raises(SystemExit, match="trained on 6 classes; name them with --finetune-classes"):
        get_recipe("yolo3").build_training_nets(bad, new, [mx.cpu()])


def test_mixup_modes_and_no_augment_reach_the_loaders():
    from gluon_bof.data.pipelines import FixedRatioMixup
    from gluon_bof.recipes.cli import datasets_from_args
    recipe = get_recipe("yolo3")
    args = train_yolo3.parse_args(TINY + ["--mixup", "--mixup-mode", "even", "--no-mixup-epochs", "0"])
    train_set, _ = datasets_from_args(args)
    net = get_model("yolo3_tiny_shapes")
    loader = recipe.train_loader(args, train_set, net)
    assert isinstance(loader.dataset, FixedRatioMixup) and loader.sample_fn.per_box_weights is False
    seen = []
    sample = loader.sample_fn
    real = sample.target_generator
    sample.target_generator = lambda label, **kw: (seen.append(label.copy()), real(label, **kw))[1]
    sample(loader.dataset, 0, np.random.default_rng(0), None, {"mixup": True})
    assert seen[0].shape[1] == 7 and np.all(seen[0][:, -1] == 1.0)  # blended image, unweighted boxes
    mixed, _ = loader.dataset.sample(0, np.random.default_rng(0), True)
    assert mixed[0] is not None and loader.dataset.draw(0, np.random.default_rng(0))[0] == 0.5

    frcnn = get_recipe("faster_rcnn")
    args = train_faster_rcnn.parse_args(FRCNN + ["--no-augment"])
    assert args.no_flip is True
    net = get_model("faster_rcnn_mobilenet0.25_shapes", short=128, max_size=160)
    net.initialize()
    net(mx.nd.zeros((1, 3, 128, 128)))
    train_set, _ = datasets_from_args(args)
    assert frcnn.train_loader(args, train_set, net).sample_fn.transform.flip is False
