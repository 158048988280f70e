"""Drawing detections: clipping of wild boxes, the colour legend, ground truth in its own style, grids."""
import cv2
import numpy as np
import pytest

from gluon_bof.viz.draw import PALETTE, class_color, clip_boxes_to_image, draw_detections, save_grid

NAMES = ["a", "b", "c"]


def test_draws_confident_boxes_only_and_keeps_the_input():
    image = np.zeros((60, 80, 3), np.uint8)
    boxes = np.array([[10, 10, 40, 40], [50, 25, 70, 50]], np.float32)
    out = draw_detections(image, boxes, np.array([0, 1]), np.array([0.9, 0.1]), NAMES, score_thresh=0.3,
                          legend=False)
    assert image.sum() == 0  # a copy is drawn on
    assert tuple(out[25, 10]) == class_color(0)  # left edge of the confident box, in its class colour
    assert not out[40, 70].any()  # the low-score box is skipped


def test_boxes_far_outside_or_not_finite_are_clipped_or_skipped():
    """An undertrained model's boxes: huge, negative, inverted, NaN/inf. No crash, drawn at the border."""
    image = np.zeros((50, 70, 3), np.uint8)
    boxes = np.array([[-1e12, 10, 1e12, 30], [np.nan, 0, 10, 10], [5, np.inf, 20, 20], [40, 40, 20, 45],
                      [80, 60, 90, 70]], np.float32)
    out = draw_detections(image, boxes, np.array([0, 1, 1, 1, 1]), np.ones(5), NAMES, legend=False)
    assert tuple(out[20, 0]) == class_color(0) and tuple(out[20, 69]) == class_color(0)  # clipped edges
    assert (out == np.array(class_color(1), np.uint8)).all(axis=-1).sum() == 0  # nothing of class 1 drawn
    clipped, visible = clip_boxes_to_image(boxes, 70, 50)
    assert visible.tolist() == [True, False, False, False, False]
    assert clipped[0].tolist() == [0, 10, 69, 30]


def test_legend_names_each_drawn_class_and_gt():
    image = np.zeros((120, 160, 3), np.uint8)
    boxes = np.array([[5, 60, 40, 110], [50, 60, 90, 110]], np.float32)
    plain = draw_detections(image, boxes, np.array([0, 2]), np.array([0.9, 0.8]), NAMES, legend=False)
    legend = draw_detections(image, boxes, np.array([0, 2]), np.array([0.9, 0.8]), NAMES,
                             gt_boxes=np.array([[100, 70, 150, 115]]))
    panel = legend[:45, 100:]  # top-right corner: three rows (a, c, GT)
    assert not plain[:45, 100:].any()
    for cid in (0, 2):
        assert (panel == np.array(class_color(cid), np.uint8)).all(axis=-1).sum() > 20  # colour swatch
    assert (panel == np.array(class_color(1), np.uint8)).all(axis=-1).sum() == 0  # class b not drawn
    assert (panel == 255).all(axis=-1).sum() > 10  # white text / GT sample


def test_ground_truth_is_dashed_black_and_white_not_a_detection_colour():
    image = np.full((80, 100, 3), 128, np.uint8)
    out = draw_detections(image, np.zeros((0, 4)), np.zeros(0), np.zeros(0), NAMES,
                          gt_boxes=np.array([[10, 20, 90, 70]]), legend=False)
    top_edge = out[20, 10:91]
    white = (top_edge == 255).all(axis=-1)
    black = (top_edge == 0).all(axis=-1)
    assert white.sum() > 20 and black.sum() > 10 and (white | black).all()  # dashes: white over black
    assert not any((top_edge == c).all(axis=-1).any() for c in PALETTE)


def test_class_ids_beyond_the_names_are_labelled_by_number():
    out = draw_detections(np.zeros((40, 60, 3), np.uint8), np.array([[5, 15, 50, 35]]), np.array([7]),
                          np.array([0.9]), NAMES)
    assert tuple(out[25, 5]) == class_color(7)


def test_grid_is_written_and_readable(tmp_path):
    path = save_grid([np.full((30, 40, 3), 200, np.uint8)] * 2, str(tmp_path / "g.png"), columns=3, tile=32)
    grid = cv2.imread(path)
    assert grid.shape == (32, 96, 3)
    with pytest.raises(ValueError):
        save_grid([], str(tmp_path / "none.png"))
