"""vitseg: map artisanal small-scale gold mining in Ghana from Sentinel-2.

A small library behind papermill notebooks that reproduce Gallwey et al. (U-Net,
pixel baselines, temporal ensembling, change and density maps, stratified-sample
accuracy) and VitSegh24 (SegFormer on Sentinel-2 L2A tiles).

Sub-modules are imported lazily (``vitseg.cube``, ``vitseg.train``...). ``import vitseg``
always runs :mod:`vitseg.compat` first, so torchvision (imported by
segmentation-models-pytorch and timm) works beside the CPU build of torch whichever
vitseg module is imported.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from vitseg import compat as _compat  # noqa: F401  (before anything imports torchvision)
from vitseg.errors import VitsegError

try:
    __version__ = importlib.metadata.version("vitseg")  # from the installed metadata (pyproject)
except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

_SUBMODULES = (
    "accuracy", "alerts", "aoi", "baselines", "change", "checkpoints", "chips", "cloud", "cog",
    "composite", "constants", "cube", "datasets", "density", "downloads", "errors",
    "estimators", "grid", "interpret", "io", "labelfiles", "labels", "losses", "metrics", "models",
    "paramspec",
    "periods", "plotting", "predict", "reference", "runner", "stac", "stac_server", "standin",
    "styles", "synthetic", "temporal", "tiles", "train", "webmap", "zonal",
)  # fmt: skip

__all__ = ["VitsegError", "__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"vitseg.{name}")
    raise AttributeError(f"module 'vitseg' has no attribute {name!r}")
