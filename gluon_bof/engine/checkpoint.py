"""Atomic checkpoints that resume training exactly, and fail loudly when broken.

A checkpoint ``<tag>`` in a directory is three files:

``<tag>.params``
    ``net.save_parameters`` output: GluonCV's ``load_parameters`` reads it alone.
``<tag>.states``
    ``trainer.save_states`` output: optimizer with momentum buffers, ``num_update`` and the
    per-parameter update counters, and the LR scheduler.
``<tag>.manifest.json``
    Written last. The size and SHA-256 of both files, and the metadata needed to continue (epoch, batch
    position, update count, parameter shapes, ``lr_mult``/``wd_mult``, seed, options, arguments...).

Every file is written to a temporary name in the same directory and moved over the final name with
``os.replace``, and the old manifest of the tag is deleted before the new files are written. A crash
at any point therefore leaves either the previous complete checkpoint or one without a manifest,
which ``--resume auto`` ignores; a truncated or edited file fails its checksum.
"""
import glob
import json
import logging
import os
import tempfile
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import mxnet as mx
from mxnet import gluon

from ..digest import file_digest
from .optim import set_param_multipliers, set_update_count, update_count

__all__ = ["CheckpointError", "FORMAT", "VERSION", "atomic_write", "save_checkpoint", "read_manifest",
           "verify_checkpoint", "find_latest", "resolve_resume", "param_shapes", "check_architecture",
           "load_checkpoint", "remove_checkpoint"]

