"""Compatibility shims, imported before segmentation-models-pytorch and timm.

The PyPI torchvision wheel is built against CUDA torch. Beside the CPU build of
torch its C++ operators are not registered, and importing torchvision fails with
``operator torchvision::nms does not exist`` when its Python side registers fake
kernels for ``nms`` and ``qnms`` (the other meta kernels are skipped when the
extension is absent). segmentation-models-pytorch and timm import torchvision
at import time, so vitseg defines the two operator schemas first. Nothing in vitseg
calls them; they only let torchvision import.

huggingface_hub (imported by timm) imports ``tqdm.auto``, which in a Jupyter kernel
without ipywidgets warns "IProgress not found" into every training notebook. vitseg
draws its own text progress bars, so that one warning is silenced here.

torch's CPU allocator asks for transparent huge pages on its large tensors (>= 2 MB)
when ``THP_MEM_ALLOC_ENABLE=1``; otherwise each forward pass maps its activations afresh
and faults them in 4 KB at a time (about 30,000 page faults per batch of eight 256 px
windows). vitseg sets that variable before torch is imported, unless it is already
set: on a 2-core AMD EPYC (avx512_bf16) the SegFormer path mapped 1.4x as many km² per
second and the U-Net path 1.1x (``bench/predict.py``, README "Benchmarks"), at the same
peak memory. It takes effect only when ``import vitseg`` comes before torch's first
tensor; set ``THP_MEM_ALLOC_ENABLE=0`` to keep torch's default. A kernel with huge pages
off (``/sys/kernel/mm/transparent_hugepage/enabled`` = never) ignores the request.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

#: torch reads this once, at its first CPU allocation: before ``import torch``.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import torch

__all__ = ["ensure_torchvision", "huge_pages", "thp_mode"]

_SCHEMAS = {
    "nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_done = False


def ensure_torchvision() -> None:
    """Register the torchvision operator schemas missing beside CPU torch (idempotent)."""
    global _done
    if _done:
        return
    if torch.version.cuda is None:
        for name, schema in _SCHEMAS.items():
            try:
                torch.library.define(f"torchvision::{name}", schema)
            except (RuntimeError, ValueError):  # already defined (real ops, or a second call)
                pass
    _done = True


def thp_mode(path: str = "/sys/kernel/mm/transparent_hugepage/enabled") -> str | None:
    """Return the kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``).

    None when ``path`` cannot be read (not Linux, or no such setting).

    Examples
    --------
    >>> thp_mode("/nonexistent") is None
    True
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else text.strip() or None


def huge_pages(path: str = "/sys/kernel/mm/transparent_hugepage/enabled") -> str:
    """Say whether torch's large CPU tensors get transparent huge pages, for logs and manifests.

    Names ``THP_MEM_ALLOC_ENABLE`` (torch's request, read at its first allocation) and the
    kernel's mode from ``path`` (:func:`thp_mode`: ``always`` / ``madvise`` honour the
    request, ``never`` ignores it).

    Examples
    --------
    >>> huge_pages("/nonexistent").endswith("kernel mode unknown")
    True
    """
    asked = os.environ.get("THP_MEM_ALLOC_ENABLE", "unset")
    mode = thp_mode(path)
    if mode is None:
        return f"THP_MEM_ALLOC_ENABLE={asked}; kernel mode unknown"
    return f"THP_MEM_ALLOC_ENABLE={asked}; kernel transparent_hugepage={mode}"


warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
ensure_torchvision()
