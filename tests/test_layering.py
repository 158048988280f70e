"""The package's architecture as a test: imports run only downwards, and no module needs a test extra.

Every ``import`` of every module of ``gluon_bof`` (top-level and inside functions) is read from the
source with ``ast``, relative imports resolved, and checked against the layer rules below.
"""
import ast
import os
import subprocess
import sys
from typing import Dict, List, Set, Tuple

import pytest

import gluon_bof

PACKAGE_DIR = os.path.dirname(gluon_bof.__file__)

# Layer (first component under gluon_bof) -> the gluon_bof layers it must not import. ``model`` may
# use ``data`` only for class names (checked separately).
FORBIDDEN = {
    "viz": {"data", "model", "engine", "metrics", "recipes", "tools", "lr_scheduler", "launch"},
    "data": {"model", "engine", "metrics", "recipes", "tools", "viz", "launch"},
    "metrics": {"data", "model", "engine", "recipes", "tools", "viz", "launch"},
    "model": {"engine", "metrics", "recipes", "tools", "viz", "launch"},
    "engine": {"data", "model", "metrics", "recipes", "tools", "viz"},
    "lr_scheduler": {"data", "model", "engine", "metrics", "recipes", "tools", "viz", "launch"},
    "digest": {"data", "model", "engine", "metrics", "recipes", "tools", "viz", "launch", "lr_scheduler"},
    "recipes": {"tools", "launch"},
}
MODEL_MAY_USE_FROM_DATA = {"gluon_bof.data.class_names"}
# Distributions the [cpu] install brings (install_requires + mxnet); anything else must not be imported.
THIRD_PARTY = {"mxnet", "numpy", "cv2", "matplotlib", "tqdm", "pycocotools", "faster_coco_eval", "PIL",
               "tensorboardX"}


def _modules() -> List[Tuple[str, str]]:
    found = []
    for root, _, files in os.walk(PACKAGE_DIR):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
                found.append((rel[: -len(".__init__")] if rel.endswith(".__init__") else rel, path))
    return found


def _imports(module: str, path: str) -> Set[str]:
    """Absolute names imported anywhere in the module (``from x import y`` gives ``x.y`` and ``x``)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names.add(prefix)
            names.update(prefix + "." + alias.name for alias in node.names)
    return names


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _violations() -> Dict[str, List[str]]:
    bad: Dict[str, List[str]] = {}
    modules = {m for m, _ in _modules()}
    for module, path in _modules():
        layer = _layer(module)
        for name in sorted(_imports(module, path)):
            top = name.split(".")[0]
            if top == "gluon_bof":
                target = _layer(name)
                if name not in modules and name.rpartition(".")[0] in modules:
                    name_module = name.rpartition(".")[0]  # ``from pkg import symbol``
                else:
                    name_module = name
                if target in FORBIDDEN.get(layer, set()):
                    bad.setdefault(module, []).append(name)
                elif layer == "model" and target == "data" and name_module not in MODEL_MAY_USE_FROM_DATA \
                        and name != "gluon_bof.data":
                    bad.setdefault(module, []).append(name)
            elif top not in sys.stdlib_module_names and top not in THIRD_PARTY and top != "__future__":
                bad.setdefault(module, []).append(name + " (not installed by the [cpu] extra)")
    return bad


def test_every_import_runs_down_the_layers():
    assert _violations() == {}


def test_the_check_sees_a_wrong_way_import(tmp_path, monkeypatch):
    """The checker itself: a model module importing the engine, and a gluoncv import, are both caught."""
    fake = tmp_path / "gluon_bof"
    (fake / "model").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "model" / "__init__.py").write_text("")
    (fake / "model" / "bad.py").write_text("from ..engine.context import split_batch\n"
                                           "def f():\n    import gluoncv\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", str(fake))
    found = _violations()
    assert found == {"gluon_bof.model.bad": ["gluon_bof.engine.context", "gluon_bof.engine.context.split_batch",
                                             "gluoncv (not installed by the [cpu] extra)"]}


@pytest.mark.parametrize("layer", ["engine", "model"])
def test_engine_names_no_detector_and_model_no_engine(layer):
    names = {n for m, p in _modules() if _layer(m) == layer for n in _imports(m, p)}
    assert not any(n.startswith("gluon_bof." + f) for n in names for f in FORBIDDEN[layer])


def test_every_module_imports_without_the_test_extra():
    """Import every module with gluoncv, pytest and hypothesis made unimportable."""
    code = (
        "import sys, importlib, pkgutil\n"
        "for blocked in ('gluoncv', 'pytest', 'hypothesis'):\n"
        "    sys.modules[blocked] = None\n"
        "import gluon_bof\n"
        "names = [m.name for m in pkgutil.walk_packages(gluon_bof.__path__, 'gluon_bof.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) >= 60
