"""Learning-rate schedules: GluonCV's ``LRScheduler`` / ``LRSequential`` plus a paper-level builder.

The paper (Sec. 3.4, Fig. 6) trains YOLOv3 with a linear *warmup* followed by a *step* or *cosine*
decay. GluonCV builds that as ``LRSequential([linear warmup, main schedule])``. The two classes below
give, for every update index, the same learning rate as ``gluoncv.utils.LRScheduler`` /
``LRSequential`` (tested to 1e-12 relative against GluonCV), but refuse the configurations on which
GluonCV silently does something else or divides by zero.

Update index
    MXNet's optimizer calls ``scheduler(num_update)`` with ``num_update`` = the number of updates
    applied so far *including* the current one, so the first ``trainer.step`` uses index 1 and the
    value at index 0 is never used for training.

Resuming
    The learning rate at index ``u`` is a pure function of ``u`` and the constructor arguments:
    a scheduler keeps no state between calls apart from the last value it returned
    (``learning_rate``). A resumed run gets the right schedule by restoring the optimizer's
    ``num_update`` (the engine saves it in its checkpoints; ``Trainer.save_states`` pickles it with
    the scheduler). GluonCV's scripts do not: their ``--resume`` restarts the schedule at index 1.
"""
from __future__ import annotations

import bisect
import math
import numbers
import warnings
from typing import Iterable, List, Optional, Sequence

from mxnet import lr_scheduler as _mx_lr_scheduler

__all__ = ["MODES", "LRScheduler", "LRSequential", "RCNNScheduler", "build_lr_scheduler"]

MODES = ("constant", "step", "linear", "poly", "cosine")
# Modes that interpolate from base_lr to target_lr over the stage: they divide by (niters - 1).
_INTERPOLATING_MODES = ("linear", "poly", "cosine")


def _count(value: object, name: str, owner: str) -> int:
    """``value`` as an int >= 0, or a ValueError naming ``owner``'s argument ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{owner}: {name} must be an integer >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value}")
    return int(value)


def _finite(value: object, name: str, owner: str, minimum: Optional[float] = None,
            strict: bool = False) -> float:
    """``value`` as a finite float (optionally ``> minimum`` or ``>= minimum``), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{owner}: {name} must be {relation} {minimum:g}, got {value:g}")
    return value


