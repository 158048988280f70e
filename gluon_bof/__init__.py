"""gluon_bof: the "Bag of Freebies for Training Object Detection Neural Networks" paper in MXNet Gluon.

Layout (see docs/index.md): ``data`` (datasets, transforms, mixup, loaders), ``model`` (backbones,
detectors, targets, losses), ``engine`` (parallelism, checkpoints, logging, the train loop),
``metrics`` (VOC and COCO mAP), ``tools`` (plots, export, dataset validation), and
``lr_scheduler`` (GluonCV-compatible warmup/cosine/step schedules).
"""
import os as _os

from ._mxnet_check import check_mxnet_install as _check_mxnet_install

__version__ = "0.1.0"

if not _os.environ.get("GLUON_BOF_SKIP_MXNET_CHECK"):
    _check_mxnet_install()
