"""Backbone feature extractors.

Each module builds a GluonCV-compatible ``features`` sequence (same child order, so the same
structural parameter names): ``darknet`` (Darknet-53), ``mobilenet`` (MobileNet v1 with a width
multiplier); ResNets for Faster R-CNN live in ``resnet*.py``. Modules are imported explicitly by
their users, never from here, so that importing one backbone does not build the others.
"""
