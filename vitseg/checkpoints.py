"""Checkpoints: write them atomically with a checksum, read and verify them, load models.

A checkpoint is one ``torch.save`` file: the model's architecture and metadata, its
weights, the training state for resuming, and a sha256 of all of it (``load_model``
refuses a file whose bytes changed). :func:`vitseg.train.fit` writes them;
:func:`load_model` rebuilds the model from the file alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vitseg.errors import CheckpointError, MissingFileError, ParamsError, VitsegError
from vitseg.io import atomic_path
from vitseg.models import create_model, select_device

__all__ = ["CHECKPOINT_FORMAT", "load_model"]

#: Format tag of vitseg checkpoints.
CHECKPOINT_FORMAT = "vitseg-checkpoint/1"


def _plain(obj: Any) -> Any:
    """Convert numpy/paths/tuples to plain Python types (torch.load weights_only safe)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise VitsegError(
        f"checkpoint metadata must be plain types (dict, list, str, numbers); got "
        f"{type(obj).__name__}: {obj!r}. Convert it (e.g. array.tolist()) before calling fit."
    )


_DEVICE_TYPES = ("cpu", "cuda")  # what vitseg.models.select_device accepts


def _check_device(device: str | torch.device) -> None:
    """Refuse a device vitseg cannot use: not ``auto``/``cpu``/``cuda[:i]`` (ParamsError)."""
    if isinstance(device, torch.device):
        return
    ok = isinstance(device, str) and (device == "auto" or device.split(":")[0] in _DEVICE_TYPES)
    if ok:
        try:
            torch.device(device if device != "auto" else "cpu")
        except RuntimeError:
            ok = False
    if not ok:
        raise ParamsError(
            f"device {device!r} is not one of 'auto', 'cpu', 'cuda' (or 'cuda:<index>', e.g. "
            "'cuda:0'); use 'auto' to take a CUDA GPU when there is one"
        )


def _digest(obj: Any, h: Any) -> None:
    """Feed ``obj`` (tensors, mappings, sequences, plain values) to the hash ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for k in sorted(obj, key=lambda k: (type(k).__name__, str(k))):
            h.update(repr(k).encode() + b":")
            _digest(obj[k], h)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _digest(v, h)
            h.update(b",")
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def _checksum(ckpt: Mapping[str, Any]) -> str:
    """sha256 of everything in a checkpoint but its own ``sha256`` entry."""
    h = hashlib.sha256()
    _digest({k: v for k, v in ckpt.items() if k != "sha256"}, h)
    return h.hexdigest()


def _save(obj: Mapping[str, Any], path: Path) -> None:
    """Write a checkpoint atomically, with the sha256 of its content inside."""
    payload = dict(obj)
    payload["sha256"] = _checksum(payload)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and verify a vitseg checkpoint (weights_only, format, sha256)."""
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pt"))
        raise MissingFileError(
            f"{path} is a folder, not a checkpoint file; give a file such as "
            f"{path / 'best.pt'} (.pt files in it: {found})"
        )
    if not path.exists():
        raise MissingFileError(f"no checkpoint at {path}; run vitseg.train.fit first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, or pickled objects weights_only refuses
        raise CheckpointError(
            f"cannot load checkpoint {path} with torch.load(weights_only=True): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}. It is "
            "truncated, corrupt or holds arbitrary Python objects; re-train "
            "(vitseg.train.fit writes safe checkpoints) or re-download it"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a vitseg checkpoint (expected format {CHECKPOINT_FORMAT!r}); "
            "write it with vitseg.train.fit"
        )
    stored = ckpt.get("sha256")  # checkpoints written before checksums have none
    if stored is not None and stored != _checksum(ckpt):
        raise CheckpointError(
            f"checkpoint {path} is corrupt: the sha256 of its content does not match the "
            f"one stored when it was written ({str(stored)[:12]}...); bytes changed on disk "
            "or in a copy. Copy it again from its source, or re-train."
        )
    missing = [k for k in ("model", "model_state") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; re-train with vitseg.train.fit")
    return dict(ckpt)


def load_model(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    arch: str | None = None,
    in_channels: int | None = None,
    classes: int | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a checkpoint written by :func:`fit`, verifying its checksum.

    Parameters
    ----------
    path
        ``best.pt`` or ``last.pt``.
    device
        Where to put the model (``"auto"`` = CUDA when present, ``"cpu"``, ``"cuda"``).
    arch, in_channels, classes
        What the caller expects (None = anything): a checkpoint of another
        architecture, band count or class count is an error naming both.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, fp32, on ``device``.
    meta : dict
        ``model`` (arch, in_channels, classes, encoder, dropout), ``data`` (what ``fit``
        got as ``meta``: bands, normalisation ...), ``config`` (the TrainConfig as a
        dict), ``epoch``, ``best`` (epoch, score, monitor) and ``history``.

    Raises
    ------
    MissingFileError
        When ``path`` does not exist or is a folder (also a ``FileNotFoundError``).
    CheckpointError
        When the file is truncated, corrupt (its sha256 differs from the one stored in
        it; checkpoints written before checksums load unchecked), not a vitseg
        checkpoint, holds objects ``weights_only`` loading refuses, holds NaN/inf
        weights, is not of the expected ``arch``/``in_channels``/``classes``, or its
        weights do not fit the model its own metadata describes.
    ParamsError
        An unknown ``device`` (e.g. ``"tpu"``).
    """
    _check_device(device)
    if not isinstance(path, str | Path) or not str(path) or "\0" in str(path):
        raise ParamsError(
            f"load_model takes the path of a checkpoint file (str or pathlib.Path), e.g. "
            f"'reports/demo/models/unet/best.pt'; got {path!r} ({type(path).__name__})"
        )
    path = Path(path)
    ckpt = _read_checkpoint(path)
    spec = dict(ckpt["model"])
    kwargs = dict(spec.pop("kwargs", {}) or {})
    got = {"arch": spec.get("arch"), "in_channels": spec.get("in_channels"),
           "classes": spec.get("classes")}  # fmt: skip
    wanted = {"arch": arch, "in_channels": in_channels, "classes": classes}
    differ = [k for k, v in wanted.items() if v is not None and got[k] != v]
    if differ:
        raise CheckpointError(
            f"checkpoint {path} holds a model with "
            f"{', '.join(f'{k}={got[k]!r}' for k in differ)}, but "
            f"{', '.join(f'{k}={wanted[k]!r}' for k in differ)} was expected; use the "
            "checkpoint trained for these bands and classes"
        )
    try:
        model = create_model(spec.pop("arch"), **spec, **kwargs)
        model.load_state_dict(ckpt["model_state"])
    except (KeyError, TypeError, RuntimeError, VitsegError) as err:
        raise CheckpointError(
            f"the weights in checkpoint {path} do not fit the model its metadata describes "
            f"({got}): {str(err).splitlines()[0][:300]}. The file was edited or mixed from "
            "two runs; re-train with vitseg.train.fit"
        ) from err
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise CheckpointError(
            f"checkpoint {path} holds NaN/inf weights in {bad[:3]} ({len(bad)} tensors): the "
            "training diverged. Re-train with a lower learning rate (TrainConfig.lr)."
        )
    model.to(select_device(device)).eval()
    meta = {k: ckpt[k] for k in ("model", "data", "config", "epoch", "best", "history")}
    return model, meta