class LRScheduler(_mx_lr_scheduler.LRScheduler):
    r"""One stage of a learning-rate schedule, with GluonCV's arguments and values.

    With ``N = niters - 1`` and ``T = clip(num_update - offset, 0, N)`` (iterations), the rate is

    * ``constant``: ``base_lr``;
    * ``step``: ``base_lr * step_factor ** #{s in steps : s <= T}``;
    * ``linear``: ``target_lr + (base_lr - target_lr) * (1 - T/N)``;
    * ``poly``: ``target_lr + (base_lr - target_lr) * (1 - T/N) ** power``;
    * ``cosine``: ``target_lr + (base_lr - target_lr) * (1 + cos(pi T / N)) / 2``,

    so linear, poly and cosine reach ``target_lr`` exactly at ``T = N``, the stage's last iteration.

    Parameters
    ----------
    mode : {'constant', 'step', 'linear', 'poly', 'cosine'}
        Shape of the stage.
    base_lr : float
        Rate at the start of the stage (``T = 0``), >= 0.
    target_lr : float
        Rate at the end of the stage for linear, poly and cosine (ignored by constant and step), >= 0.
    niters : int
        Stage length in iterations; used when ``nepochs * iters_per_epoch`` is 0.
    nepochs, iters_per_epoch : int
        Stage length in epochs and epoch length in iterations; when both are > 0 the stage lasts
        ``nepochs * iters_per_epoch`` iterations.
    offset : int
        Update index at which the stage starts (``LRSequential`` overwrites it).
    power : float
        Exponent of the poly mode, >= 0.
    step_iter : sequence of int, optional
        Step mode: iterations of the stage (counted from ``offset``) at which the rate is multiplied
        by ``step_factor``.
    step_epoch : sequence of float, optional
        Same in epochs of the stage; needs ``nepochs`` and ``iters_per_epoch``.
    step_factor : float
        Decay factor of the step mode, > 0.
    baselr, targetlr : float, optional
        Deprecated GluonCV spellings, used only when ``base_lr`` / ``target_lr`` keep their defaults.

    Raises
    ------
    ValueError
        Naming the argument, for an unknown mode, a negative length, a length in epochs without the
        epoch size (or two different lengths), a one-iteration linear/poly/cosine stage (GluonCV
        divides by zero there), a step mode without steps, a step at or past the end of the stage,
        or a non-finite or negative rate. A zero-length stage (``niters == 0``) is allowed: GluonCV's
        scripts build one as the warmup when warmup is off, and ``LRSequential`` never selects it.

    Notes
    -----
    A stage used on its own (outside ``LRSequential``) with ``niters == 0`` returns ``target_lr``
    (``base_lr`` for constant and step), as GluonCV does.
    """

    def __init__(self, mode: str, base_lr: float = 0.1, target_lr: float = 0.0, niters: int = 0,
                 nepochs: int = 0, iters_per_epoch: int = 0, offset: int = 0, power: float = 2,
                 step_iter: Optional[Sequence[int]] = None,
                 step_epoch: Optional[Sequence[float]] = None, step_factor: float = 0.1,
                 baselr: Optional[float] = None, targetlr: Optional[float] = None) -> None:
        owner = "LRScheduler"
        if mode not in MODES:
            raise ValueError(f"{owner}: mode must be one of {', '.join(MODES)}; got {mode!r}")
        if baselr is not None:
            warnings.warn("LRScheduler: baselr is deprecated, use base_lr", DeprecationWarning)
            if base_lr == 0.1:
                base_lr = baselr
        if targetlr is not None:
            warnings.warn("LRScheduler: targetlr is deprecated, use target_lr", DeprecationWarning)
            if target_lr == 0:
                target_lr = targetlr
        base_lr = _finite(base_lr, "base_lr", owner, minimum=0.0)
        target_lr = _finite(target_lr, "target_lr", owner, minimum=0.0)
        super().__init__(base_lr=base_lr)

        niters = _count(niters, "niters", owner)
        nepochs = _count(nepochs, "nepochs", owner)
        iters_per_epoch = _count(iters_per_epoch, "iters_per_epoch", owner)
        if nepochs > 0 and iters_per_epoch == 0:
            raise ValueError(f"{owner}: nepochs={nepochs} needs iters_per_epoch > 0")
        epoch_iters = nepochs * iters_per_epoch
        if epoch_iters > 0:
            if niters not in (0, epoch_iters):
                raise ValueError(f"{owner}: niters={niters} contradicts nepochs * iters_per_epoch = "
                                 f"{epoch_iters}; give one length")
            niters = epoch_iters
        if mode in _INTERPOLATING_MODES and niters == 1:
            raise ValueError(f"{owner}: a {mode} stage of niters=1 iteration has no end point to "
                             "interpolate to (GluonCV divides by zero); use >= 2 iterations or 0")

        if step_iter is not None and step_epoch is not None:
            raise ValueError(f"{owner}: give step_iter or step_epoch, not both")
        steps: Optional[List[float]] = None
        if step_iter is not None:
            steps = [_count(s, f"step_iter[{i}]", owner) for i, s in enumerate(step_iter)]
            unit, given = "step_iter", list(step_iter)
        elif step_epoch is not None:
            for i, s in enumerate(step_epoch):
                _finite(s, f"step_epoch[{i}]", owner, minimum=0.0)
            if niters > 0 and epoch_iters == 0:
                raise ValueError(f"{owner}: step_epoch needs nepochs and iters_per_epoch > 0 "
                                 f"(the stage is given as niters={niters})")
            # A zero-length stage is never used, so its steps need no unit.
            steps = [s * max(iters_per_epoch, 1) for s in step_epoch]
            unit, given = "step_epoch", list(step_epoch)
        if mode == "step" and steps is None:
            raise ValueError(f"{owner}: mode 'step' needs step_iter or step_epoch")
        if mode == "step" and niters > 0:
            for i, s in enumerate(steps):
                if s >= niters:
                    raise ValueError(
                        f"{owner}: {unit}[{i}]={given[i]} is at or past the end of the stage "
                        f"({niters} iterations), so it would never apply")

        self.mode = mode
        self.base_lr = base_lr
        self.target_lr = base_lr if mode == "constant" else target_lr
        self.niters = niters
        self.step = steps
        self.offset = _count(offset, "offset", owner)
        self.power = _finite(power, "power", owner, minimum=0.0)
        self.step_factor = _finite(step_factor, "step_factor", owner, minimum=0.0, strict=True)
        self.learning_rate = self.base_lr

    def __call__(self, num_update: int) -> float:
        """Learning rate at update index ``num_update`` (the optimizer's first update is 1)."""
        self.update(num_update)
        return self.learning_rate

    def update(self, num_update: int) -> None:
        """Set ``self.learning_rate`` to the rate at update index ``num_update``."""
        last = self.niters - 1
        t = min(max(0, num_update - self.offset), last)
        if self.mode == "step":
            decays = sum(1 for s in self.step if s <= t)
            self.learning_rate = self.base_lr * pow(self.step_factor, decays)
            return
        if self.mode == "constant":
            factor = 0.0
        elif self.mode == "linear":
            factor = 1 - t / last
        elif self.mode == "poly":
            factor = pow(1 - t / last, self.power)
        else:  # cosine; the operation order matches GluonCV's (pi * t / last) to the last bit
            factor = (1 + math.cos(math.pi * t / last)) / 2
        self.learning_rate = self.target_lr + (self.base_lr - self.target_lr) * factor

    def __repr__(self) -> str:
        return (f"LRScheduler(mode={self.mode!r}, base_lr={self.base_lr:g}, "
                f"target_lr={self.target_lr:g}, niters={self.niters}, offset={self.offset})")