FORMAT = "gluon_bof.checkpoint"
VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
_log = logging.getLogger("gluon_bof.engine")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or does not fit the network."""


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then ``os.replace(tmp_path, path)``; the temp file never survives a failure."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_json(path: str, obj: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
    atomic_write(path, write)


def _file_record(path: str) -> Dict[str, Any]:
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": file_digest(path, "sha256")}


def param_shapes(net: gluon.Block) -> Dict[str, List[int]]:
    """``{structural parameter name: shape}``, the names ``save_parameters`` writes."""
    return {name: list(p.shape) for name, p in net._collect_params_with_prefix().items()}


def save_checkpoint(directory: str, tag: str, net: gluon.Block, trainer: Optional[gluon.Trainer],
                    meta: Mapping[str, Any]) -> str:
    """Write checkpoint ``tag`` into ``directory`` atomically; return the manifest path.

    Parameters
    ----------
    meta : mapping
        JSON-serializable training position and settings, stored in the manifest under ``meta``
        (the parameter shapes are added under ``meta['param_shapes']``).

    Raises
    ------
    CheckpointError
        A file could not be written (disk full, read-only folder...): the message names the
        checkpoint and the OS error. The tag's earlier files are then incomplete (no manifest), the
        other tags untouched.
    """
    directory = os.fspath(directory)
    base = os.path.join(directory, tag)
    manifest_path = base + MANIFEST_SUFFIX
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.exists(manifest_path):  # from now on this tag is incomplete until the new manifest lands
            os.remove(manifest_path)
        files = {}
        atomic_write(base + ".params", lambda tmp: net.save_parameters(tmp))
        files["params"] = _file_record(base + ".params")
        if trainer is not None:
            atomic_write(base + ".states", lambda tmp: trainer.save_states(tmp))
            files["states"] = _file_record(base + ".states")
        full_meta = dict(meta)
        full_meta["param_shapes"] = param_shapes(net)
        _write_json(manifest_path, {"format": FORMAT, "version": VERSION, "tag": tag, "files": files,
                                    "meta": full_meta})
    except (OSError, mx.base.MXNetError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).strip().splitlines()[-1]
        raise CheckpointError(f"could not write checkpoint {base} ({reason}); check free space and write "
                              f"permission of {directory}") from err
    return manifest_path


def remove_checkpoint(manifest_path: str) -> None:
    """Delete a checkpoint: manifest first (so it is never half-listed), then its files."""
    manifest = read_manifest(manifest_path)
    directory = os.path.dirname(os.path.abspath(manifest_path))
    os.remove(manifest_path)
    for record in manifest["files"].values():
        path = os.path.join(directory, record["file"])
        if os.path.exists(path):
            os.remove(path)


def read_manifest(manifest_path: str) -> Dict[str, Any]:
    """Parse and schema-check a manifest; :class:`CheckpointError` naming the file otherwise."""
    try:
        with open(manifest_path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint manifest {manifest_path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint manifest {manifest_path} is unreadable or truncated: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{manifest_path} is not a gluon_bof checkpoint manifest (format="
                              f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"{manifest_path}: checkpoint version {manifest.get('version')!r} is not "
                              f"supported (this gluon_bof reads version {VERSION})")
    if "params" not in manifest.get("files", {}) or not isinstance(manifest.get("meta"), dict):
        raise CheckpointError(f"{manifest_path}: manifest lacks 'files.params' or 'meta'")
    return manifest


def verify_checkpoint(manifest_path: str) -> Dict[str, Any]:
    """Check that every file of the checkpoint exists with the recorded size and SHA-256."""
    manifest = read_manifest(manifest_path)
    directory = os.path.dirname(os.path.abspath(manifest_path))
    for role, record in manifest["files"].items():
        path = os.path.join(directory, record["file"])
        if not os.path.exists(path):
            raise CheckpointError(f"checkpoint {manifest_path}: {role} file {path} is missing")
        size = os.path.getsize(path)
        if size != record["bytes"]:
            raise CheckpointError(f"checkpoint {manifest_path}: {role} file {path} has {size} bytes, the "
                                  f"manifest recorded {record['bytes']} (truncated or overwritten)")
        if _file_record(path)["sha256"] != record["sha256"]:
            raise CheckpointError(f"checkpoint {manifest_path}: {role} file {path} fails its SHA-256 check "
                                  f"(corrupt or overwritten)")
    return manifest


def _position(manifest: Mapping[str, Any]) -> tuple:
    meta = manifest["meta"]
    return (int(meta.get("global_step", 0)), int(meta.get("epoch", 0)), int(meta.get("batch", 0)))


def find_latest(directory: str) -> Optional[str]:
    """Manifest of the most advanced complete checkpoint in ``directory`` (None if there is none).

    Checkpoints failing verification are skipped with a warning (an explicit, logged fallback to the
    previous valid one). If manifests exist but none is valid, :class:`CheckpointError` is raised.
    """
    candidates = sorted(glob.glob(os.path.join(glob.escape(os.fspath(directory)), "*" + MANIFEST_SUFFIX)))
    best, best_pos, problems = None, None, []
    for path in candidates:
        try:
            manifest = verify_checkpoint(path)
        except CheckpointError as exc:
            problems.append(str(exc))
            _log.warning("skipping broken checkpoint: %s", exc)
            continue
        pos = _position(manifest)
        if best_pos is None or pos > best_pos or (pos == best_pos and manifest["tag"] != "best"):
            best, best_pos = path, pos
    if best is None and problems:
        raise CheckpointError(f"--resume auto: no valid checkpoint in {directory}; all are broken:\n  "
                              + "\n  ".join(problems))
    return best


def resolve_resume(resume: Optional[str], directory: str) -> Optional[str]:
    """Manifest path for ``--resume``: None/'' (fresh run), ``'auto'`` (latest in ``directory``, or a
    fresh run when the directory has no checkpoint), a manifest, a ``.params`` file or a tag path."""
    if not resume:
        return None
    if resume == "auto":
        latest = find_latest(directory) if os.path.isdir(directory) else None
        if latest is None:
            _log.info("--resume auto: no checkpoint in %s, starting from scratch", directory)
        return latest
    path = os.fspath(resume)
    for suffix in (".params", ".states", MANIFEST_SUFFIX):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    manifest = path + MANIFEST_SUFFIX
    if not os.path.exists(manifest):
        if os.path.exists(path + ".params"):
            raise CheckpointError(f"--resume {resume}: {path}.params has no {MANIFEST_SUFFIX} next to it, so "
                                  f"the checkpoint is incomplete (crash while saving) or a weights-only file; "
                                  f"exact resume needs the full checkpoint")
        raise CheckpointError(f"--resume {resume}: no checkpoint at {path} (expected {manifest})")
    return manifest


def check_architecture(net: gluon.Block, expected: Mapping[str, Sequence[int]], source: str) -> None:
    """Raise :class:`CheckpointError` listing missing, unexpected and reshaped parameters."""
    have = param_shapes(net)
    missing = sorted(set(expected) - set(have))
    unexpected = sorted(set(have) - set(expected))
    reshaped = sorted(n for n in set(have) & set(expected) if list(have[n]) != list(expected[n])
                      and all(int(d) > 0 for d in have[n]))
    if missing or unexpected or reshaped:
        lines = [f"{source} was saved from a different architecture than the network being trained:"]
        if reshaped:
            lines.append("  shape mismatch: " + ", ".join(f"{n} checkpoint {tuple(expected[n])} vs network "
                                                          f"{tuple(have[n])}" for n in reshaped[:20]))
        if missing:
            lines.append("  in checkpoint only: " + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
        if unexpected:
            lines.append("  in network only: " + ", ".join(unexpected[:20])
                         + (" ..." if len(unexpected) > 20 else ""))
        raise CheckpointError("\n".join(lines))


def load_checkpoint(manifest_path: str, net: gluon.Block, trainer: Optional[gluon.Trainer],
                    ctxs: Sequence[mx.Context]) -> Dict[str, Any]:
    """Verify, check the architecture, load weights, multipliers and trainer states; return ``meta``.

    After loading, the optimizer's update count equals ``meta['global_step']`` so the LR schedule
    continues where it stopped.
    """
    manifest = verify_checkpoint(manifest_path)
    meta = manifest["meta"]
    directory = os.path.dirname(os.path.abspath(manifest_path))
    check_architecture(net, meta.get("param_shapes", {}), f"checkpoint {manifest_path}")
    net.load_parameters(os.path.join(directory, manifest["files"]["params"]["file"]), ctx=list(ctxs))
    if "multipliers" in meta:
        set_param_multipliers(net, meta["multipliers"])
    if trainer is not None:
        if "states" not in manifest["files"]:
            raise CheckpointError(f"checkpoint {manifest_path} holds no trainer states, cannot resume exactly")
        try:
            trainer.load_states(os.path.join(directory, manifest["files"]["states"]["file"]))
        except Exception as exc:  # pickle/kvstore errors: name the file
            raise CheckpointError(f"checkpoint {manifest_path}: trainer states could not be loaded: {exc}") from exc
        if update_count(trainer) != int(meta.get("global_step", 0)):
            set_update_count(trainer, int(meta.get("global_step", 0)))
    return meta
