"""Model registry: ``get_model(name, **kwargs)`` with GluonCV's model names.

Constructors register themselves with :func:`register_model`. Registering modules are imported only
when a name is first looked up (:data:`PROVIDERS`), so ``import gluon_bof.model`` stays cheap.

Adding a model family: decorate its constructors with ``@register_model('name')`` in a module and
append that module's import path to :data:`PROVIDERS` (or call :func:`add_provider`).
"""
import importlib
from typing import Callable, Dict, List

# Modules whose import registers models.
PROVIDERS: List[str] = ["gluon_bof.model.yolo.zoo", "gluon_bof.model.rcnn.zoo"]

_MODELS: Dict[str, Callable] = {}
_loaded: set = set()


def register_model(name: str, fn: Callable = None):
    """Register ``fn`` under ``name`` (case-insensitive); usable as ``@register_model('name')``."""
    key = name.lower()

    def deco(f: Callable) -> Callable:
        if key in _MODELS and _MODELS[key] is not f:
            raise ValueError("register_model: %r is already registered by %s.%s"
                             % (name, _MODELS[key].__module__, _MODELS[key].__name__))
        _MODELS[key] = f
        return f

    return deco(fn) if fn is not None else deco


def add_provider(module: str) -> None:
    """Add a module whose import registers models (imported at the next lookup)."""
    if module not in PROVIDERS:
        PROVIDERS.append(module)


def _load_providers() -> None:
    for mod in list(PROVIDERS):
        if mod in _loaded:
            continue
        importlib.import_module(mod)
        _loaded.add(mod)


def list_models() -> List[str]:
    """Sorted names of all registered models."""
    _load_providers()
    return sorted(_MODELS)


def get_model(name: str, **kwargs):
    """Build the model registered as ``name`` (e.g. ``'yolo3_darknet53_voc'``) with ``kwargs``."""
    key = str(name).lower()
    if key not in _MODELS:
        _load_providers()
    if key not in _MODELS:
        raise ValueError("get_model: unknown model %r; registered models: %s" % (name, ", ".join(sorted(_MODELS))))
    return _MODELS[key](**kwargs)
