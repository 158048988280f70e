"""Tests of gluon_bof.data.mixup: blending, weights, reproducibility, parity with GluonCV."""
import numpy as np
import pytest

from gluon_bof.data.mixup import MixupDetection, blend
from gluon_bof.data.rng import sample_rng


class _Toy:
    """Images of different sizes filled with random pixels; one or two boxes each."""

    def __init__(self, n=5, seed=0):
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n):
            h, w = 20 + 7 * i, 30 - 3 * i
            img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            label = np.array([[1, 2, 10, 12, i % 3, 0], [3, 4, 8, 9, 1, 1]][: 1 + i % 2], dtype=np.float32)
            self.items.append((img, label))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_mix_geometry_weights_and_truncation():
    ds = _Toy()
    m = MixupDetection(ds)
    img, label = m.mix(0, 0.3, 3)
    (i1, l1), (i2, l2) = ds[0], ds[3]
    assert img.dtype == np.uint8
    assert img.shape == (max(i1.shape[0], i2.shape[0]), max(i1.shape[1], i2.shape[1]), 3)
    # overlap pixel: float32 sum truncated, not rounded
    expect = np.float32(i1[0, 0]) * np.float32(0.3) + np.float32(i2[0, 0]) * (np.float32(1) - np.float32(0.3))
    np.testing.assert_array_equal(img[0, 0], expect.astype(np.uint8))
    # region covered only by the taller image 2 is image 2 * 0.7; outside both is 0
    r = i1.shape[0]
    np.testing.assert_array_equal(img[r, 0], (i2[r, 0].astype(np.float32) * np.float32(0.7)).astype(np.uint8))
    # rows below image 1 and right of image 2 belong to neither: black
    assert i2.shape[1] < img.shape[1] and img[r:, i2.shape[1]:].sum() == 0
    # boxes untouched, weights appended per source image
    assert label.shape == (len(l1) + len(l2), 7) and label.dtype == np.float32
    np.testing.assert_array_equal(label[:, :6], np.vstack([l1, l2]))
    np.testing.assert_allclose(label[:, 6], [0.3] * len(l1) + [0.7] * len(l2), rtol=1e-6)


def test_disabled_and_lambda_one_give_single_image_with_unit_weights():
    ds = _Toy()
    m = MixupDetection(ds)
    rng = sample_rng(0, 0, 2)
    state = rng.bit_generator.state
    img, label = m.sample(2, rng, enabled=False)
    assert rng.bit_generator.state == state  # no draw consumed when disabled
    np.testing.assert_array_equal(img, ds[2][0])
    np.testing.assert_array_equal(label[:, -1], 1.0)
    img, label = m.mix(2, 1.0, 4)
    np.testing.assert_array_equal(img, ds[2][0])
    assert label.shape == (len(ds[2][1]), 7)


def test_sample_is_reproducible_and_partner_is_never_self():
    m = MixupDetection(_Toy(n=4))
    seen_partners = set()
    for idx in range(4):
        for ep in range(10):
            lam, partner = m.draw(idx, sample_rng(1, ep, idx))
            assert partner != idx and 0 <= partner < 4 and 0.0 <= lam <= 1.0
            seen_partners.add((idx, partner))
        a = m.sample(idx, sample_rng(1, 0, idx))
        b = m.sample(idx, sample_rng(1, 0, idx))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert len(seen_partners) == 12  # every other index gets picked


def test_lambda_follows_beta_distribution():
    m = MixupDetection(_Toy(n=2), alpha=1.5, beta=1.5)
    lams = np.array([m.draw(0, sample_rng(0, e, 0))[0] for e in range(3000)])
    # Beta(1.5, 1.5): mean 0.5, variance 1/16
    assert abs(lams.mean() - 0.5) < 0.02
    assert abs(lams.var() - 1 / 16) < 0.006


def test_bad_input_messages():
    with pytest.raises(ValueError, match="alpha and beta"):
        MixupDetection(_Toy(), alpha=0)

    class Bad(_Toy):
        def __getitem__(self, i):
            return np.zeros((4, 4), np.uint8), np.zeros((0, 6), np.float32)

    with pytest.raises(ValueError, match=r"Bad\[1\].*HxWx3"):
        MixupDetection(Bad()).sample(1, sample_rng(0, 0, 1), enabled=False)


@pytest.mark.oracle
@pytest.mark.parametrize("lam,idx,partner", [(0.37, 1, 4), (0.81, 4, 0), (0.0, 2, 3)])
def test_parity_with_gluoncv(monkeypatch, lam, idx, partner):
    import mxnet as mx
    from gluoncv.data.mixup.detection import MixupDetection as GMixup

    ds = _Toy()

    class NdView:  # GluonCV datasets return NDArray images
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return mx.nd.array(ds[i][0], dtype="uint8"), ds[i][1]

    g = GMixup(NdView(), lambda: lam)
    monkeypatch.setattr(np.random, "choice", lambda a: partner)
    gimg, glabel = g[idx]
    img, label = MixupDetection(ds).mix(idx, lam, partner)
    np.testing.assert_array_equal(img, gimg.asnumpy())
    np.testing.assert_allclose(label, glabel, rtol=0, atol=1e-7)


def test_blend_same_size_symmetry():
    a = np.full((2, 2, 3), 200, np.uint8)
    b = np.full((2, 2, 3), 100, np.uint8)
    assert blend(a, b, 0.5)[0, 0, 0] == 150
    assert blend(a, b, 0.0)[0, 0, 0] == 100
