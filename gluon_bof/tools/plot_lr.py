"""Figure 6a of the paper: the step and cosine learning-rate schedules with warmup.

Usage::

    python -m gluon_bof.tools.plot_lr --batch-size 64 --epochs 200 --num-samples 16551 \\
        --warmup-epochs 2 --output lr_schedules.png

The defaults are YOLOv3 on VOC07+12 trainval (16551 images, batch 64 -> 258 updates per epoch,
lr 1e-3, decays at epochs 160 and 180), the setting of the paper's figure. The schedules are the
ones training uses (``gluon_bof.lr_scheduler.build_lr_scheduler``), evaluated at the optimizer's
update indices ``1 .. epochs * updates_per_epoch``. The PNG has two panels: the whole training, and
the first epochs, where the warmup is visible.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from gluon_bof.lr_scheduler import build_lr_scheduler

# Points per curve kept for drawing beyond the warmup and the decay edges, which are always kept.
_MAX_POINTS = 20000
_STYLES = {"step": ("tab:blue", "-"), "cosine": ("tab:orange", "--"), "poly": ("tab:green", ":"),
           "linear": ("tab:red", "-."), "constant": ("tab:gray", "-")}


def schedule_curves(lr: float, epochs: int, iters_per_epoch: int,
                    modes: Sequence[str] = ("step", "cosine"), warmup_epochs: int = 0,
                    warmup_lr: float = 0.0, lr_decay: float = 0.1,
                    lr_decay_epoch: Sequence[int] = (160, 180)
                    ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Learning rate of each schedule at the update indices worth drawing.

    Parameters
    ----------
    lr, epochs, iters_per_epoch, warmup_epochs, warmup_lr, lr_decay, lr_decay_epoch
        As in ``build_lr_scheduler`` (which validates them).
    modes : sequence of str
        Schedules after warmup, e.g. ``('step', 'cosine')``.

    Returns
    -------
    dict
        ``mode -> (updates, rates)``: ``updates`` (int64, shape (P,)) are optimizer update indices in
        ``[1, epochs * iters_per_epoch]``, sorted; ``rates`` (float64, (P,)) the learning rate used
        at each. Every warmup update, the updates on both sides of each decay and the last update
        are included, plus up to 20000 evenly spread ones.
    """
    total = epochs * iters_per_epoch
    edges = [e * iters_per_epoch + d for e in lr_decay_epoch for d in (-1, 0)]
    updates = np.unique(np.concatenate([
        np.arange(1, min(warmup_epochs * iters_per_epoch + 2, total + 1)),
        np.linspace(1, total, min(total, _MAX_POINTS)).round(),
        np.clip(edges, 1, total), [total]]).astype(np.int64))
    curves = {}
    for mode in modes:
        sched = build_lr_scheduler(lr, epochs, iters_per_epoch, mode, warmup_epochs=warmup_epochs,
                                   warmup_lr=warmup_lr, lr_decay=lr_decay,
                                   lr_decay_epoch=lr_decay_epoch)
        curves[mode] = (updates, np.array([sched(int(u)) for u in updates], dtype=np.float64))
    return curves


def _legend_label(mode: str, lr_decay: float, lr_decay_epoch: Sequence[int]) -> str:
    if mode == "step":
        return f"step (x{lr_decay:g} at epochs {', '.join(str(e) for e in lr_decay_epoch)})"
    return mode


