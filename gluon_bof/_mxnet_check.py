"""Check, without importing it, that exactly one MXNet distribution is installed.

``mxnet`` (CPU) and ``mxnet-cu112`` (CUDA) ship the same ``mxnet`` module. Installed together, the
second one overwrites files of the first and ``import mxnet`` fails, or silently runs the wrong build.
GluonCV leaves MXNet out of its requirements for the same reason; we do too, and check here.
"""
from importlib import metadata
from typing import Iterable, List

INSTALL_HELP = (
    'Install exactly one build: `pip install "gluon-bof[cpu]"` (mxnet==1.9.1, CPU) or '
    '`pip install "gluon-bof[gpu]"` (mxnet-cu112==1.9.1, CUDA 11.2).'
)


def mxnet_distributions(dists: Iterable = None) -> List[str]:
    """Names of installed distributions that provide the ``mxnet`` module (``mxnet``, ``mxnet-cu112``...)."""
    names = set()
    for dist in dists if dists is not None else metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        if name == "mxnet" or (name.startswith("mxnet-") and not name.startswith("mxnet-coreml")):
            names.add(name)
    return sorted(names)


def check_mxnet_install(dists: Iterable = None) -> str:
    """Return the single MXNet distribution name, or raise ImportError saying how to fix the install."""
    found = mxnet_distributions(dists)
    if not found:
        raise ImportError("gluon_bof needs MXNet 1.9.1, and no MXNet build is installed. " + INSTALL_HELP)
    if len(found) > 1:
        raise ImportError(
            "Several MXNet builds are installed side by side (%s); they overwrite each other's "
            "`mxnet` module. Uninstall all of them (`pip uninstall -y %s`), then reinstall one. %s"
            % (", ".join(found), " ".join(found), INSTALL_HELP)
        )
    return found[0]
