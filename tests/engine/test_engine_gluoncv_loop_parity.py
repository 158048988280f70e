"""fit() reproduces GluonCV's train_yolo3.py inner loop (split_and_load, record, backward of the summed
per-image losses, trainer.step(batch_size), GluonCV's LRSequential warmup + cosine, --no-wd)."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import engine_toy as toy
from gluon_bof.engine import batch_seed, build_trainer, fit

import gluoncv.utils as gcv_utils

EPOCHS, WARMUP, LR = 3, 1, 0.05


def _gcv_schedule(iters):
    return gcv_utils.LRSequential([
        gcv_utils.LRScheduler("linear", base_lr=0, target_lr=LR, nepochs=WARMUP, iters_per_epoch=iters),
        gcv_utils.LRScheduler("cosine", base_lr=LR, nepochs=EPOCHS - WARMUP, iters_per_epoch=iters,
                              step_epoch=[], step_factor=0.1, power=2)])


def _gluoncv_style_loop(loader, ctxs):
    """The body of GluonCV's train() for YOLOv3 (scripts/detection/yolo/train_yolo3.py), on the toy task."""
    net = toy.make_net(ctxs)
    net.collect_params(".*beta|.*gamma|.*bias").setattr("wd_mult", 0.0)
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"wd": 5e-4, "momentum": 0.9, "lr_scheduler": _gcv_schedule(loader.num_batches(0))},
                            kvstore="local")
    lrs = []
    for epoch in range(EPOCHS):
        for b, batch in enumerate(loader.iter_epoch(epoch)):
            mx.random.seed(batch_seed(233, epoch, b))
            data = gluon.utils.split_and_load(mx.nd.array(batch[0]), ctx_list=ctxs, batch_axis=0)
            box = gluon.utils.split_and_load(mx.nd.array(batch[1]), ctx_list=ctxs, batch_axis=0)
            score = gluon.utils.split_and_load(mx.nd.array(batch[2]), ctx_list=ctxs, batch_axis=0)
            sum_losses = []
            with autograd.record():
                for x, b, s in zip(data, box, score):
                    out = net(x)
                    box_l = ((out[:, :4] - b) ** 2).sum(axis=1)
                    score_l = mx.nd.log(1 + mx.nd.exp(-out[:, 4:] * s)).sum(axis=1)
                    sum_losses.append(box_l + score_l)
                autograd.backward(sum_losses)
            trainer.step(batch[0].shape[0])
            lrs.append(trainer.learning_rate)
    return toy.weights(net), lrs


@pytest.mark.oracle
def test_fit_matches_gluoncv_training_loop(tmp_path):
    ctxs = [mx.cpu(0), mx.cpu(1)]  # two devices, plain BN (GluonCV without --syncbn)
    loader = toy.toy_loader(batch_size=4, n=12)
    ref, ref_lrs = _gluoncv_style_loop(loader, ctxs)

    net = toy.make_net(ctxs)
    trainer = build_trainer(net, "sgd", {"wd": 5e-4, "momentum": 0.9,
                                         "lr_scheduler": _gcv_schedule(loader.num_batches(0))},
                            kvstore="local", no_wd=True)
    res = fit(net, toy.ToyTask(), loader, trainer, ctxs, EPOCHS, str(tmp_path), save_interval=0, seed=233,
              progress=False, tensorboard=False)
    assert res.global_step == len(ref_lrs) == 9
    assert [r["lr"] for r in res.rows] == pytest.approx(ref_lrs[2::3], abs=1e-12)
    assert ref_lrs[-1] == pytest.approx(0.0, abs=1e-12)  # cosine reaches 0 at the last update
    init = toy.weights(toy.make_net(ctxs[:1]))
    for k, v in ref.items():
        np.testing.assert_allclose(toy.weights(net)[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
        assert np.abs(v - init[k]).max() > 1e-4, k  # training moved it: the comparison is not vacuous
