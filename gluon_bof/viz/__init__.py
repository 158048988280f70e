"""Drawing detections for people to look at: boxes, labels, legends, picture grids (OpenCV)."""
