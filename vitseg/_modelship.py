"""Hand the model to dask workers: serialise it once, scatter it once, rebuild it once.

Internal to :mod:`vitseg.predict`. A model travels as a :class:`_ModelPayload` (its
bytes and their hash, or a checkpoint path). On a ``dask.distributed`` client the payload
is scattered to the workers once per client and weights; each process rebuilds the model
at most once per weights, device and precision (:func:`_get_model`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import threading
import weakref
from pathlib import Path
from typing import Any, Literal

import dask

from vitseg.errors import VitsegError


@dataclasses.dataclass(frozen=True)
class _ModelPayload:
    """A model serialised once, identified by the hash of its bytes (or checkpoint)."""

    token: str
    blob: bytes = b""
    path: str | None = None

    def __repr__(self) -> str:  # keep dask dashboards / errors readable
        return f"_ModelPayload(token={self.token[:12]}, bytes={len(self.blob)}, path={self.path})"


_CACHE: dict[tuple[str, str, str], tuple[Any, Any, bool]] = {}
_CACHE_LOCK = threading.Lock()
#: Serialises forward passes on a GPU (one model's activations at a time).
_INFER_LOCK = threading.Lock()
#: How many times this process rebuilt a model from its payload (tests read it).
_LOADS = 0


#: Payloads of live modules, reused while the module's tensors are unchanged.
_PAYLOADS: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], _ModelPayload]] = (
    weakref.WeakKeyDictionary()
)


def _fingerprint(model: Any) -> tuple[Any, ...] | None:
    """Return a cheap key that changes whenever the module's weights or structure change.

    Every parameter and buffer contributes its storage address, shape, dtype and
    in-place version counter (``load_state_dict``, optimiser steps and ``.to()`` all
    change one of them); module types and ``model.meta`` cover the rest. None when a
    tensor has no version counter (inference tensors): then nothing is cached.
    """
    try:
        tensors = tuple(
            (name, t.data_ptr(), tuple(t.shape), str(t.dtype), t._version)
            for name, t in model.state_dict(keep_vars=True).items()
        )
    except RuntimeError:
        return None
    kinds = tuple(type(m).__qualname__ for m in model.modules())
    return (tensors, kinds, repr(getattr(model, "meta", None)))


def _payload(model: Any) -> _ModelPayload:
    """Serialise ``model`` (an ``nn.Module`` or a checkpoint path) into a payload.

    A module is serialised (~0.3 s for a 100 MB U-Net) once, then reused for as long
    as :func:`_fingerprint` says it is unchanged: predicting scene after scene with the
    same model pays for it once.
    """
    import torch

    if isinstance(model, (str, os.PathLike)):
        from vitseg.io import sha256_file

        path = Path(model)
        if not path.exists():
            raise VitsegError(
                f"model checkpoint {str(path)!r} does not exist; pass an nn.Module or the "
                "path of a checkpoint written by vitseg.train (models/<arch>/best.pt)"
            )
        return _ModelPayload(token=sha256_file(path), path=str(path.resolve()))
    if not isinstance(model, torch.nn.Module):
        raise VitsegError(
            f"model must be a torch.nn.Module or a checkpoint path; got {type(model).__name__}"
        )
    key = _fingerprint(model)
    cached = _PAYLOADS.get(model)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    buf = io.BytesIO()
    torch.save(model, buf)
    blob = buf.getvalue()
    payload = _ModelPayload(token=hashlib.sha256(blob).hexdigest(), blob=blob)
    if key is not None:
        _PAYLOADS[model] = (key, payload)
    return payload


def _model_node(payload: _ModelPayload) -> Any:
    """Return the model's node in a prediction graph: one key per set of weights.

    On a ``dask.distributed`` client the payload is scattered to every worker once per
    client and weights, and graphs refer to it by key, so scene after scene does not ship
    the weights again (about 94 MB for a ResNet-34 U-Net); otherwise a pure delayed.
    """
    name = f"vitseg-model-{payload.token[:32]}"
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):  # no distributed, or no client: threads
        return dask.delayed(payload, pure=True, name=name)
    key = (client.id, payload.token)
    future = _SCATTERED.get(key)
    if future is None or future.status != "finished":
        future = client.scatter(payload, broadcast=True, hash=False)
        _SCATTERED[key] = future  # kept alive (and reused) while the client is
    return dask.delayed(future)


#: Scattered model payloads per (client id, weights token): kept so their futures live on.
_SCATTERED: dict[tuple[str, str], Any] = {}


def _get_model(payload: _ModelPayload, device: str, bf16: str) -> tuple[Any, Any, bool]:
    """Return ``(model, torch_device, use_bf16)`` for ``payload``, built once per process."""
    global _LOADS
    key = (payload.token, device, bf16)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        import torch

        import vitseg.compat  # noqa: F401  (before any smp class is unpickled)
        from vitseg.models import prepare_model, select_device, use_bf16

        if payload.path is not None:
            from vitseg.train import load_model

            model = load_model(payload.path)[0]
        else:
            model = torch.load(io.BytesIO(payload.blob), map_location="cpu", weights_only=False)
        dev = select_device(device)
        flag: bool | Literal["auto"] = "auto" if bf16 == "auto" else bf16 == "true"
        use16 = use_bf16(dev, flag)
        model.eval()
        prepare_model(model, dev, bf16=use16)
        while len(_CACHE) >= 2:  # bounded: at most two models per process
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (model, dev, use16)
        _LOADS += 1
        return _CACHE[key]
