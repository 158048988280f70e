"""Tests of gluon_bof.tools.show_mixup: the Figure 3 / Figure 4 pictures."""
import numpy as np
import pytest

from gluon_bof.tools import show_mixup


class _Toy:
    classes = ("cat", "dog")

    def __init__(self):
        self.items = [(np.full((60, 80, 3), 200, np.uint8), np.array([[5, 5, 40, 30, 0, 0]], np.float32)),
                      (np.full((70, 50, 3), 50, np.uint8),
                       np.array([[10, 20, 30, 60, 1, 0], [0, 0, 9, 9, 0, 0]], np.float32))]

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return self.items[i]


def test_beta_pdf_values():
    x = np.linspace(1e-4, 1 - 1e-4, 20001)
    for a, b, _, _ in show_mixup.BETA_CURVES[1:]:
        assert abs(np.trapz(show_mixup.beta_pdf(x, a, b), x) - 1) < 1e-3
    assert show_mixup.beta_pdf(np.array([0.5]), 1.5, 1.5)[0] == pytest.approx(4 / np.pi)
    np.testing.assert_allclose(show_mixup.beta_pdf(np.array([0.1, 0.7]), 1, 1), 1.0)


def test_plot_mixup_writes_png_with_weights(tmp_path):
    import matplotlib.image as mpimg
    path = tmp_path / "m.png"
    label = show_mixup.plot_mixup(_Toy(), 0, 1, 0.6, str(path), class_names=_Toy.classes)
    np.testing.assert_allclose(label[:, -1], [0.6, 0.4, 0.4], rtol=1e-6)
    img = mpimg.imread(str(path))
    assert img.shape[0] > 300 and img.shape[1] > 900 and img[..., :3].std() > 0.05
    with pytest.raises(ValueError, match="lam"):
        show_mixup.plot_mixup(_Toy(), 0, 1, 1.5, str(path))


def test_main_writes_both_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(show_mixup, "_load_dataset", lambda args: _Toy())
    assert show_mixup.main(["--out", str(tmp_path / "fig"), "--lam", "0.3"]) == 0
    assert (tmp_path / "fig" / "mixup_example.png").stat().st_size > 10000
    assert (tmp_path / "fig" / "mixup_beta.png").stat().st_size > 10000
    assert "lambda 0.300, 3 boxes" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        show_mixup.main(["--out", str(tmp_path), "--index", "5"])
