"""Drawing detections for the demo picture."""
import cv2
import numpy as np
import pytest

from gluon_bof.viz.draw import draw_detections, save_grid


def test_draws_confident_boxes_only_and_keeps_the_input():
    image = np.zeros((60, 80, 3), np.uint8)
    boxes = np.array([[10, 10, 40, 40], [50, 5, 70, 30]], np.float32)
    out = draw_detections(image, boxes, np.array([0, 1]), np.array([0.9, 0.1]), ["a", "b"], score_thresh=0.3)
    assert image.sum() == 0  # a copy is drawn on
    assert out[25, 10].any()  # left edge of the confident box
    assert not out[20, 70].any()  # the low-score box is skipped


def test_grid_is_written_and_readable(tmp_path):
    path = save_grid([np.full((30, 40, 3), 200, np.uint8)] * 2, str(tmp_path / "g.png"), columns=3, tile=32)
    grid = cv2.imread(path)
    assert grid.shape == (32, 96, 3)
    with pytest.raises(ValueError):
        save_grid([], str(tmp_path / "none.png"))