def make_figure(curves: Dict[str, Tuple[np.ndarray, np.ndarray]], iters_per_epoch: int,
                warmup_epochs: int, title: str, lr_decay: float = 0.1,
                lr_decay_epoch: Sequence[int] = (160, 180)):
    """A two-panel ``matplotlib.figure.Figure`` (whole run; first epochs) of the given curves.

    The x axes are in epochs (update index / ``iters_per_epoch``; the whole-run panel also shows
    update indices on top), the y axes in learning rate.
    Built without pyplot, so no global figure state and no display are involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(11, 4.5), dpi=100, constrained_layout=True)
    FigureCanvasAgg(fig)
    full, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    zoom_epochs = max(3 * warmup_epochs, 5)
    for mode, (updates, rates) in curves.items():
        epochs_axis = updates / iters_per_epoch
        label = _legend_label(mode, lr_decay, lr_decay_epoch)
        color, style = _STYLES.get(mode, (None, "-"))
        full.plot(epochs_axis, rates, style, label=label, color=color, linewidth=1.8)
        keep = epochs_axis <= zoom_epochs
        zoom.plot(epochs_axis[keep], rates[keep], style, label=label, color=color, linewidth=1.8)
    zoom.set_title(f"warmup: first {zoom_epochs} epochs", fontsize=10)
    for ax in (full, zoom):
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.grid(True, alpha=0.3)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.set_ylim(bottom=0)
        if warmup_epochs > 0:
            ax.axvspan(0, warmup_epochs, color="0.85", zorder=0,
                       label=f"warmup ({warmup_epochs:g} epoch{'' if warmup_epochs == 1 else 's'})")
        ax.set_xlim(0, None)
    top = full.secondary_xaxis("top", functions=(lambda e: e * iters_per_epoch,
                                                 lambda u: u / iters_per_epoch))
    top.set_xlabel("optimizer update (iteration)")
    full.legend(loc="lower left", bbox_to_anchor=(0.06, 0.04))
    zoom.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    return fig


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (flags named as in GluonCV's train_yolo3.py where they exist)."""
    parser = argparse.ArgumentParser(
        prog="python -m gluon_bof.tools.plot_lr",
        description="Plot step and cosine learning-rate schedules with warmup (paper Fig. 6a).")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size (default 64)")
    parser.add_argument("--num-samples", type=int, default=16551,
                        help="training images; default 16551 = VOC07+12 trainval")
    parser.add_argument("--epochs", type=int, default=200, help="training epochs (default 200)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--warmup-epochs", type=int, default=2, help="warmup epochs (default 2)")
    parser.add_argument("--warmup-lr", type=float, default=0.0, help="warmup start rate (default 0)")
    parser.add_argument("--lr-decay", type=float, default=0.1, help="step decay factor (default 0.1)")
    parser.add_argument("--lr-decay-epoch", type=str, default="160,180",
                        help="comma-separated absolute epochs of the step decays (default 160,180)")
    parser.add_argument("--modes", type=str, default="step,cosine",
                        help="comma-separated schedules after warmup (default step,cosine)")
    parser.add_argument("--output", "-o", type=Path, default=Path("lr_schedules.png"),
                        help="PNG file to write (default lr_schedules.png)")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and check ``argv``; a bad value exits (status 2) with a message naming the flag."""
    args = parser.parse_args(argv)

    for flag in ("batch_size", "num_samples", "epochs"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be > 0, got {getattr(args, flag)}")
    if args.batch_size > args.num_samples:
        parser.error(f"--batch-size {args.batch_size} exceeds --num-samples {args.num_samples}: "
                     "an epoch would have no update")
    try:
        args.lr_decay_epoch = [int(e) for e in args.lr_decay_epoch.split(",") if e.strip()]
    except ValueError:
        parser.error(f"--lr-decay-epoch must be comma-separated integers, got {args.lr_decay_epoch!r}")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes:
        parser.error("--modes is empty")
    if args.output.suffix.lower() != ".png":
        parser.error(f"--output {args.output} must end in .png")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Write the PNG; return 0 (argument errors exit with status 2 and a message)."""
    parser = build_parser()
    args = parse_args(parser, argv)
    iters_per_epoch = args.num_samples // args.batch_size
    try:
        curves = schedule_curves(args.lr, args.epochs, iters_per_epoch, args.modes,
                                 warmup_epochs=args.warmup_epochs, warmup_lr=args.warmup_lr,
                                 lr_decay=args.lr_decay, lr_decay_epoch=args.lr_decay_epoch)
    except ValueError as err:
        parser.error(str(err))
    title = (f"Learning-rate schedules: batch {args.batch_size}, {args.num_samples} images "
             f"-> {iters_per_epoch} updates/epoch, {args.epochs} epochs, peak lr {args.lr:g}")
    fig = make_figure(curves, iters_per_epoch, args.warmup_epochs, title, args.lr_decay,
                      args.lr_decay_epoch)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, format="png")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