class LRSequential(_mx_lr_scheduler.LRScheduler):
    """Stages run one after the other, as ``gluoncv.utils.LRSequential``.

    Adding a stage sets its ``offset`` to the summed length of the stages before it. The update
    index is clamped to the last iteration of the whole schedule, and the stage whose end lies
    beyond the index is used; zero-length stages are therefore never selected.

    Parameters
    ----------
    schedulers : iterable of LRScheduler
        The stages, in order; at least one, each object at most once (a stage's offset is stored on
        the object itself).
    """

    def __init__(self, schedulers: Iterable[LRScheduler]) -> None:
        super().__init__()
        self.schedulers: List[LRScheduler] = []
        self.update_sep: List[int] = []
        self.count = 0
        self.learning_rate = 0.0
        for scheduler in list(schedulers):
            self.add(scheduler)
        if not self.schedulers:
            raise ValueError("LRSequential: schedulers is empty; give at least one LRScheduler")

    def add(self, scheduler: LRScheduler) -> None:
        """Append ``scheduler`` as the next stage (sets ``scheduler.offset``)."""
        index = len(self.schedulers)
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"LRSequential: schedulers[{index}] must be a gluon_bof LRScheduler, "
                            f"got {type(scheduler).__name__}")
        for i, other in enumerate(self.schedulers):
            if other is scheduler:
                raise ValueError(f"LRSequential: schedulers[{index}] is the same object as "
                                 f"schedulers[{i}]; create one LRScheduler per stage")
        scheduler.offset = self.count
        self.count += scheduler.niters
        self.update_sep.append(self.count)
        self.schedulers.append(scheduler)

    def __call__(self, num_update: int) -> float:
        """Learning rate at update index ``num_update`` (the optimizer's first update is 1)."""
        self.update(num_update)
        return self.learning_rate

    def update(self, num_update: int) -> None:
        """Set ``self.learning_rate`` to the rate at update index ``num_update``."""
        clamped = min(num_update, self.count - 1)
        # First stage whose end (exclusive) lies beyond the index; the last one past the end.
        index = min(bisect.bisect_right(self.update_sep, clamped), len(self.schedulers) - 1)
        stage = self.schedulers[index]
        stage.update(clamped)
        self.learning_rate = stage.learning_rate

    def __repr__(self) -> str:
        return "LRSequential([" + ", ".join(repr(s) for s in self.schedulers) + "])"


