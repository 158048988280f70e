"""GluonCV's model store on disk: where pretrained ``.params`` files live, their names and SHA-1s.

Nothing is downloaded. A GluonCV file is ``<root>/<name>-<sha1[:8]>.params`` with ``root`` equal to
``$MXNET_HOME/models`` when ``MXNET_HOME`` is set, else ``~/.mxnet/models``; it is accepted when the
SHA-1 of its bytes agrees with the published one over the shorter of the two hex strings (GluonCV's
rule). :data:`MODEL_SHA1` carries GluonCV 0.10.5's published hashes of the files gluon_bof can use.
A missing or mismatching file is a :class:`PretrainedFileError` that says where we looked, which
file and hash we expected, and how to obtain it.
"""
import os
import re
from typing import Dict, List, Optional

from ..digest import file_digest

# GluonCV 0.10.5's published SHA-1 of the ImageNet backbones and detector zoo files we load.
MODEL_SHA1: Dict[str, str] = {
    "darknet53": "2189ea49720a116dead245b9b252301cffa18d28",
    "mobilenet1.0": "efbb2ca3881998d5a8c5cb6c457a28c1e085fed5",
    "mobilenet0.5": "0130d2aa2f7e3a63db35579b243e25f512172371",
    "mobilenet0.25": "f0046a3da4e150b85da58ea31913dbb86e7540d1",
    "resnet18_v1b": "2d9d980c990442f826f20781ed039851e78dabe3",
    "resnet50_v1b": "0ecdba34691be172036ddf244ff1b2eade75ffde",
    "resnet101_v1d": "1b2b825feff86b0354642a4ab59f9b6e35e47338",
    "yolo3_darknet53_voc": "f5ece5ce1422eeca3ce2908004e469ffdf91fd41",
    "yolo3_darknet53_coco": "09767802230b45af1c27697a2dad6d1ebaacc1e2",
    "yolo3_mobilenet1.0_voc": "3b47835ac3dd80f29576633949aa58aee3094353",
    "yolo3_mobilenet1.0_coco": "66dbbae67be8f1e3cd3c995ce626a2bdc89769c6",
    "faster_rcnn_resnet50_v1b_voc": "447328d89d70ae1e2ca49226b8d834e5a5456df3",
    "faster_rcnn_resnet50_v1b_coco": "5b4690fb7c5b62c44fb36c67d0642b633697f1bb",
    "faster_rcnn_resnet101_v1d_coco": "a465eca35e78aba6ebdf99bf52031a447e501063",
}

STORE_FILE_PATTERN = re.compile(r"^(?P<name>.+)-(?P<hash>[0-9a-f]{8})\.params$")


class PretrainedFileError(ValueError):
    """A pretrained weight file is missing, has the wrong SHA-1, or does not fit the network."""


def store_root() -> str:
    """GluonCV's folder of model files: ``$MXNET_HOME/models``, else ``~/.mxnet/models``."""
    home = os.environ.get("MXNET_HOME")
    if home:
        return os.path.join(home, "models")
    return os.path.join(os.path.expanduser("~"), ".mxnet", "models")


def file_name(name: str) -> str:
    """GluonCV's file name of zoo entry ``name``: ``<name>-<sha1[:8]>.params``."""
    return "%s-%s.params" % (name, published_sha1(name)[:8])


def published_sha1(name: str) -> str:
    """The published SHA-1 of ``name``; a :class:`PretrainedFileError` for a name without one."""
    if name not in MODEL_SHA1:
        raise PretrainedFileError("no published GluonCV weights are known for %r; known: %s"
                                  % (name, ", ".join(sorted(MODEL_SHA1))))
    return MODEL_SHA1[name]


def file_sha1(path: str) -> str:
    """Hex SHA-1 of the bytes of ``path`` (what GluonCV's model store checks)."""
    return file_digest(path, "sha1")


def sha1_matches(actual: str, expected: str) -> bool:
    """GluonCV's comparison: equal over the shorter of the two hex strings."""
    n = min(len(actual), len(expected))
    return n > 0 and actual[:n] == expected[:n]


def how_to_obtain(name: str) -> str:
    """The instructions of the error messages: how to get GluonCV's file of ``name`` onto this machine."""
    return ("obtain it on a machine with internet access: pip install gluoncv==0.10.5 mxnet==1.9.1, then "
            "python -c \"import gluoncv; gluoncv.model_zoo.get_model('%s', pretrained=True)\" (it lands in "
            "~/.mxnet/models), and copy ~/.mxnet/models/%s to %s here (or set MXNET_HOME to the folder "
            "that holds models/)" % (name, file_name(name), store_root()))


def check_sha1(path: str, expected: str, what: str) -> str:
    """SHA-1 of ``path``, or a :class:`PretrainedFileError` when it differs from ``expected``."""
    actual = file_sha1(path)
    if not sha1_matches(actual, expected):
        raise PretrainedFileError(
            "%s: SHA-1 of %s is %s but GluonCV publishes %s (a truncated or partly copied file, or "
            "another version); delete it and copy the file again" % (what, path, actual, expected))
    return actual


def find_model_file(name: str, what: str, root: Optional[str] = None) -> str:
    """Path of GluonCV's file of ``name`` in the store, its SHA-1 checked.

    Raises :class:`PretrainedFileError` naming the folder searched, the file and hash expected, and
    how to obtain it, when the file is absent or its hash differs.
    """
    expected = published_sha1(name)
    root = root or store_root()
    path = os.path.join(root, file_name(name))
    if not os.path.isfile(path):
        others = sorted(f for f in os.listdir(root) if f.startswith(name + "-")) if os.path.isdir(root) else []
        seen = (" (found instead: %s)" % ", ".join(others)) if others else ""
        raise PretrainedFileError(
            "%s: GluonCV's %s weights are not on this machine. Searched %s for %s (SHA-1 %s)%s. "
            "Nothing is downloaded here; %s. Or pass the file explicitly." % (
                what, name, root, file_name(name), expected, seen, how_to_obtain(name)))
    check_sha1(path, expected, what)
    return path


def check_explicit_file(path: str, name: str, what: str) -> Optional[str]:
    """Check a file given by path: it must exist; named like GluonCV's store file of ``name``
    (``<name>-<8 hex>.params``), its SHA-1 must agree with that short hash and any published one.

    Returns the SHA-1 when it was checked, else None (a file of one's own, checked by its content).
    """
    if not os.path.isfile(path):
        raise PretrainedFileError("%s: %s does not exist (or is not a file)" % (what, path))
    match = STORE_FILE_PATTERN.match(os.path.basename(path))
    if not match or match.group("name") != name:
        return None
    expected = match.group("hash")
    if name in MODEL_SHA1 and sha1_matches(MODEL_SHA1[name], expected):
        expected = MODEL_SHA1[name]
    return check_sha1(path, expected, what)


def store_names() -> List[str]:
    """Names with a published hash (backbones and zoo detectors)."""
    return sorted(MODEL_SHA1)
