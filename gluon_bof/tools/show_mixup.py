"""Pictures of detection mixup: the paper's Figure 3 (two images blended, geometry preserved, boxes of
both kept with their weights) and Figure 4 (Beta densities of the blend ratio).

``python -m gluon_bof.tools.show_mixup --out figures/`` writes ``mixup_example.png`` and
``mixup_beta.png``. Images come from the synthetic ``ShapesDetection`` set by default, or from Pascal
VOC with ``--voc-root``.
"""
import argparse
import math
import os
from typing import Any, Optional, Sequence

import numpy as np

from ..data.mixup import MixupDetection
from ..data.rng import sample_rng

BETA_CURVES = ((0.2, 0.2, "tab:red", "B(0.2, 0.2): image classification"),
               (1.0, 1.0, "tab:blue", "B(1, 1): uniform"),
               (1.5, 1.5, "tab:orange", "B(1.5, 1.5): detection (paper)"))


def beta_pdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """Density of Beta(a, b) at ``x`` in (0, 1), computed in log space."""
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    return np.exp(log_norm + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x))


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _draw_boxes(ax: Any, label: np.ndarray, color: str, class_names: Optional[Sequence[str]],
                show_weight: bool) -> None:
    from matplotlib.patches import Rectangle
    for row in label:
        x0, y0, x1, y1, cls = row[:5]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2))
        name = class_names[int(cls)] if class_names is not None and 0 <= cls < len(class_names) else str(int(cls))
        text = f"{name} {row[-1]:.2f}" if show_weight else name
        ax.text(x0, y0, text, color="white", fontsize=8, va="bottom",
                bbox=dict(facecolor=color, alpha=0.8, pad=1, edgecolor="none"))


def plot_mixup(dataset: Any, index: int, partner: int, lam: float, path: str,
               class_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Write the Figure-3 style picture: image A, image B, and their blend with per-box weights.

    Parameters
    ----------
    dataset : Sequence
        Items ``(HxWx3 uint8, (N, 6) float32)``.
    index, partner : int
        The two items to blend.
    lam : float
        Weight of item ``index`` in [0, 1].
    path : str
        Output PNG.
    class_names : sequence of str, optional
        Names printed on the boxes (class ids otherwise).

    Returns
    -------
    numpy.ndarray
        The ``(N1 + N2, 7)`` mixed label drawn, last column the weights.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"show_mixup: lam must be in [0, 1], got {lam}")
    mixer = MixupDetection(dataset)
    img, label = mixer.mix(index, lam, partner)
    n1 = len(mixer[index][1]) if lam < 1.0 else len(label)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
    for ax, i, title, color in ((axes[0], index, f"image A (#{index})", "tab:blue"),
                                (axes[1], partner, f"image B (#{partner})", "tab:orange")):
        a_img, a_label = mixer[i]
        ax.imshow(a_img)
        _draw_boxes(ax, a_label, color, class_names, show_weight=False)
        ax.set_title(title)
    axes[2].imshow(img)
    _draw_boxes(axes[2], label[:n1], "tab:blue", class_names, show_weight=True)
    _draw_boxes(axes[2], label[n1:], "tab:orange", class_names, show_weight=True)
    axes[2].set_title(f"mixup {lam:.2f} : {1 - lam:.2f} (box weight shown)")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return label


def plot_beta(path: str, curves: Sequence[tuple] = BETA_CURVES) -> None:
    """Write the Figure-4 style plot of the Beta densities ``curves = ((a, b, color, text), ...)``."""
    plt = _pyplot()
    x = np.linspace(1e-3, 1 - 1e-3, 999)
    fig, ax = plt.subplots(figsize=(6, 4))
    for a, b, color, text in curves:
        ax.plot(x, beta_pdf(x, a, b), color=color, label=text)
    ax.set_ylim(0, 3)
    ax.set_xlabel("blend ratio lambda")
    ax.set_ylabel("density")
    ax.set_title("Mixup ratio distributions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _load_dataset(args: argparse.Namespace) -> Any:
    if args.voc_root:
        from ..data.voc import VOCDetection
        return VOCDetection(args.voc_root, splits=[(2007, args.voc_split)])
    from ..data.shapes import ShapesDetection
    return ShapesDetection(args.num_images, seed=args.seed, split="train")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m gluon_bof.tools.show_mixup", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="figures", help="output folder (created)")
    p.add_argument("--index", type=int, default=0, help="first image")
    p.add_argument("--partner", type=int, default=None, help="second image (random if omitted)")
    p.add_argument("--lam", type=float, default=None, help="blend ratio (drawn from Beta if omitted)")
    p.add_argument("--alpha", type=float, default=1.5)
    p.add_argument("--beta", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=8, help="size of the synthetic dataset")
    p.add_argument("--voc-root", default=None, help="use Pascal VOC 2007 from this folder")
    p.add_argument("--voc-split", default="trainval")
    args = p.parse_args(argv)
    dataset = _load_dataset(args)
    n = len(dataset)
    if n < 2:
        p.error(f"the dataset needs at least 2 images, it has {n}")
    for name in ("index", "partner"):
        v = getattr(args, name)
        if v is not None and not 0 <= v < n:
            p.error(f"--{name} must be in [0, {n - 1}], got {v}")
    lam, partner = MixupDetection(dataset, args.alpha, args.beta).draw(args.index, sample_rng(args.seed, 0, args.index))
    lam = args.lam if args.lam is not None else lam
    partner = args.partner if args.partner is not None else partner
    if partner == args.index:
        p.error("--partner must differ from --index")
    os.makedirs(args.out, exist_ok=True)
    names = getattr(dataset, "classes", None) or getattr(dataset, "CLASSES", None)
    ex = os.path.join(args.out, "mixup_example.png")
    label = plot_mixup(dataset, args.index, partner, lam, ex, class_names=names)
    beta = os.path.join(args.out, "mixup_beta.png")
    plot_beta(beta)
    print(f"wrote {ex} (images {args.index} + {partner}, lambda {lam:.3f}, {len(label)} boxes) and {beta}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
