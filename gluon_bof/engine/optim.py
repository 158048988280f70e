"""The optimizer side of training: ``gluon.Trainer`` over a kvstore, ``--no-wd``, update counters.

* ``kvstore='device'`` or ``'local'`` reduces gradients over the devices of one process (GluonCV
  uses ``'local'``); ``'dist_sync'`` (and ``'dist_device_sync'``) also over worker processes through
  MXNet's parameter server. For dist kvstores the update runs on the workers
  (``update_on_kvstore=False``) so every worker holds the optimizer state and can checkpoint it;
  the kvstore only sums gradients. All workers step together, so ``num_update`` counts global steps.
* ``trainer.step(global_batch)``: ``rescale_grad = 1 / global_batch``; with per-image losses summed
  over anchors this gives "sum over anchors, mean over images", as GluonCV.
* ``--no-wd``: ``wd_mult = 0`` on every parameter whose name matches ``.*beta|.*gamma|.*bias``.
* A dist kvstore is freed by :func:`release_kvstore` when training ends, on every worker, rather than
  whenever Python's cycle collector gets to it.
"""
import gc
import logging
import os
import re
import sys
import weakref
from typing import Any, Dict, List, Mapping, Optional, Union

import mxnet as mx
from mxnet import gluon

from .distributed import RANK_ANNOUNCEMENT

__all__ = ["NO_WD_PATTERN", "apply_no_wd", "build_trainer", "param_multipliers", "set_param_multipliers",
           "release_kvstore", "update_count", "set_update_count"]

_log = logging.getLogger("gluon_bof.engine")

NO_WD_PATTERN = ".*beta|.*gamma|.*bias"
MAX_AGGREGATION = 60


def apply_no_wd(net: gluon.Block, pattern: str = NO_WD_PATTERN) -> int:
    """Set ``wd_mult = 0`` on the parameters whose name matches ``pattern``; return how many."""
    selected = list(net.collect_params(pattern).values())  # regex on the global names, as GluonCV
    for param in selected:
        param.wd_mult = 0.0
    return len(selected)


def param_multipliers(net: gluon.Block) -> Dict[str, Dict[str, float]]:
    """``{structural name: {'lr_mult', 'wd_mult'}}``; MXNet does not store these in trainer states."""
    return {name: {"lr_mult": float(p.lr_mult), "wd_mult": float(p.wd_mult)}
            for name, p in net._collect_params_with_prefix().items()}


def set_param_multipliers(net: gluon.Block, multipliers: Mapping[str, Mapping[str, float]]) -> None:
    """Restore what :func:`param_multipliers` returned (names absent from ``multipliers`` are kept)."""
    params = net._collect_params_with_prefix()
    for name, mults in multipliers.items():
        if name in params:
            params[name].lr_mult = float(mults["lr_mult"])
            params[name].wd_mult = float(mults["wd_mult"])


def build_trainer(net: gluon.Block, optimizer: str = "sgd", optimizer_params: Optional[Dict[str, Any]] = None,
                  kvstore: Union[str, mx.kvstore.KVStore] = "local", no_wd: bool = False,
                  params: Optional[gluon.ParameterDict] = None) -> gluon.Trainer:
    """One ``gluon.Trainer`` for all devices of ``net``.

    Parameters
    ----------
    net : gluon.Block
        Initialized on every training context.
    optimizer, optimizer_params :
        As ``gluon.Trainer``; e.g. ``'sgd', {'wd': 5e-4, 'momentum': 0.9, 'lr_scheduler': sched}``.
    kvstore : str or KVStore
        ``'local'``, ``'device'``, ``'dist_sync'``, ``'dist_device_sync'`` or a created KVStore.
    no_wd : bool
        Apply :func:`apply_no_wd` before building (GluonCV ``--no-wd``).
    params : ParameterDict, optional
        The parameters to train (default all of ``net``; Faster R-CNN passes ``collect_train_params()``).
    """
    if no_wd:
        apply_no_wd(net)
    if isinstance(kvstore, str):
        if kvstore not in ("local", "device", "dist_sync", "dist_device_sync", "nccl"):
            raise ValueError(f"build_trainer: kvstore {kvstore!r} is not supported; use 'local', 'device', "
                             f"'dist_sync', 'dist_device_sync' or 'nccl'")
        kv_type = kvstore
        if kvstore.startswith("dist"):
            kvstore = mx.kv.create(kvstore)
    else:
        kv_type = kvstore.type
    distributed = kv_type.startswith("dist")
    trainer = gluon.Trainer(structural_order(net, params), optimizer,
                            dict(optimizer_params or {}), kvstore=kvstore,
                            update_on_kvstore=False if distributed else None)
    if distributed:
        _start_dist(trainer)
    if getattr(trainer._optimizer, "aggregate_num", 0) > 0 and "MXNET_OPTIMIZER_AGGREGATION_SIZE" not in os.environ:
        # One multi-tensor update per MAX_AGGREGATION parameters instead of per 4 (MXNet's default):
        # same numbers, fewer operator calls per step. MXNet's multi-SGD kernels take at most 60.
        trainer._optimizer.aggregate_num = MAX_AGGREGATION
    return trainer


