"""Helpers for the transform tests: images/labels, and GluonCV run on scripted random draws.

GluonCV draws from the global ``np.random`` and ``random``; to feed its functions the exact
parameters our ops drew, the tests replace those modules *inside GluonCV's modules* by objects
that pop pre-recorded values (in GluonCV's draw order) and delegate everything else to numpy.
"""
import collections
import contextlib
import types
from typing import Sequence, Tuple

import numpy as np
import pytest

from gluon_bof.data.transforms.bbox import check_label, clip_boxes
from gluon_bof.data.transforms.geometry import crop, expand, flip, resize
from gluon_bof.data.transforms.image import ColorParams, color_distort, normalize
from gluon_bof.data.transforms.presets import MEAN, STD, YOLO3Params


class Script:
    """Queue of draws; any random method called on it pops the next value and checks the call."""

    def __init__(self):
        self.queue = collections.deque()

    def push(self, kind, value):
        self.queue.append((kind, value))

    def pop(self, kind):
        assert self.queue, f"GluonCV made an unexpected extra draw ({kind})"
        expected, value = self.queue.popleft()
        assert expected == kind, f"GluonCV drew {kind} where the script has {expected}"
        return value


def scripted_modules(script):
    """Stand-ins for ``numpy`` (with a scripted ``.random``) and for ``random``."""
    fake_np_random = types.SimpleNamespace(
        uniform=lambda *a, **k: script.pop("np.uniform"),
        randint=lambda *a, **k: script.pop("np.randint"),
        choice=lambda *a, **k: script.pop("np.choice"),
    )

    class FakeNumpy(types.ModuleType):
        random = fake_np_random

        def __getattr__(self, name):
            return getattr(np, name)

    fake_random = types.SimpleNamespace(
        uniform=lambda *a: script.pop("random.uniform"),
        randint=lambda *a: script.pop("random.randint"),
        randrange=lambda *a: script.pop("random.randrange"),
    )
    return FakeNumpy("numpy"), fake_random


@contextlib.contextmanager
def gluoncv_script():
    """Install scripted draws in GluonCV's transform modules; yields the :class:`Script`.

    A context manager rather than a fixture so that each hypothesis example gets a fresh one."""
    from gluoncv.data.transforms import image as gimage
    from gluoncv.data.transforms.experimental import image as gximage
    from gluoncv.data.transforms.presets import rcnn as grcnn
    from gluoncv.data.transforms.presets import yolo as gyolo

    script = Script()
    fake_np, fake_random = scripted_modules(script)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for module in (gimage, gximage, gyolo, grcnn):
            monkeypatch.setattr(module, "np", fake_np, raising=False)
            if hasattr(module, "random"):
                monkeypatch.setattr(module, "random", fake_random)
        script.monkeypatch = monkeypatch
        yield script
    assert not script.queue, f"GluonCV did not consume the draws {list(script.queue)}"


def push_color(script, params):
    """Script GluonCV's ``random_color_distort`` draws for :class:`ColorParams` ``params``."""
    def gate(value):
        script.push("np.uniform", 1.0 if value is not None else 0.0)
        if value is not None:
            script.push("np.uniform", value)

    gate(params.brightness)
    script.push("np.randint", 1 if params.contrast_first else 0)
    order = ("contrast", "saturation", "hue") if params.contrast_first else ("saturation", "hue", "contrast")
    for name in order:
        value = getattr(params, name)
        script.push("np.uniform", 1.0 if value is not None else 0.0)
        if value is not None:
            script.push("random.uniform" if name == "hue" else "np.uniform", value)


def make_sample(rng, h, w, n, extra=2):
    """A random uint8 image and a label of ``n`` valid boxes plus ``extra`` columns (row ids first)."""
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    x0 = rng.uniform(0, w - 2, n)
    y0 = rng.uniform(0, h - 2, n)
    x1 = np.minimum(x0 + rng.uniform(1, w, n), w)
    y1 = np.minimum(y0 + rng.uniform(1, h, n), h)
    cols = [x0, y0, x1, y1, np.arange(n)] + [rng.uniform(0, 1, n) for _ in range(extra - 1)]
    return img, np.stack(cols, axis=1).astype(np.float32).reshape(n, 4 + extra)


def assert_valid_boxes(label, width, height):
    """Boxes inside ``[0, width] x [0, height]``, positive size, finite."""
    assert label.dtype == np.float32
    assert np.isfinite(label).all()
    boxes = label[:, :4]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width + 1e-3).all() and (boxes[:, 3] <= height + 1e-3).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def assert_extra_columns_carried(out, original):
    """Every output row's non-box columns equal those of the input row with the same id (col 4)."""
    ids = out[:, 4].astype(int)
    np.testing.assert_array_equal(out[:, 4:], original[ids, 4:])
    assert len(np.unique(ids)) == len(ids)


def yolo3_train_reference(img: np.ndarray, label: np.ndarray, params: YOLO3Params,
                          shape: Tuple[int, int], mean: Sequence[float] = MEAN,
                          std: Sequence[float] = STD) -> Tuple[np.ndarray, np.ndarray]:
    """The straightforward (slow) order of :class:`YOLO3TrainTransform` for fixed parameters:
    distort the whole image, build the full expanded canvas, crop, resize, flip, normalise.
    ``label`` is the input label (image coordinates). Used to test the fast path."""
    out_h, out_w = shape
    label = check_label(label)
    img = color_distort(img, params.color if params.color is not None else ColorParams())
    if params.expand is not None:
        img, label = expand(img, label, params.expand[0], params.expand[1], [m * 255 for m in mean])
    img, label = crop(img, label, params.window)
    img, label = resize(img, label, (out_w, out_h), params.interp)
    img, label = flip(img, label, params.flip)
    return normalize(img, mean, std), clip_boxes(label, out_w, out_h)
