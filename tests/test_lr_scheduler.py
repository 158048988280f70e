"""Tests of gluon_bof.lr_scheduler: GluonCV parity, the paper builder, errors, Trainer and resume."""
import math
import pickle

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mxnet import autograd, gluon

from gluon_bof.lr_scheduler import LRScheduler, LRSequential, build_lr_scheduler

REL = 1e-12


def assert_same_rates(ours, theirs, updates):
    """Both schedulers give the same rate (1e-12 relative, exact at 0) at every index in ``updates``."""
    for u in updates:
        a, b = ours(u), theirs(u)
        assert a == pytest.approx(b, rel=REL, abs=0.0), f"update {u}: {a!r} != gluoncv {b!r}"


# ---------------------------------------------------------------------------------------------
# Random stage configurations, valid for both implementations.

@st.composite
def stage_kwargs(draw, allow_offset=False):
    """Constructor kwargs of one valid stage: lengths in iterations or epochs, steps inside it."""
    mode = draw(st.sampled_from(["constant", "step", "linear", "poly", "cosine"]))
    rate = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)
    kwargs = {"base_lr": draw(rate), "target_lr": draw(rate),
              "power": draw(st.sampled_from([0.5, 0.9, 1.0, 2.0, 3.0])),
              "step_factor": draw(st.sampled_from([0.1, 0.5, 0.25, 0.3]))}
    in_epochs = draw(st.booleans())
    if in_epochs:
        nepochs, ipe = draw(st.integers(0, 5)), draw(st.integers(1, 12))
        niters = nepochs * ipe
        kwargs.update(nepochs=nepochs, iters_per_epoch=ipe)
    else:
        niters = draw(st.sampled_from([0, 1]) | st.integers(2, 60))
        kwargs["niters"] = niters
    if niters == 1 and mode in ("linear", "poly", "cosine"):
        mode = draw(st.sampled_from(["constant", "step"]))
    if mode == "step":
        if in_epochs and niters > 0:
            kwargs["step_epoch"] = draw(st.lists(st.integers(0, kwargs["nepochs"] - 1), max_size=3))
        else:
            kwargs["step_iter"] = draw(st.lists(st.integers(0, max(niters - 1, 0)), max_size=3))
    if allow_offset:
        kwargs["offset"] = draw(st.integers(0, 30))
    return mode, kwargs


def gluoncv_lr():
    """GluonCV's module (a test requirement: a missing oracle fails, it does not skip)."""
    from gluoncv.utils import lr_scheduler as glr
    return glr


@pytest.mark.oracle
@settings(max_examples=150, deadline=None)
@given(stage=stage_kwargs(allow_offset=True))
def test_single_stage_matches_gluoncv_at_every_update(stage):
    glr = gluoncv_lr()
    mode, kwargs = stage
    ours, theirs = LRScheduler(mode, **kwargs), glr.LRScheduler(mode, **kwargs)
    assert ours.niters == theirs.niters
    # Before the offset, through the stage, and past its end (clamped); niters=0 included.
    assert_same_rates(ours, theirs, range(0, kwargs.get("offset", 0) + ours.niters + 3))


@pytest.mark.oracle
@settings(max_examples=200, deadline=None)
@given(stages=st.lists(stage_kwargs(), min_size=1, max_size=5))
def test_sequence_matches_gluoncv_at_every_update(stages):
    glr = gluoncv_lr()
    ours = LRSequential([LRScheduler(m, **kw) for m, kw in stages])
    theirs = glr.LRSequential([glr.LRScheduler(m, **kw) for m, kw in stages])
    assert ours.count == theirs.count and ours.update_sep == theirs.update_sep
    assert [s.offset for s in ours.schedulers] == [s.offset for s in theirs.schedulers]
    assert_same_rates(ours, theirs, range(0, ours.count + 4))


@pytest.mark.oracle
@settings(max_examples=60, deadline=None)
@given(lr=st.floats(1e-5, 1.0), epochs=st.integers(2, 30), ipe=st.integers(2, 9),
       mode=st.sampled_from(["step", "cosine", "poly"]), data=st.data())