def build_lr_scheduler(lr: float, epochs: int, iters_per_epoch: int, lr_mode: str = "step",
                       warmup_epochs: int = 0, warmup_lr: float = 0.0, lr_decay: float = 0.1,
                       lr_decay_epoch: Sequence[int] = (160, 180), lr_decay_period: int = 0,
                       power: float = 2, target_lr: float = 0.0,
                       warmup_iters: Optional[int] = None) -> LRSequential:
    """The paper's schedule: linear warmup from ``warmup_lr`` to ``lr``, then step, cosine or poly.

    With ``warmup_lr = 0`` and ``target_lr = 0`` this is exactly the composition of GluonCV's
    ``train_yolo3.py``::

        LRSequential([LRScheduler('linear', base_lr=0, target_lr=lr, nepochs=warmup_epochs,
                                  iters_per_epoch=iters_per_epoch),
                      LRScheduler(lr_mode, base_lr=lr, nepochs=epochs - warmup_epochs,
                                  iters_per_epoch=iters_per_epoch,
                                  step_epoch=[e - warmup_epochs for e in decay_epochs],
                                  step_factor=lr_decay, power=power)])

    Unlike that script, ``warmup_lr`` is used (GluonCV parses ``--warmup-lr`` and ignores it).

    Parameters
    ----------
    lr : float
        Peak rate, reached at the end of warmup; > 0.
    epochs : int
        Total training length in epochs (warmup included), > 0.
    iters_per_epoch : int
        Optimizer updates per epoch (GluonCV: ``num_samples // batch_size``), > 0.
    lr_mode : {'step', 'cosine', 'poly', 'linear', 'constant'}
        Shape after warmup. Cosine, poly and linear end at ``target_lr`` on the last update.
    warmup_epochs : int
        Warmup length in epochs, ``0 <= warmup_epochs < epochs``; 0 builds a zero-length warmup
        stage, as GluonCV does.
    warmup_lr : float
        Rate at the first warmup iteration (``T = 0``), ``0 <= warmup_lr <= lr``.
    lr_decay : float
        Step mode: factor applied at each decay epoch, > 0.
    lr_decay_epoch : sequence of int
        Step mode: *absolute* epochs (warmup included) at whose start the rate decays; each in
        ``[warmup, epochs)``. Ignored when ``lr_decay_period > 0`` and by the other modes.
    lr_decay_period : int
        If > 0, decay every ``lr_decay_period`` epochs: ``range(period, epochs, period)``.
    power : float
        Poly exponent.
    target_lr : float
        Final rate of cosine, poly and linear, ``0 <= target_lr <= lr``.
    warmup_iters : int, optional
        Warmup length in iterations instead of epochs (e.g. Faster R-CNN's 1000-iteration warmup);
        overrides ``warmup_epochs``. Decay epochs stay absolute.

    Returns
    -------
    LRSequential
        Two stages, warmup then main, of total length ``epochs * iters_per_epoch`` iterations.

    Raises
    ------
    ValueError
        Naming the argument and the rule, for every inconsistent configuration.
    """
    owner = "build_lr_scheduler"
    lr = _finite(lr, "lr", owner, minimum=0.0, strict=True)
    epochs = _count(epochs, "epochs", owner)
    iters_per_epoch = _count(iters_per_epoch, "iters_per_epoch", owner)
    if epochs == 0:
        raise ValueError(f"{owner}: epochs must be > 0, got 0")
    if iters_per_epoch == 0:
        raise ValueError(f"{owner}: iters_per_epoch must be > 0, got 0")
    if lr_mode not in MODES:
        raise ValueError(f"{owner}: lr_mode must be one of {', '.join(MODES)}; got {lr_mode!r}")
    warmup_lr = _finite(warmup_lr, "warmup_lr", owner, minimum=0.0)
    target_lr = _finite(target_lr, "target_lr", owner, minimum=0.0)
    if warmup_lr > lr:
        raise ValueError(f"{owner}: warmup_lr={warmup_lr:g} must not exceed lr={lr:g}")
    if target_lr > lr:
        raise ValueError(f"{owner}: target_lr={target_lr:g} must not exceed lr={lr:g}")
    total = epochs * iters_per_epoch

    if warmup_iters is None:
        warmup_epochs = _count(warmup_epochs, "warmup_epochs", owner)
        if warmup_epochs >= epochs:
            raise ValueError(f"{owner}: warmup_epochs={warmup_epochs} must be smaller than "
                             f"epochs={epochs}: warmup would take the whole training")
        warmup_len, warmup_name = warmup_epochs * iters_per_epoch, "warmup_epochs"
    else:
        warmup_len, warmup_name = _count(warmup_iters, "warmup_iters", owner), "warmup_iters"
        if warmup_len >= total:
            raise ValueError(f"{owner}: warmup_iters={warmup_len} must be smaller than "
                             f"epochs * iters_per_epoch = {total}")
    if warmup_len == 1:
        raise ValueError(f"{owner}: a warmup of 1 iteration ({warmup_name}) cannot ramp from "
                         "warmup_lr to lr; use 0 or >= 2 iterations")
    main_len = total - warmup_len
    if main_len == 1 and lr_mode in _INTERPOLATING_MODES:
        raise ValueError(f"{owner}: the {lr_mode} stage after warmup would last 1 iteration; "
                         f"shorten {warmup_name} or raise epochs")

    lr_decay = _finite(lr_decay, "lr_decay", owner, minimum=0.0, strict=True)
    lr_decay_period = _count(lr_decay_period, "lr_decay_period", owner)
    if lr_decay_period > 0:
        decay_epochs = list(range(lr_decay_period, epochs, lr_decay_period))
        decay_name = "lr_decay_period"
    else:
        decay_epochs = [_count(e, f"lr_decay_epoch[{i}]", owner)
                        for i, e in enumerate(lr_decay_epoch)]
        decay_name = "lr_decay_epoch"
    step_iter = None
    if lr_mode == "step":
        for i, e in enumerate(decay_epochs):
            if e >= epochs:
                raise ValueError(f"{owner}: {decay_name} gives decay epoch {e} (index {i}), at or "
                                 f"past the end of training (epochs={epochs})")
            if e * iters_per_epoch < warmup_len:
                raise ValueError(f"{owner}: {decay_name} gives decay epoch {e} (index {i}), "
                                 f"inside the warmup ({warmup_name}); decays start after warmup")
        # Decay epochs are absolute: the main stage counts its iterations from the end of warmup.
        step_iter = [e * iters_per_epoch - warmup_len for e in decay_epochs]

    warmup = LRScheduler("linear", base_lr=warmup_lr, target_lr=lr, niters=warmup_len)
    main = LRScheduler(lr_mode, base_lr=lr, target_lr=target_lr, niters=main_len, power=power,
                       step_iter=step_iter, step_factor=lr_decay)
    return LRSequential([warmup, main])


