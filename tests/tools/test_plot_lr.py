"""Tests of ``python -m gluon_bof.tools.plot_lr`` (paper Fig. 6a)."""
import re
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest

from gluon_bof.lr_scheduler import build_lr_scheduler
from gluon_bof.tools import plot_lr

SMALL = ["--batch-size", "8", "--num-samples", "100", "--epochs", "20", "--warmup-epochs", "2",
         "--lr-decay-epoch", "12,16", "--lr", "0.01"]


def test_curves_are_the_training_schedules():
    curves = plot_lr.schedule_curves(0.01, 20, 12, ("step", "cosine"), warmup_epochs=2,
                                     lr_decay_epoch=(12, 16))
    for mode in ("step", "cosine"):
        updates, rates = curves[mode]
        sched = build_lr_scheduler(0.01, 20, 12, mode, warmup_epochs=2, lr_decay_epoch=(12, 16))
        assert updates[0] == 1 and updates[-1] == 240
        assert np.all(np.diff(updates) > 0)
        np.testing.assert_array_equal(rates, [sched(int(u)) for u in updates])
    updates, step = curves["step"]
    # Both sides of each decay are drawn, so the drop sits at the right update.
    for edge, before, after in ((144, 0.01, 1e-3), (192, 1e-3, 1e-4)):
        assert step[updates == edge - 1][0] == pytest.approx(before)
        assert step[updates == edge][0] == pytest.approx(after)
    assert curves["cosine"][1][-1] == 0.0


def test_long_schedules_are_thinned_but_keep_warmup_and_decays():
    curves = plot_lr.schedule_curves(1e-3, 280, 1832, ("step",), warmup_epochs=2,
                                     lr_decay_epoch=(220, 250))
    updates, _ = curves["step"]
    assert len(updates) < 30000
    assert set(range(1, 2 * 1832 + 1)) <= set(updates.tolist())
    assert {220 * 1832 - 1, 220 * 1832, 250 * 1832 - 1, 250 * 1832} <= set(updates.tolist())


def test_figure_is_labelled():
    curves = plot_lr.schedule_curves(0.01, 20, 12, ("step", "cosine"), warmup_epochs=2,
                                     lr_decay_epoch=(12, 16))
    fig = plot_lr.make_figure(curves, 12, 2, "title", 0.1, (12, 16))
    full, zoom = fig.axes[:2]
    for ax in (full, zoom):
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "learning rate"
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["step (x0.1 at epochs 12, 16)", "cosine", "warmup (2 epochs)"]
    # The zoom panel shows the warmup: the first epochs only.
    assert max(line.get_xdata().max() for line in zoom.get_lines()) <= 6.0


def test_main_writes_a_png(tmp_path, capsys):
    out = tmp_path / "sub" / "lr.png"
    assert plot_lr.main(SMALL + ["--output", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(out)
    assert image.shape[0] >= 400 and image.shape[1] >= 1000
    # Something besides background was drawn: many distinct colours.
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50
    assert f"wrote {out}" in capsys.readouterr().out


def test_module_entry_point(tmp_path):
    out = tmp_path / "fig6a.png"
    proc = subprocess.run([sys.executable, "-m", "gluon_bof.tools.plot_lr", *SMALL, "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize("argv,message", [
    (["--batch-size", "200", "--num-samples", "100"], "--batch-size 200 exceeds --num-samples 100"),
    (["--batch-size", "0"], "--batch-size must be > 0, got 0"),
    (["--lr-decay-epoch", "160,x"], "--lr-decay-epoch must be comma-separated integers"),
    (["--output", "lr.jpg"], "must end in .png"),
    (["--modes", "step,exp"], "lr_mode must be one of"),
    (["--epochs", "100"], "decay epoch 160 .* at or past the end of training"),
    (["--warmup-epochs", "200"], "warmup_epochs=200 must be smaller than epochs=200"),
])
def test_bad_arguments_exit_with_a_message(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        plot_lr.main(argv + (["--output", str(tmp_path / "x.png")] if "--output" not in argv else []))
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
