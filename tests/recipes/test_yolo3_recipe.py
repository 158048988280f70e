"""The YOLOv3 recipe helpers (what train_yolo3.py / eval_yolo3.py build) and the one SyncBN rule."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_bof.engine.evaluate import copy_weights
from gluon_bof.engine.context import norm_layer_for
from gluon_bof.recipes.yolo3 import model_name
from gluon_bof.recipes.yolo3.data import parse_random_shapes


def _norm_net(norm_layer, norm_kwargs):
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(gluon.nn.Conv2D(6, 3, padding=1, in_channels=3), norm_layer(in_channels=6, **norm_kwargs),
                gluon.nn.LeakyReLU(0.1), gluon.nn.Conv2D(4, 1, in_channels=6))
    return net


def test_single_device_syncbn_equals_batchnorm_so_the_fast_kernel_is_used():
    layer, kwargs = norm_layer_for(1, syncbn=True)
    assert layer is gluon.nn.BatchNorm and kwargs == {}
    assert norm_layer_for(2, syncbn=True) == (gluon.contrib.nn.SyncBatchNorm, {"num_devices": 2})
    assert norm_layer_for(4, syncbn=False) == (gluon.nn.BatchNorm, {})
    # the claim behind the substitution: SyncBatchNorm over one device computes what BatchNorm does
    x = mx.nd.array(np.random.default_rng(0).normal(size=(4, 3, 8, 8)))
    outputs, grads, stats = [], [], []
    for norm, kw in ((gluon.nn.BatchNorm, {}), (gluon.contrib.nn.SyncBatchNorm, {"num_devices": 1})):
        mx.random.seed(7)
        net = _norm_net(norm, kw)
        net.initialize(mx.init.Xavier())
        with autograd.record():
            y = net(x)
            (y * y).sum().backward()
        outputs.append(y.asnumpy())
        grads.append(net[0].weight.grad().asnumpy())
        stats.append(net[1].running_var.data().asnumpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats[0], stats[1], rtol=1e-5, atol=1e-6)


def test_model_names_follow_gluoncv():
    assert model_name("darknet53", "voc") == "yolo3_darknet53_voc"
    assert model_name("mobilenet1.0", "coco") == "yolo3_mobilenet1.0_coco"
    assert model_name("darknet53", "shapes") == "yolo3_darknet53_custom"
    assert model_name("tiny", "voc") == "yolo3_tiny_shapes"


def test_random_shapes_parse_and_reject_non_multiples_of_32():
    assert parse_random_shapes("320:608") == tuple(range(320, 609, 32))
    assert parse_random_shapes("224,256") == (224, 256)
    with pytest.raises(ValueError, match="multiples of 32"):
        parse_random_shapes("300:400")
    with pytest.raises(ValueError, match="MIN 320 is larger than MAX 224"):
        parse_random_shapes("320:224")


def test_copy_weights_moves_every_parameter_and_statistic():
    src, dst = _norm_net(gluon.nn.BatchNorm, {}), _norm_net(gluon.nn.BatchNorm, {})
    src.initialize(mx.init.Normal(1.0))
    src[1].running_mean.set_data(mx.nd.arange(6))
    dst.initialize(mx.init.Zero())
    copy_weights(src, dst, [mx.cpu()])
    x = mx.nd.ones((1, 3, 4, 4))
    np.testing.assert_array_equal(src(x).asnumpy(), dst(x).asnumpy())
    np.testing.assert_array_equal(dst[1].running_mean.data().asnumpy(), np.arange(6))
