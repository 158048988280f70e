"""Evaluate a YOLOv3 ``.params`` file (saved by gluon_bof or by GluonCV) and write its results file.

    python eval_yolo3.py --network darknet53 --dataset voc --data-shape 416 \\
        --params yolo3_darknet53_voc-f5ece5ce.params --results results_voc07.json

Protocol as in GluonCV's ``train_yolo3.py`` validation: square resize to ``--data-shape``, NMS 0.45
over the top 400 candidates, 100 detections per image, boxes clipped to the input; VOC07 11-point
mAP at IoU 0.5 in resized coordinates (voc, custom, shapes), or COCO mAP in original coordinates.
"""
import argparse
import os
from typing import Optional, Sequence


from gluon_bof.data.factory import DATASETS
from gluon_bof.engine.cli import contexts_from_args, datasets_from_args
from gluon_bof.engine.evaluate import evaluate
from gluon_bof.engine.yolo3 import build_metric, build_net
from gluon_bof.data.pipelines import build_yolo3_val_loader
from gluon_bof.metrics.results import build_results, save_results_json
from gluon_bof.metrics.report import ap_table_markdown


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--params", "--pretrained", dest="params", required=True,
                   help=".params file to evaluate (gluon_bof checkpoint weights or a GluonCV model-zoo file)")
    p.add_argument("--network", default="darknet53", help="darknet53, mobilenet1.0, mobilenet0.25 or tiny")
    p.add_argument("--tiny-width", type=float, default=0.25, help="--network tiny: backbone width multiplier")
    p.add_argument("--tiny-head-width", type=float, default=0.125, help="--network tiny: detection-block width")
    p.add_argument("--dataset", default="voc", choices=DATASETS)
    p.add_argument("--dataset-root", default=None)
    p.add_argument("--classes", default=None, help="comma-separated class names (--dataset custom)")
    p.add_argument("--val-splits", default=None, help="e.g. 2007_test or instances_val2017")
    p.add_argument("--shapes-val-size", type=int, default=300)
    p.add_argument("--data-shape", type=int, default=416)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", "-j", dest="num_workers", type=int, default=2)
    p.add_argument("--gpus", default=None, help="GPU ids (default: GPU 0 if there is one, else the CPU)")
    p.add_argument("--ctx", default=None, help="explicit contexts, e.g. cpu:0")
    p.add_argument("--results", default=None, help="results JSON (default: next to the params file)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = parse_args(argv)
    if not os.path.isfile(args.params):
        raise SystemExit("eval_yolo3.py: --params %s: no such file" % args.params)
    ctxs = contexts_from_args(args)
    _, val_set = datasets_from_args(args)
    widths = {"width": args.tiny_width, "head_width": args.tiny_head_width} if args.network == "tiny" else {}
    name, net = build_net(args.network, args.dataset, val_set.classes, **widths)
    net.load_parameters(args.params, ctx=ctxs)
    net.set_nms(nms_thresh=0.45, nms_topk=400, post_nms=100)
    net.hybridize()
    loader = build_yolo3_val_loader(val_set, args.data_shape, batch_size=args.batch_size,
                                    num_workers=args.num_workers)
    metric = build_metric(args.dataset, val_set, args.data_shape)
    evaluate(net, loader, metric, ctxs)
    results = build_results(metric, dataset=args.dataset, split=args.val_splits or "val", model=name,
                            checkpoint=args.params, extra={"data_shape": args.data_shape})
    path = args.results or os.path.splitext(args.params)[0] + "_results.json"
    save_results_json(path, results)
    print(ap_table_markdown(results))
    print("results written to %s" % path)
    return float(results["map"])


if __name__ == "__main__":
    main()