class RCNNScheduler(_mx_lr_scheduler.LRScheduler):
    """GluonCV's Faster R-CNN learning rate (``train_faster_rcnn.py``), as an optimizer schedule.

    That script sets the rate by hand, per iteration ``i`` (0-based within the epoch) of epoch ``e``:

    * at the start of each epoch, every decay epoch ``s <= e`` not yet applied multiplies the rate by
      ``lr_decay``;
    * in epoch 0 only, for ``i <= warmup_iters``, the rate is ``base * (f * (1 - i / W) + i / W)``
      with ``base`` the rate at the start of epoch 0 and ``f = warmup_factor``. A warmup longer than
      epoch 0 stops at the end of epoch 0 and the partial rate carries on (decays multiply it).

    The update with optimizer index ``u`` (the first ``trainer.step`` is 1) is GluonCV's iteration
    ``u - 1``, so both use the same rate at every update. ``mode`` other than ``'step'`` (the paper's
    cosine row, which GluonCV's script lacks) multiplies the same warmup factor into
    ``LRScheduler(mode, base_lr=lr, niters=epochs * iters_per_epoch)`` at iteration ``u - 1``.

    Parameters
    ----------
    lr : float
        Base rate, > 0.
    epochs, iters_per_epoch : int
        Run length; both > 0.
    mode : {'step', 'cosine', 'poly', 'linear', 'constant'}
    lr_decay : float
        Step factor, > 0.
    lr_decay_epoch : sequence of int
        Absolute epochs at whose start the rate decays (step mode).
    warmup_iters : float
        Warmup length in iterations; <= 0 means none (GluonCV's ``--lr-warmup -1``).
    warmup_factor : float
        Rate factor at iteration 0 of the warmup, in (0, 1].
    """

    def __init__(self, lr: float, epochs: int, iters_per_epoch: int, mode: str = "step", lr_decay: float = 0.1,
                 lr_decay_epoch: Sequence[int] = (), warmup_iters: float = -1, warmup_factor: float = 1.0 / 3,
                 power: float = 2) -> None:
        owner = "RCNNScheduler"
        lr = _finite(lr, "lr", owner, minimum=0.0, strict=True)
        super().__init__(base_lr=lr)
        self.epochs = _count(epochs, "epochs", owner)
        self.iters_per_epoch = _count(iters_per_epoch, "iters_per_epoch", owner)
        if self.epochs == 0 or self.iters_per_epoch == 0:
            raise ValueError(f"{owner}: epochs and iters_per_epoch must be > 0, got {epochs}, {iters_per_epoch}")
        if mode not in MODES:
            raise ValueError(f"{owner}: mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.lr_decay = _finite(lr_decay, "lr_decay", owner, minimum=0.0, strict=True)
        self.steps = sorted(_count(e, f"lr_decay_epoch[{i}]", owner) for i, e in enumerate(lr_decay_epoch))
        self.warmup_iters = _finite(warmup_iters, "warmup_iters", owner)
        self.warmup_factor = _finite(warmup_factor, "warmup_factor", owner, minimum=0.0, strict=True)
        if self.warmup_factor > 1:
            raise ValueError(f"{owner}: warmup_factor must be in (0, 1], got {warmup_factor}")
        self.mode = mode
        total = self.epochs * self.iters_per_epoch
        self.main = None if mode == "step" else LRScheduler(mode, base_lr=lr, niters=max(total, 2), power=power)
        self.learning_rate = lr

    def _warmup(self, epoch: int, i: int) -> float:
        """The warmup factor in force at iteration ``i`` of ``epoch``."""
        if self.warmup_iters <= 0:
            return 1.0
        last = i if epoch == 0 else self.iters_per_epoch - 1
        last = min(last, int(math.floor(self.warmup_iters)))
        alpha = last / self.warmup_iters
        return self.warmup_factor * (1 - alpha) + alpha

    def rate_at_iteration(self, iteration: int) -> float:
        """GluonCV's rate at global iteration ``iteration`` (0-based)."""
        total = self.epochs * self.iters_per_epoch
        iteration = min(max(int(iteration), 0), total - 1)
        epoch, i = divmod(iteration, self.iters_per_epoch)
        if self.main is not None:
            return self.main(iteration) * self._warmup(epoch, i)
        rate = self.base_lr
        for s in self.steps:
            if s <= 0:
                rate *= self.lr_decay
        rate = rate * self._warmup(epoch, i)
        for s in self.steps:
            if 0 < s <= epoch:
                rate *= self.lr_decay
        return rate

    def __call__(self, num_update: int) -> float:
        """Learning rate at update index ``num_update`` (the optimizer's first update is 1)."""
        self.learning_rate = self.rate_at_iteration(num_update - 1)
        return self.learning_rate

    def __repr__(self) -> str:
        return (f"RCNNScheduler(lr={self.base_lr:g}, mode={self.mode!r}, steps={self.steps}, "
                f"warmup_iters={self.warmup_iters:g}, warmup_factor={self.warmup_factor:g})")
