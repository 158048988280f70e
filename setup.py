"""Install script for gluon-bof.

MXNet is deliberately *not* in ``install_requires``: the CPU build (``mxnet``) and the CUDA build
(``mxnet-cu112``) both install the same ``mxnet`` module, and pip happily installs both side by
side, which breaks at import. Pick exactly one through an extra::

    pip install -e ".[cpu]"        # CPU build, mxnet==1.9.1 (the default in the README)
    pip install -e ".[gpu]"        # CUDA 11.2 build, mxnet-cu112==1.9.1
    pip install -e ".[cpu,test]"   # plus pytest, hypothesis and GluonCV (the test oracle)

``gluon_bof`` checks at import that exactly one MXNet distribution is installed.
"""
import sys

from setuptools import find_packages, setup

if not ((3, 8) <= sys.version_info[:2] <= (3, 11)):
    sys.exit(
        "gluon-bof needs Python 3.8 to 3.11 (mxnet 1.9.1 has no working build for Python %d.%d). "
        "Create the environment with e.g. `python3.11 -m venv .venv`." % sys.version_info[:2]
    )

MXNET_VERSION = "1.9.1"

setup(
    name="gluon-bof",
    version="0.1.0",
    description="Faithful, fast reproduction of 'Bag of Freebies for Training Object Detection "
    "Neural Networks' (Zhang et al., 2019) in MXNet Gluon",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8,<3.12",
    packages=find_packages(include=["gluon_bof", "gluon_bof.*"]),
    install_requires=[
        "numpy>=1.17,<1.24",  # mxnet 1.9.1 uses np.bool, removed in numpy 1.24
        "opencv-python-headless>=4.5",
        "matplotlib>=3.3",
        "tqdm>=4.50",
        "pycocotools>=2.0.6",
        "faster-coco-eval>=1.5",
        "pillow>=8",  # image headers and EXIF (gluon_bof.data.base)
    ],
    extras_require={
        "cpu": ["mxnet==%s" % MXNET_VERSION],
        "gpu": ["mxnet-cu112==%s" % MXNET_VERSION],
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "pytest-timeout>=2",
            "gluoncv==0.10.5.post0",
            "tensorboardX>=2.1",  # the engine test checks the event files
        ],
        "tensorboard": ["tensorboardX>=2.1"],
        # python -m gluon_bof.tools.export --format onnx. Its check also needs onnxruntime, which cannot be
        # listed: every onnxruntime wheel for Python 3.11 declares numpy>=1.24.2, against mxnet's numpy<1.24.
        # `pip install --no-deps onnxruntime==1.15.1` runs with numpy 1.23 (docs/deployment.md).
        "export": ["onnx==1.14.1"],
    },
    classifiers=[
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.8",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
