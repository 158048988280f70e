"""Backbone feature extractors.

``darknet`` (Darknet-53), ``mobilenet`` (MobileNet v1 with a width multiplier) and the ResNets of
Faster R-CNN (``resnetv1b``) build GluonCV-compatible ``features`` sequences (same child order, so
the same structural parameter names); ``plain`` is this package's own stack of 3x3 conv cells for
the CPU-sized YOLOv3 (no GluonCV counterpart). Modules are imported explicitly by their users, never
from here, so that importing one backbone does not build the others.
"""
