"""What the training and evaluation scripts need from a detector, and the parts both detectors share.

A recipe joins a dataset, a model of ``gluon_bof.model``, a metric of ``gluon_bof.metrics`` and the
training engine. :class:`DetectorRecipe` holds everything that is the same for YOLOv3 and Faster
R-CNN: the metric choice, the validation function, the plain-BatchNorm evaluation twin of a
SyncBatchNorm training net, the hybridize rule, the detection picture and the final evaluation.
A detector subclasses it and fills in its flags, network, loaders, loss task, LR schedule and
inference preprocessing.
"""
import argparse
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import gluon

from ..engine import dist_info
from . import weights as _weights
from ..engine.context import norm_layer_for
from ..engine.evaluate import Detections, clip_to_input, copy_weights, evaluate
from ..metrics import COCODetectionMetric, VOC07MApMetric
from ..metrics.results import build_results, save_results_json
from ..viz.draw import draw_detections, save_grid

_log = logging.getLogger("gluon_bof.recipes")

# A detector's inference on one image: ``image (H, W, 3) uint8 RGB -> (ids (N,), scores (N,), boxes (N, 4))``
# with boxes in the image's own pixels.
ImageDetector = Callable[[np.ndarray], Detections]


class DetectorRecipe:
    """Base of the per-detector recipes (see module docstring).

    Subclasses set ``name`` (``'yolo3'``), ``train_script`` and ``eval_script`` and implement the
    methods that raise ``NotImplementedError``.
    """

    name = ""
    train_script = ""
    eval_script = ""
    # Hybridize the training net with static memory (faster; the input shapes of a batch must repeat).
    static_alloc = False
    # Validate a separate plain-BatchNorm twin even without SyncBatchNorm (when inference settings
    # such as NMS or hybridization must not touch the training net).
    separate_eval_net = False

    # ---- flags ------------------------------------------------------------------------------------
    def add_train_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The detector's model, schedule and freebie flags of its training script."""
        raise NotImplementedError

    def add_model_arguments(self, group: argparse._ArgumentGroup) -> None:
        """The flags that choose the network and its input size (training and evaluation)."""
        raise NotImplementedError

    def fill_defaults(self, args: argparse.Namespace) -> None:
        """Values of flags whose default depends on other flags (called before any check)."""
        _weights.fill_pretrained_default(args, self.backbone_store_name(args))

    def backbone_store_name(self, args: argparse.Namespace) -> Optional[str]:
        """GluonCV's model-store name of the ImageNet backbone the flags select (None: none exists)."""
        return None

    def check_weight_files(self, args: argparse.Namespace) -> None:
        """Find and SHA-1-check the ``--pretrained-base``/``--finetune-from`` files; a missing or bad file
        ends the run (SystemExit) before any training work. Nothing to do with ``--resume``."""
        _weights.check_weight_files(args, self.backbone_store_name(args), self.model_name(args))

    def check_arguments(self, parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
        """Detector-specific usage errors (called after the shared checks)."""

    # ---- network ----------------------------------------------------------------------------------
    def model_name(self, args: argparse.Namespace) -> str:
        """The model-zoo name the flags select (GluonCV's where it has one)."""
        raise NotImplementedError

    def build_net(self, args: argparse.Namespace, classes: Sequence[str], norm_layer: Any,
                  norm_kwargs: Dict[str, Any], per_device_batch: int = 1) -> gluon.HybridBlock:
        """The network with these classes and this BatchNorm class (from :func:`norm_layer_for`)."""
        raise NotImplementedError

    def wants_syncbn(self, args: argparse.Namespace) -> bool:
        """Whether the flags ask for synchronized BatchNorm."""
        raise NotImplementedError

    def init_size(self, net: gluon.HybridBlock, args: argparse.Namespace) -> Tuple[int, int]:
        """``(H, W)`` of the dummy forward that resolves deferred parameter shapes."""
        raise NotImplementedError

    def train_params(self, net: gluon.HybridBlock) -> Optional[gluon.ParameterDict]:
        """The parameters the optimizer updates (None: all); the others get ``grad_req='null'``."""
        return None

    def can_hybridize(self, args: argparse.Namespace) -> bool:
        """Whether the training net may be hybridized (GluonCV's ``--disable-hybridization``)."""
        return not getattr(args, "disable_hybridization", False)

    # ---- training ---------------------------------------------------------------------------------
    def train_loader(self, args: argparse.Namespace, dataset: Any, net: gluon.HybridBlock) -> Any:
        """The training loader (``iter_epoch``/``num_batches``, mixup switch as an option)."""
        raise NotImplementedError

    def lr_scheduler(self, args: argparse.Namespace, iters_per_epoch: int) -> Any:
        """The LR schedule over updates."""
        raise NotImplementedError

    def task(self, args: argparse.Namespace) -> Any:
        """The :class:`gluon_bof.engine.TrainTask` (batch split and loss components)."""
        raise NotImplementedError

    def epoch_options(self, args: argparse.Namespace, task: Any, epoch: int) -> Dict[str, Any]:
        """Loader options of ``epoch``: mixup on for all but the last ``--no-mixup-epochs`` epochs."""
        return {"mixup": bool(args.mixup and epoch < args.epochs - args.no_mixup_epochs)}

    # ---- evaluation -------------------------------------------------------------------------------
    def val_loader(self, args: argparse.Namespace, dataset: Any, net: gluon.HybridBlock, batch_size: int,
                   num_workers: int) -> Any:
        """Validation batches ``(images, labels (B,M,6) padded with -1, *extras)`` in dataset order,
        labels in the coordinates :meth:`postprocess` maps detections to."""
        raise NotImplementedError

    def postprocess(self, ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, images: np.ndarray,
                    extras: Sequence[np.ndarray]) -> Detections:
        """Detections of a validation batch in the labels' coordinates (default: clipped to the input)."""
        return clip_to_input(ids, scores, boxes, images, extras)

    def metric_data_shape(self, args: argparse.Namespace) -> Optional[Tuple[int, int]]:
        """Input size the COCO metric rescales from (None: detections are in original coordinates)."""
        return None

    def results_extra(self, args: argparse.Namespace, net: gluon.HybridBlock) -> Dict[str, Any]:
        """Evaluation settings stored in the results file (input size...)."""
        return {}

    def default_val_batch_size(self, args: argparse.Namespace, num_devices: int) -> int:
        """Validation batch when ``--val-batch-size`` is not given."""
        return args.batch_size

    def image_detector(self, net: gluon.HybridBlock, args: argparse.Namespace,
                       ctxs: Sequence[mx.Context]) -> ImageDetector:
        """Inference on one image in its own pixels (the detection picture, ``tools.detect``)."""
        raise NotImplementedError

    # ---- shared -----------------------------------------------------------------------------------
    def load_weights(self, net: gluon.HybridBlock, path: str, ctxs: Sequence[mx.Context]) -> None:
        """Load a ``.params`` file (ours or GluonCV's) strictly; a file of another network or class
        count is an error that names the file and the parameters that do not fit."""
        try:
            net.load_parameters(path, ctx=list(ctxs))
        except (AssertionError, ValueError, mx.MXNetError) as err:
            raise SystemExit("--params %s does not fit %s with %d classes: %s" % (
                path, type(net).__name__, len(getattr(net, "classes", ())), str(err).splitlines()[0]))

    def build_training_nets(self, args: argparse.Namespace, classes: Sequence[str],
                            ctxs: Sequence[mx.Context]) -> Tuple[gluon.HybridBlock, gluon.HybridBlock]:
        """``(net, eval_net)``: the training net, initialized on ``ctxs`` and hybridized when allowed,
        and the net validation runs on.

        SyncBatchNorm over several devices needs every device in each forward pass, so validation
        then runs a plain-BatchNorm twin with the same parameter names (weights copied in before
        each validation), as it does when the recipe sets ``separate_eval_net``; otherwise
        ``eval_net`` is ``net``. SyncBatchNorm's per-device threads cannot build a cached graph
        concurrently, so such a net stays imperative.
        """
        ctxs = list(ctxs)
        norm_layer, norm_kwargs = norm_layer_for(len(ctxs), self.wants_syncbn(args))
        per_device = max(1, args.batch_size // (len(ctxs) * dist_num_workers(args)))  # --batch-size is global
        resume = bool(getattr(args, "resume", ""))
        finetune = None if resume else _weights.finetune_source(args, self.model_name(args))
        net = self.build_net(args, finetune.classes if finetune else classes, norm_layer, norm_kwargs, per_device)
        synced = norm_layer is gluon.contrib.nn.SyncBatchNorm
        eval_net = net
        if synced or self.separate_eval_net:
            eval_net = self.build_net(args, classes, gluon.nn.BatchNorm, {}, per_device)
        for block in (net, eval_net) if eval_net is not net else (net,):
            block.initialize(ctx=ctxs)
            h, w = self.init_size(block, args)
            block(mx.nd.zeros((1, 3, h, w), ctx=ctxs[0]))
        if resume:
            _log.info("initial weights: from the checkpoint (--resume); no pretrained or fine-tuning file loaded")
        elif finetune:
            _weights.load_finetune(net, finetune, classes, ctxs)
            h, w = self.init_size(net, args)
            net(mx.nd.zeros((1, 3, h, w), ctx=ctxs[0]))
        else:
            _weights.load_backbone(net, args)
        train_params = self.train_params(net)
        if train_params is not None:
            for param in net.collect_params().values():
                if param.name not in train_params:
                    param.grad_req = "null"
        _weights.log_frozen(net)
        if self.can_hybridize(args) and not synced:
            net.hybridize(static_alloc=self.static_alloc)
        return net, eval_net

    @staticmethod
    def build_metric(dataset_name: str, val_dataset: Any, data_shape: Optional[Tuple[int, int]] = None) -> Any:
        """VOC07 11-point mAP at IoU 0.5 (voc, custom, shapes) or COCO mAP (coco), as GluonCV."""
        if dataset_name == "coco":
            return COCODetectionMetric(val_dataset, data_shape=data_shape)
        return VOC07MApMetric(iou_thresh=0.5, class_names=list(val_dataset.classes))

    def make_validate_fn(self, args: argparse.Namespace, eval_net: gluon.HybridBlock,
                         train_net: gluon.HybridBlock, val_dataset: Any, model_name: str,
                         ctxs: Sequence[mx.Context], batch_size: int, num_workers: int = 0,
                         max_batches: Optional[int] = None) -> Callable:
        """``validate_fn(net, epoch) -> (names, values, results)`` for :func:`gluon_bof.engine.fit`."""
        loader = self.val_loader(args, val_dataset, eval_net, batch_size, num_workers)
        metric = self.build_metric(args.dataset, val_dataset, self.metric_data_shape(args))
        split = args.val_splits or "val"

        def validate(net: gluon.Block, epoch: int):
            if eval_net is not train_net:
                copy_weights(train_net, eval_net, ctxs)
            self.prepare_for_inference(eval_net, args)
            names, values = evaluate(eval_net, loader, metric, ctxs, postprocess=self.postprocess,
                                     max_batches=max_batches)
            results = build_results(metric, dataset=args.dataset, split=split, model=model_name, epoch=epoch,
                                    extra=self.results_extra(args, eval_net))
            return names, values, results

        return validate

    def prepare_for_inference(self, net: gluon.HybridBlock, args: argparse.Namespace) -> None:
        """GluonCV's validation settings (NMS) and hybridization before evaluating."""
        if self.can_hybridize(args):
            net.hybridize()

    def detection_picture(self, net: gluon.HybridBlock, args: argparse.Namespace, val_dataset: Any, path: str,
                          ctxs: Sequence[mx.Context], count: int = 6, score_thresh: float = 0.3) -> str:
        """Draw the detections of ``net`` on the first ``count`` validation images into one picture,
        with the ground truth drawn in its own style."""
        detect = self.image_detector(net, args, ctxs)
        drawn: List[np.ndarray] = []
        for index in range(min(count, len(val_dataset))):
            image, label = val_dataset[index]
            ids, scores, boxes = detect(image)
            drawn.append(draw_detections(image, boxes, ids, scores, list(val_dataset.classes),
                                         score_thresh=score_thresh, gt_boxes=label[:, :4]))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return save_grid(drawn, path)


def final_evaluation(validate: Callable, net: Any, trainer: Any, epochs: int, save_dir: str, dataset: str,
                     model_name: str, best_map: float) -> float:
    """Evaluate the trained weights once more, write ``results_final.json`` (rank 0) and print the mAP.

    ``validate`` is the ``validate_fn`` given to :func:`gluon_bof.engine.fit`; its results dict is
    written so the final weights have a results file even when the last epoch was not a validation
    epoch. Returns the final mAP (VOC07 or COCO, as ``validate`` computes it); in a ``dist_sync`` run
    only rank 0 evaluates (the others return NaN), as only rank 0 validates during training.
    """
    if dist_info(trainer)[0] != 0:
        return float("nan")
    _, values, results = validate(net, epochs - 1)
    save_results_json(os.path.join(save_dir, "results_final.json"), results)
    final_map = float(values[-1])
    print("final %s %s on %s: %.4f (best during training %.4f)" % (
        "COCO mAP" if dataset == "coco" else "VOC07 mAP", model_name, dataset, final_map, best_map))
    return final_map


def dist_num_workers(args: argparse.Namespace) -> int:
    """Workers of a dist kvstore run (``DMLC_NUM_WORKER``, set by ``gluon_bof.launch``), else 1."""
    if str(getattr(args, "kvstore", "")).startswith("dist"):
        return max(1, int(os.environ.get("DMLC_NUM_WORKER", "1")))
    return 1