def test_builder_equals_train_yolo3_composition(lr, epochs, ipe, mode, data):
    """warmup_lr=0: exactly GluonCV train_yolo3.py's LRSequential (decay epochs shifted by warmup)."""
    glr = gluoncv_lr()
    warmup = data.draw(st.integers(0, epochs - 1), label="warmup_epochs")
    period = data.draw(st.sampled_from([0, 0, max(3, warmup)]), label="lr_decay_period")
    decay = data.draw(st.lists(st.integers(warmup, epochs - 1), max_size=3), label="lr_decay_epoch")
    ours = build_lr_scheduler(lr, epochs, ipe, mode, warmup_epochs=warmup, lr_decay=0.1,
                              lr_decay_epoch=decay, lr_decay_period=period, power=2)
    absolute = list(range(period, epochs, period)) if period > 0 else decay
    theirs = glr.LRSequential([
        glr.LRScheduler("linear", base_lr=0, target_lr=lr, nepochs=warmup, iters_per_epoch=ipe),
        glr.LRScheduler(mode, base_lr=lr, nepochs=epochs - warmup, iters_per_epoch=ipe,
                        step_epoch=[e - warmup for e in absolute], step_factor=0.1, power=2)])
    assert ours.count == theirs.count == epochs * ipe
    assert_same_rates(ours, theirs, range(0, ours.count + 3))


