"""Figures of the two papers: RGB, class maps, probability-RGB, curves and maps.

Every figure is saved with :func:`savefig`, which writes atomically and, for figures
made from the offline demo, stamps a caption saying the scenes are simulated.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from vitseg.constants import CLASS_COLORS, CLASSES, IGNORE_INDEX
from vitseg.io import atomic_path

__all__ = [
    "SIMULATED_CAPTION",
    "class_cmap",
    "plot_classes",
    "plot_rgb",
    "prob_rgb",
    "savefig",
    "stretch",
]

#: Caption stamped on every figure made from the offline demo.
SIMULATED_CAPTION = "Simulated Sentinel-2 scenes (vitseg.synthetic), not real imagery"


def savefig(fig: Any, path: str | os.PathLike[str], *, simulated: bool, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG atomically, stamping the simulated-data caption if asked.

    Parameters
    ----------
    fig
        A matplotlib Figure.
    path
        Destination ``.png``; folders are created.
    simulated
        True when the figure shows simulated scenes (the offline demo): a caption in
        the lower left corner says so.
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if simulated:
        fig.text(
            0.005, 0.005, SIMULATED_CAPTION, fontsize=7, color="#b00020", ha="left", va="bottom",
            style="italic",
        )  # fmt: skip
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def stretch(
    arr: np.ndarray[Any, Any], *, lower_pct: float = 2.0, upper_pct: float = 98.0
) -> np.ndarray[Any, Any]:
    """Percentile-stretch an array to [0, 1] per band (last axis), NaN kept as 0.

    Examples
    --------
    >>> stretch(np.array([[0.0], [1.0], [2.0]]), lower_pct=0, upper_pct=100).ravel().tolist()
    [0.0, 0.5, 1.0]
    """
    out = np.zeros(arr.shape, dtype="float32")
    a = np.asarray(arr, dtype="float64")
    if a.ndim == 2:
        a = a[..., None]
        out = out[..., None]
    for b in range(a.shape[-1]):
        band = a[..., b]
        finite = band[np.isfinite(band)]
        if finite.size == 0:
            continue
        lo, hi = np.percentile(finite, [lower_pct, upper_pct])
        scaled = (band - lo) / (hi - lo if hi > lo else 1.0)
        out[..., b] = np.nan_to_num(np.clip(scaled, 0, 1), nan=0.0)
    return out.reshape(arr.shape) if np.asarray(arr).ndim == 2 else out


def plot_rgb(
    da: Any,
    *,
    ax: Any = None,
    bands: Sequence[str] = ("B04", "B03", "B02"),
    title: str | None = None,
) -> Any:
    """Show a ``(band, y, x)`` reflectance DataArray as a stretched RGB image.

    Use ``bands=("B08", "B04", "B03")`` for the false-colour (NIR-red-green) view.
    No-data (NaN) shows black. Axis ticks are map coordinates in metres.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    img = np.stack([np.asarray(da.sel(band=b).values, dtype="float64") for b in bands], axis=-1)
    x, y = np.asarray(da.x), np.asarray(da.y)
    extent = _extent(x, y)
    ax.imshow(stretch(img), extent=extent, interpolation="nearest")
    ax.set_title(title or "/".join(bands))
    _metre_axes(ax)
    return ax


def class_cmap(classes: Sequence[str] = CLASSES) -> ListedColormap:
    """Colormap with one colour per class (index = class code)."""
    return ListedColormap([CLASS_COLORS.get(c, "#999999") for c in classes])


def plot_classes(
    da: Any,
    *,
    ax: Any = None,
    classes: Sequence[str] = CLASSES,
    title: str | None = None,
    legend: bool = True,
    nodata: int = IGNORE_INDEX,
) -> Any:
    """Show a class raster (codes = index in ``classes``; ``nodata`` transparent)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    arr = np.asarray(da.values if hasattr(da, "values") else da)
    masked = np.ma.masked_where((arr == nodata) | (arr >= len(classes)), arr)
    extent = _extent(np.asarray(da.x), np.asarray(da.y)) if hasattr(da, "x") else None
    ax.imshow(
        masked, cmap=class_cmap(classes), vmin=-0.5, vmax=len(classes) - 0.5,
        interpolation="nearest", extent=extent,
    )  # fmt: skip
    ax.set_facecolor("#dddddd")
    if title:
        ax.set_title(title)
    if legend:
        handles = [Patch(color=CLASS_COLORS.get(c, "#999999"), label=c) for c in classes]
        handles.append(Patch(color="#dddddd", label="no data"))
        ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.8)
    if extent is not None:
        _metre_axes(ax)
    return ax


def prob_rgb(probs: Any, *, order: Sequence[int] = (0, 1, 2)) -> np.ndarray[Any, Any]:
    """Probability-RGB image of Gallwey et al. Fig. 4.

    The three class probabilities of a ``(class, y, x)`` array become the red, green
    and blue channels (``order`` picks which class goes to which channel; by default
    mines -> red, built -> green, vegetation -> blue), so confident pixels show pure
    colours and uncertain ones mixtures. No-data (NaN) shows black.

    Examples
    --------
    >>> prob_rgb(np.array([[[1.0]], [[0.0]], [[0.0]]])).ravel().tolist()
    [1.0, 0.0, 0.0]
    """
    arr = np.asarray(probs.values if hasattr(probs, "values") else probs, dtype="float32")
    rgb = np.stack([arr[i] if i < arr.shape[0] else np.zeros_like(arr[0]) for i in order], -1)
    out: np.ndarray[Any, Any] = np.nan_to_num(np.clip(rgb, 0, 1), nan=0.0)
    return out


def _extent(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[float, float, float, float]:
    dx = float(x[1] - x[0]) if x.size > 1 else 1.0
    dy = float(y[1] - y[0]) if y.size > 1 else -1.0
    return (
        float(x[0] - dx / 2), float(x[-1] + dx / 2), float(y[-1] + dy / 2), float(y[0] - dy / 2),
    )  # fmt: skip


def _metre_axes(ax: Any) -> None:
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("easting (m)", fontsize=8)
    ax.set_ylabel("northing (m)", fontsize=8)