def structural_order(net: gluon.Block, params: Optional[gluon.ParameterDict] = None) -> List[gluon.Parameter]:
    """The parameters to train, ordered by their structural names (``stages.0.0.weight``...).

    ``gluon.Trainer`` sorts a ParameterDict by *global* names (``yolov30_mobilenet0_conv0_weight``),
    whose counters depend on how many blocks the process built before; the optimizer states are
    stored by position in that order. Two builds of the same network could then disagree on which
    momentum belongs to which weight (seen when resuming in the same process). The structural
    order is the same for every build of the same architecture.
    """
    structural = net._collect_params_with_prefix()
    if params is None:
        return [structural[k] for k in sorted(structural)]
    wanted = {id(p) for p in params.values()}
    ordered = [structural[k] for k in sorted(structural) if id(structural[k]) in wanted]
    if len(ordered) != len(wanted):
        raise ValueError("build_trainer: params must be parameters of net")
    return ordered


def _start_dist(trainer: gluon.Trainer) -> None:
    """Create the kvstore and broadcast rank 0's weights now, then wait for every worker.

    Every parameter (including ``grad_req='null'`` ones such as BN running statistics) is
    initialized on the kvstore from a plain-layout *copy* of rank 0's array, and every worker then
    pulls that value into all of its device arrays. A copy is needed because a forward pass in
    inference mode (the one the scripts run to resolve shapes) lets MKL-DNN reorder convolution
    weights in place into a blocked layout; MXNet's dist kvstore cannot read such an array: the
    push of that key fails inside the engine without an error, rank 0 enters the init barrier
    anyway, and the server aborts on the other worker's pull (``init 0 first``).

    Broadcasting here rather than in the first ``trainer.step`` also keeps the replicas equal from
    the first update on (the step-time broadcast runs after the first forward/backward). Parameters
    must have known shapes (no deferred initialization) before a dist trainer is built. The worker's
    kvstore rank goes to stderr (``RANK_ANNOUNCEMENT``) so that the launcher can name it.
    """
    deferred = [p.name for p in trainer._params if p._deferred_init]
    if deferred:
        raise ValueError(f"build_trainer: with a dist kvstore all parameters need known shapes before the "
                         f"trainer is built; run one forward pass first (deferred: {deferred[:5]})")
    trainer._init_kvstore()
    kv = trainer._kvstore
    sys.stderr.write(RANK_ANNOUNCEMENT.format(rank=kv.rank, num_workers=kv.num_workers) + "\n")
    sys.stderr.flush()
    mx.nd.waitall()  # pending in-place layout changes land before the copies are taken
    for idx, param in enumerate(trainer._params):
        arrays = param.list_data()
        pulled = [mx.nd.empty(a.shape, ctx=a.context, dtype=a.dtype) for a in arrays]
        kv.broadcast(idx, arrays[0].copy(), pulled)
        for dst, src in zip(arrays, pulled):
            src.copyto(dst)
    mx.nd.waitall()
    trainer._params_to_init = []  # done: the first step must not initialize the keys again
    kv._barrier()


def release_kvstore(trainer: gluon.Trainer) -> bool:
    """Free ``trainer``'s dist kvstore now; call it once training has ended normally, on every worker.

    A ``gluon.Trainer`` and its parameters refer to each other, so once the training function
    returns the kvstore is freed by Python's cycle collector at an unpredictable point: during the
    script's remaining work, or during interpreter shutdown after MXNet's exit handler has stopped
    its engine. Freeing a dist kvstore is not a local matter: MXNet waits for the engine, meets the
    other workers at a barrier, rank 0 stops the servers, and ps-lite shuts down. Doing it here
    gives every run the same ending: each worker waits at that barrier until all have finished
    (rank 0 after its final evaluation), while the engine is still running. The trainer cannot
    step afterwards (its parameters stay usable for inference).

    Returns True when a dist kvstore was freed, False for any other kvstore (nothing to do) or when
    something else still holds the kvstore (logged as a warning: it is then freed at exit, as before).
    """
    kv = trainer._kvstore
    if not (isinstance(kv, mx.kvstore.KVStore) and kv.type.startswith("dist")):
        return False
    rank = kv.rank
    mx.nd.waitall()
    for param in trainer._params:
        param._trainer = None
    trainer._kvstore = None
    trainer._kvstore_params["kvstore"] = None
    alive = weakref.ref(kv)
    del kv
    gc.collect()
    if alive() is not None:
        _log.warning("dist kvstore of worker %d is still referenced after training; it will be freed at exit", rank)
        return False
    _log.info("dist kvstore of worker %d released (all workers met at its final barrier)", rank)
    return True


def update_count(trainer: gluon.Trainer) -> int:
    """The optimizer's ``num_update``: how many ``trainer.step`` calls so far (first update is 1)."""
    return int(trainer._optimizer.num_update)


def set_update_count(trainer: gluon.Trainer, num_update: int) -> None:
    """Make the next ``trainer.step`` use update index ``num_update + 1`` for every parameter.

    The LR scheduler is called with ``optimizer.num_update``, which MXNet derives from per-parameter
    counters (``_index_update_count``, one dict per device); all of them are set.
    """
    opt = trainer._optimizer
    opt.num_update = int(num_update)
    opt.begin_num_update = int(num_update)  # counters of parameters not updated yet start here
    for counts in opt._all_index_update_counts.values():
        for idx in list(counts):
            counts[idx] = int(num_update)