@pytest.mark.oracle
@pytest.mark.parametrize("mode", ["cosine", "step", "poly"])
@pytest.mark.parametrize("epochs,ipe,warmup,decay", [
    (200, 16551 // 64, 2, (160, 180)),  # YOLOv3 VOC07+12, batch 64
    (280, 117266 // 64, 2, (220, 250)),  # YOLOv3 COCO, the zoo's BoF command
])
def test_published_yolo_schedules_match_gluoncv(mode, epochs, ipe, warmup, decay):
    """Full-size schedules: rounding differences that small random ones hide would show here."""
    glr = gluoncv_lr()
    ours = build_lr_scheduler(1e-3, epochs, ipe, mode, warmup_epochs=warmup, lr_decay_epoch=decay)
    theirs = glr.LRSequential([
        glr.LRScheduler("linear", base_lr=0, target_lr=1e-3, nepochs=warmup, iters_per_epoch=ipe),
        glr.LRScheduler(mode, base_lr=1e-3, nepochs=epochs - warmup, iters_per_epoch=ipe,
                        step_epoch=[e - warmup for e in decay], step_factor=0.1, power=2)])
    total = epochs * ipe
    # Every update of the warmup and of the last 2000; ~20000 spread elsewhere (keeps this < 1 s).
    stride = max(7, total // 20000)
    updates = [*range(0, 2 * warmup * ipe), *range(2 * warmup * ipe, total - 2000, stride),
               *range(total - 2000, total + 2)]
    assert_same_rates(ours, theirs, updates)


@pytest.mark.oracle
def test_deprecated_aliases_match_gluoncv():
    glr = gluoncv_lr()
    kwargs = dict(baselr=0.4, targetlr=0.1, niters=11)
    with pytest.warns(DeprecationWarning, match="baselr"):
        ours = LRScheduler("cosine", **kwargs)
    with pytest.warns(UserWarning):
        theirs = glr.LRScheduler("cosine", **kwargs)
    assert_same_rates(ours, theirs, range(0, 13))
    assert ours(0) == 0.4 and ours(10) == 0.1


# ---------------------------------------------------------------------------------------------
# Values worked out in the spec (section 4): VOC, batch 64 -> 258 iterations/epoch.

def test_yolo_voc_worked_values_step():
    sched = build_lr_scheduler(1e-3, 200, 258, "step", warmup_epochs=2, lr_decay_epoch=(160, 180))
    assert sched(1) == pytest.approx(1e-3 / 515, rel=REL)  # 1.94e-6: T=1 of N=515
    assert sched(515) == pytest.approx(1e-3, rel=REL)
    assert sched(41279) == pytest.approx(1e-3, rel=REL)
    assert sched(41280) == pytest.approx(1e-4, rel=REL)  # 160 * 258: absolute epoch
    assert sched(46439) == pytest.approx(1e-4, rel=REL)
    assert sched(46440) == pytest.approx(1e-5, rel=REL)
    assert sched(10 ** 7) == pytest.approx(1e-5, rel=REL)


def test_yolo_voc_worked_values_cosine_ends_at_exactly_zero():
    sched = build_lr_scheduler(1e-3, 200, 258, "cosine", warmup_epochs=2)
    assert sched(41280) == pytest.approx(9.735032307129715e-05, rel=1e-9)
    assert sched(51598) > 0.0
    assert sched(51599) == 0.0
    assert sched(51600) == 0.0 and sched(10 ** 6) == 0.0
    rates = np.array([sched(u) for u in range(516, 51600)])
    assert np.all(np.diff(rates) <= 0.0)


def test_warmup_lr_is_used():
    sched = build_lr_scheduler(1e-3, 10, 50, "cosine", warmup_epochs=2, warmup_lr=2e-4)
    # 100 warmup iterations: T = u for u in [0, 99], ramp over N = 99.
    assert sched(0) == pytest.approx(2e-4, rel=REL)
    assert sched(1) == pytest.approx(2e-4 + 8e-4 / 99, rel=REL)
    assert sched(99) == pytest.approx(1e-3, rel=REL)
    warm = np.array([sched(u) for u in range(0, 100)])
    assert np.all(np.diff(warm) > 0)
    assert sched(100) == pytest.approx(1e-3, rel=REL)  # first iteration of the cosine stage


def test_zero_warmup_is_allowed_and_equals_the_main_stage_alone():
    sched = build_lr_scheduler(0.01, 12, 7, "step", lr_decay_epoch=(8, 11))
    assert sched.schedulers[0].niters == 0
    alone = LRScheduler("step", base_lr=0.01, nepochs=12, iters_per_epoch=7, step_epoch=[8, 11])
    for u in range(0, 12 * 7 + 2):
        assert sched(u) == alone(u)


def test_warmup_in_iterations_keeps_decay_epochs_absolute():
    # Faster R-CNN style: 30-iteration warmup from lr/3, decays at absolute epochs 3 and 5.
    sched = build_lr_scheduler(0.01, 6, 20, "step", warmup_iters=30, warmup_lr=0.01 / 3,
                               lr_decay_epoch=(3, 5))
    assert sched(0) == pytest.approx(0.01 / 3, rel=REL)
    assert sched(29) == pytest.approx(0.01, rel=REL)
    assert sched(59) == pytest.approx(0.01, rel=REL)
    assert sched(60) == pytest.approx(1e-3, rel=REL)
    assert sched(100) == pytest.approx(1e-4, rel=REL)


def test_faster_rcnn_style_warmup_is_gluoncv_rule_one_update_ahead():
    """GluonCV train_faster_rcnn.py sets the rate per batch; update u gets the rate of its batch u."""
    ipe, warm, factor, lr, epochs, decays = 20, 7, 1 / 3, 0.01, 6, (3, 5)

    def gluoncv_batch_rate(g):  # g: 0-based global batch index
        epoch, i = divmod(g, ipe)
        rate = lr * 0.1 ** sum(1 for d in decays if epoch >= d)
        if epoch == 0 and i <= warm:
            alpha = i / warm
            rate = lr * (factor * (1 - alpha) + alpha)
        return rate

    sched = build_lr_scheduler(lr, epochs, ipe, "step", warmup_iters=warm + 1,
                               warmup_lr=lr * factor, lr_decay_epoch=decays)
    for u in range(1, epochs * ipe):
        assert sched(u) == pytest.approx(gluoncv_batch_rate(u), rel=1e-12)


def test_target_lr_is_the_last_value_of_poly_and_cosine():
    for mode in ("poly", "cosine", "linear"):
        sched = build_lr_scheduler(0.1, 5, 4, mode, warmup_epochs=1, target_lr=0.02)
        assert sched(19) == pytest.approx(0.02, rel=REL)
        assert sched(18) > 0.02


def test_sequence_sets_offsets_and_skips_zero_length_stages():
    a = LRScheduler("constant", base_lr=0.5, niters=3)
    empty = LRScheduler("linear", base_lr=9.0, target_lr=9.0, niters=0)
    b = LRScheduler("linear", base_lr=0.4, target_lr=0.0, niters=5)
    seq = LRSequential([a, empty, b])
    assert [s.offset for s in seq.schedulers] == [0, 3, 3]
    assert seq.update_sep == [3, 3, 8]
    assert [seq(u) for u in range(0, 10)] == pytest.approx(
        [0.5, 0.5, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0], rel=REL, abs=1e-15)


# ---------------------------------------------------------------------------------------------
# Bad configurations: each error names the argument and the rule.

BAD_STAGES = [
    (dict(mode="exp"), r"mode must be one of constant, step, linear, poly, cosine; got 'exp'"),
    (dict(mode="linear", niters=-5), r"niters must be >= 0, got -5"),
    (dict(mode="linear", niters=2.5), r"niters must be an integer >= 0, got 2\.5"),
    (dict(mode="linear", nepochs=-1, iters_per_epoch=3), r"nepochs must be >= 0"),
    (dict(mode="linear", nepochs=2, iters_per_epoch=-3), r"iters_per_epoch must be >= 0"),
    (dict(mode="linear", nepochs=2), r"nepochs=2 needs iters_per_epoch > 0"),
    (dict(mode="linear", niters=7, nepochs=2, iters_per_epoch=3),
     r"niters=7 contradicts nepochs \* iters_per_epoch = 6"),
    (dict(mode="linear", niters=1), r"a linear stage of niters=1 iteration"),
    (dict(mode="cosine", nepochs=1, iters_per_epoch=1), r"a cosine stage of niters=1 iteration"),
    (dict(mode="poly", niters=1), r"a poly stage of niters=1 iteration.*divides by zero"),
    (dict(mode="step", niters=10), r"mode 'step' needs step_iter or step_epoch"),
    (dict(mode="step", niters=10, step_iter=[3, 10]),
     r"step_iter\[1\]=10 is at or past the end of the stage \(10 iterations\)"),
    (dict(mode="step", nepochs=4, iters_per_epoch=5, step_epoch=[2, 4]),
     r"step_epoch\[1\]=4 is at or past the end of the stage \(20 iterations\)"),
    (dict(mode="step", niters=10, step_iter=[-1]), r"step_iter\[0\] must be >= 0, got -1"),
    (dict(mode="step", niters=10, step_epoch=[1]), r"step_epoch needs nepochs and iters_per_epoch"),
    (dict(mode="step", niters=10, step_iter=[1], step_epoch=[1]), r"step_iter or step_epoch, not both"),
    (dict(mode="cosine", niters=10, base_lr=float("nan")), r"base_lr must be finite, got nan"),
    (dict(mode="cosine", niters=10, target_lr=float("inf")), r"target_lr must be finite"),
    (dict(mode="cosine", niters=10, base_lr=-0.1), r"base_lr must be >= 0, got -0\.1"),
    (dict(mode="poly", niters=10, power=float("nan")), r"power must be finite"),
    (dict(mode="poly", niters=10, power=-1), r"power must be >= 0"),
    (dict(mode="step", niters=10, step_iter=[2], step_factor=0), r"step_factor must be > 0, got 0"),
    (dict(mode="linear", niters=10, offset=-2), r"offset must be >= 0, got -2"),
]


@pytest.mark.parametrize("kwargs,message", BAD_STAGES, ids=[m for _, m in BAD_STAGES])
def test_bad_stage_raises_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        LRScheduler(**kwargs)
    assert str(info.value).startswith("LRScheduler: ")


GOOD = dict(lr=1e-3, epochs=20, iters_per_epoch=10)
BAD_BUILDS = [
    (dict(lr=float("nan")), r"lr must be finite, got nan"),
    (dict(lr=0.0), r"lr must be > 0, got 0"),
    (dict(epochs=0), r"epochs must be > 0, got 0"),
    (dict(epochs=-3), r"epochs must be >= 0, got -3"),
    (dict(iters_per_epoch=0), r"iters_per_epoch must be > 0, got 0"),
    (dict(lr_mode="exponential"), r"lr_mode must be one of .*; got 'exponential'"),
    (dict(warmup_epochs=-1), r"warmup_epochs must be >= 0, got -1"),
    (dict(warmup_epochs=20), r"warmup_epochs=20 must be smaller than epochs=20"),
    (dict(warmup_epochs=25), r"warmup_epochs=25 must be smaller than epochs=20"),
    (dict(warmup_iters=200), r"warmup_iters=200 must be smaller than epochs \* iters_per_epoch = 200"),
    (dict(warmup_iters=1), r"a warmup of 1 iteration \(warmup_iters\)"),
    (dict(epochs=1, iters_per_epoch=1, warmup_epochs=0, lr_mode="cosine"),
     r"the cosine stage after warmup would last 1 iteration"),
    (dict(warmup_iters=199, lr_mode="poly"), r"the poly stage after warmup would last 1 iteration"),
    (dict(warmup_lr=float("nan")), r"warmup_lr must be finite"),
    (dict(warmup_lr=2e-3), r"warmup_lr=0\.002 must not exceed lr=0\.001"),
    (dict(target_lr=-1e-4, lr_mode="cosine"), r"target_lr must be >= 0"),
    (dict(lr_decay_epoch=(10, 20)), r"lr_decay_epoch gives decay epoch 20 \(index 1\), at or past "
                                    r"the end of training \(epochs=20\)"),
    (dict(lr_decay_epoch=(1, 15), warmup_epochs=2),
     r"lr_decay_epoch gives decay epoch 1 \(index 0\), inside the warmup \(warmup_epochs\)"),
    (dict(lr_decay_epoch=(-4,)), r"lr_decay_epoch\[0\] must be >= 0, got -4"),
    (dict(lr_decay_period=-2), r"lr_decay_period must be >= 0, got -2"),
    (dict(lr_decay_period=5, warmup_epochs=6), r"lr_decay_period gives decay epoch 5 \(index 0\), "
                                               r"inside the warmup"),
    (dict(lr_decay=float("nan")), r"lr_decay must be finite"),
    (dict(lr_decay=0.0), r"lr_decay must be > 0, got 0"),
]


@pytest.mark.parametrize("kwargs,message", BAD_BUILDS, ids=[m for _, m in BAD_BUILDS])
def test_bad_build_raises_naming_the_argument(kwargs, message):
    args = {**GOOD, "lr_decay_epoch": (12, 16), **kwargs}
    with pytest.raises(ValueError, match=message) as info:
        build_lr_scheduler(**args)
    assert str(info.value).startswith("build_lr_scheduler: ")


def test_decay_epochs_are_not_checked_for_cosine():
    sched = build_lr_scheduler(1e-3, 12, 10, "cosine", lr_decay_epoch=(160, 180))
    assert sched(119) == 0.0


def test_bad_sequences_raise():
    with pytest.raises(ValueError, match="LRSequential: schedulers is empty"):
        LRSequential([])
    with pytest.raises(TypeError, match=r"LRSequential: schedulers\[1\] must be a gluon_bof "
                                        r"LRScheduler, got FactorScheduler"):
        LRSequential([LRScheduler("constant", niters=3), mx.lr_scheduler.FactorScheduler(step=2)])
    stage = LRScheduler("constant", niters=3)
    with pytest.raises(ValueError, match=r"schedulers\[1\] is the same object as schedulers\[0\]"):
        LRSequential([stage, stage])


# ---------------------------------------------------------------------------------------------
# Driving gluon.Trainer, and resuming.

def _tiny_net():
    net = gluon.nn.Dense(1, in_units=3, use_bias=False)
    net.initialize(mx.init.Constant(0.0), ctx=mx.cpu())
    return net


def _step(net, trainer, x):
    with autograd.record():
        loss = net(x).sum()
    loss.backward()
    trainer.step(1)


def test_trainer_uses_the_schedule_from_update_one():
    sched = build_lr_scheduler(0.5, 4, 3, "cosine", warmup_epochs=1, warmup_lr=0.05)
    expected = LRSequential([LRScheduler("linear", base_lr=0.05, target_lr=0.5, niters=3),
                             LRScheduler("cosine", base_lr=0.5, niters=9)])
    net = _tiny_net()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"lr_scheduler": sched})
    x = mx.nd.array([[1.0, 2.0, 3.0]])
    weight = net.weight.data().asnumpy().copy()
    for k in range(1, 15):
        _step(net, trainer, x)
        assert trainer.learning_rate == pytest.approx(expected(k), rel=REL, abs=0.0)
        new = net.weight.data().asnumpy()
        # Plain SGD: w_k = w_{k-1} - lr_k * grad, with grad = x: the rate used at step k is sched(k).
        np.testing.assert_allclose(weight - new, expected(k) * x.asnumpy(), rtol=1e-5, atol=1e-6)
        weight = new.copy()


def test_schedule_depends_only_on_the_update_index():
    sched = build_lr_scheduler(1e-2, 8, 5, "step", warmup_epochs=2, warmup_lr=1e-3,
                               lr_decay_epoch=(4, 6))
    order = np.random.default_rng(0).permutation(45)
    shuffled = {int(u): sched(int(u)) for u in order}
    fresh = build_lr_scheduler(1e-2, 8, 5, "step", warmup_epochs=2, warmup_lr=1e-3,
                               lr_decay_epoch=(4, 6))
    assert all(shuffled[u] == fresh(u) for u in range(45))
    restored = pickle.loads(pickle.dumps(sched))
    assert all(restored(u) == fresh(u) for u in range(45))


def test_trainer_resumes_schedule_from_saved_states(tmp_path):
    def make():
        sched = build_lr_scheduler(0.3, 5, 4, "step", warmup_epochs=1, lr_decay_epoch=(2, 3))
        net = _tiny_net()
        return sched, net, gluon.Trainer(net.collect_params(), "sgd", {"lr_scheduler": sched})

    x = mx.nd.array([[1.0, -1.0, 0.5]])
    sched, net, trainer = make()
    for _ in range(9):
        _step(net, trainer, x)
    states = str(tmp_path / "trainer.states")
    trainer.save_states(states)
    uninterrupted = []
    for _ in range(4):
        _step(net, trainer, x)
        uninterrupted.append(trainer.learning_rate)

    _, net2, trainer2 = make()
    net2.weight.set_data(net.weight.data())  # the weights do not influence the rate
    trainer2.load_states(states)
    resumed = []
    for _ in range(4):
        _step(net2, trainer2, x)
        resumed.append(trainer2.learning_rate)
    assert resumed == uninterrupted
    assert resumed == [sched(u) for u in range(10, 14)]
    assert not math.isclose(resumed[0], sched(1))


def _gluoncv_rcnn_rates(lr, epochs, iters, steps, decay, warmup, factor):
    """Per-iteration rates of GluonCV's train_faster_rcnn.py: decays at epoch start, warmup in epoch 0
    through trainer.set_learning_rate, one trainer.step per iteration."""
    import mxnet as mx
    p = mx.gluon.Parameter("w", shape=(1,))
    p.initialize()
    trainer = mx.gluon.Trainer([p], "sgd", {"learning_rate": lr})
    lr_steps = sorted(float(s) for s in steps)
    rates = []
    for epoch in range(epochs):
        while lr_steps and epoch >= lr_steps[0]:
            trainer.set_learning_rate(trainer.learning_rate * decay)
            lr_steps.pop(0)
        base_lr = trainer.learning_rate
        for i in range(iters):
            if epoch == 0 and i <= warmup:
                alpha = i / warmup
                new_lr = base_lr * (factor * (1 - alpha) + alpha)
                if new_lr != trainer.learning_rate:
                    trainer.set_learning_rate(new_lr)
            rates.append(trainer.learning_rate)
    return rates


@pytest.mark.parametrize("warmup, steps", [(7.0, [2, 4]), (13.0, [0, 3]), (-1.0, [1, 3]), (4.5, [2])])
def test_rcnn_scheduler_equals_gluoncv_per_update(warmup, steps):
    """Warmup (shorter and longer than epoch 0, fractional) and decays at GluonCV's exact updates,
    driven through a real Trainer (the first step is update 1)."""
    import mxnet as mx
    from gluon_bof.lr_scheduler import RCNNScheduler
    epochs, iters, lr = 5, 10, 0.01
    expected = _gluoncv_rcnn_rates(lr, epochs, iters, steps, 0.1, warmup, 1.0 / 3)
    p = mx.gluon.Parameter("w", shape=(1,))
    p.initialize()
    sched = RCNNScheduler(lr, epochs, iters, "step", 0.1, steps, warmup, 1.0 / 3)
    trainer = mx.gluon.Trainer([p], "sgd", {"learning_rate": lr, "lr_scheduler": sched})
    used = []
    for _ in range(epochs * iters):
        with mx.autograd.record():
            loss = p.data() * 1
        loss.backward()
        trainer.step(1)
        used.append(trainer.learning_rate)  # scheduler(num_update) of the step just taken
    np.testing.assert_allclose(used, expected, rtol=1e-12)
    if warmup > iters:  # GluonCV keeps the partial warmup rate after epoch 0
        assert used[iters] == pytest.approx(expected[iters - 1])
        assert used[iters] < lr * 0.1 ** sum(s <= 1 for s in steps)


def test_rcnn_scheduler_cosine_with_warmup_and_bad_arguments():
    from gluon_bof.lr_scheduler import RCNNScheduler
    s = RCNNScheduler(0.02, 2, 5, "cosine", warmup_iters=4, warmup_factor=0.5)
    assert s(1) == pytest.approx(0.01)                       # iteration 0: factor 0.5 of the cosine start
    assert s(5) == pytest.approx(0.02 * (1 + np.cos(np.pi * 4 / 9)) / 2)
    assert s(10) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="warmup_factor must be in \\(0, 1\\]"):
        RCNNScheduler(0.02, 2, 5, warmup_factor=2.0)
