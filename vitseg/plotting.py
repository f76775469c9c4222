"""Figures of the two papers: RGB, class maps, probability-RGB, curves and maps.

Every figure is saved with :func:`savefig`, which writes atomically and, for figures
made from the offline demo, stamps a caption saying the scenes are simulated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from vitseg.constants import CLASS_COLORS, CLASSES, IGNORE_INDEX
from vitseg.errors import (
    BandError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    NoValidDataError,
    ParamsError,
    SampleError,
    VectorError,
)
from vitseg.io import atomic_path
from vitseg.styles import _check_classes, change_colors, class_colormap

__all__ = [
    "SIMULATED_CAPTION",
    "SPLIT_COLORS",
    "add_north_arrow",
    "add_scale_bar",
    "class_cmap",
    "class_colormap",
    "plot_area_estimates",
    "plot_benchmark_panel",
    "plot_change_map",
    "plot_class_distribution",
    "plot_classes",
    "plot_cooccurrence",
    "plot_density",
    "plot_learning_curves",
    "plot_prediction_panels",
    "plot_rgb",
    "plot_split_map",
    "prob_rgb",
    "savefig",
    "stretch",
]

#: Caption stamped on every figure made from the offline demo.
SIMULATED_CAPTION = "Simulated Sentinel-2 scenes (vitseg.synthetic), not real imagery"


def savefig(
    fig: Any,
    path: str | os.PathLike[str],
    *,
    simulated: bool,
    dpi: int = 120,
    formats: Sequence[str] = ("png",),
) -> Path:
    """Save ``fig`` atomically, show it inline in a notebook, and close it.

    In an IPython kernel (a notebook, also when papermill executes it with
    ``MPLBACKEND=Agg``) the saved PNG is displayed as the cell's image output, once:
    the figure is closed afterwards, so the inline backend does not show it again at
    the end of the cell. Elsewhere (scripts, tests) nothing is displayed.

    Parameters
    ----------
    fig
        A matplotlib Figure.
    path
        Destination ``.png``; folders are created. Other formats are written beside it
        with their own suffix (``name.svg``, ``name.pdf``).
    simulated
        True when the figure shows simulated scenes (the offline demo): a caption in
        the lower left corner says so.
    dpi
        Resolution of the PNG.
    formats
        Any of ``"png"``, ``"svg"``, ``"pdf"``; the PNG is always written.

    Returns
    -------
    pathlib.Path
        ``path`` (the PNG).

    Raises
    ------
    ParamsError
        An unknown format (or a bare string), ``fig`` that is not a Figure, ``path``
        not ending in ``.png``, ``dpi`` not a finite number > 0, ``simulated`` not a bool.

    Examples
    --------
    >>> import tempfile
    >>> fig, ax = plt.subplots()
    >>> savefig(fig, tempfile.mkdtemp() + "/f.png", simulated=True, formats=("png", "svg")).name
    'f.png'
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        hint = "; pass ax.figure" if hasattr(fig, "figure") else ""
        raise ParamsError(f"fig must be a matplotlib Figure; got {type(fig).__name__}{hint}")
    if isinstance(formats, str):
        raise ParamsError(
            f"formats must be a list of formats, e.g. ('png', {formats!r}); got the string "
            f"{formats!r}"
        )
    bad = sorted(set(formats) - {"png", "svg", "pdf"})
    if bad:
        raise ParamsError(f"formats must be among ('png', 'svg', 'pdf'); got {bad}")
    if not isinstance(simulated, bool | np.bool_):
        raise ParamsError(f"'simulated' must be True or False; got {simulated!r}")
    _check_positive(dpi, "dpi")
    png = Path(path)
    if png.suffix.lower() != ".png":
        raise ParamsError(
            f"path must end in .png (other formats go beside it: formats=('png', 'svg')); "
            f"got {png.name!r}"
        )
    try:
        if simulated:
            fig.text(
                0.005, 0.005, SIMULATED_CAPTION, fontsize=7, color="#b00020", ha="left",
                va="bottom", style="italic",
            )  # fmt: skip
        with atomic_path(png, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        for fmt in dict.fromkeys(formats):
            if fmt != "png":
                with atomic_path(png.with_suffix(f".{fmt}"), suffix=f".{fmt}") as tmp:
                    fig.savefig(tmp, bbox_inches="tight", format=fmt)
        _display_png(png)
    finally:
        plt.close(fig)
    return png


def _display_png(path: Path) -> bool:
    """Show the PNG at ``path`` as an output of the running IPython kernel, if any.

    The saved file itself is displayed (not the figure), so the output does not depend on
    matplotlib's backend or IPython's figure formatters. Returns whether it was shown.
    """
    import sys

    if "IPython" not in sys.modules:  # never imported: no kernel is running this code
        return False
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:  # a terminal IPython
        return False
    from IPython.display import Image, display

    display(Image(data=path.read_bytes(), format="png"))
    return True


def _check_positive(value: Any, name: str, *, upper: float | None = None) -> None:
    """Raise :class:`ParamsError` unless ``value`` is a finite number > 0 (<= ``upper``)."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        where = f"in (0, {upper:g}]" if upper is not None else "> 0"
        raise ParamsError(f"{name} must be a finite number {where}; got {value!r}")


def _real_values(arr: Any, name: str) -> np.ndarray[Any, Any]:
    """``arr`` as a numpy array of real numbers; other dtypes are a :class:`DimensionError`."""
    a = np.asarray(arr.values if hasattr(arr, "values") else arr)
    if a.dtype.kind not in "biuf":
        raise DimensionError(
            f"{name} must hold real numbers; got dtype {a.dtype}. Complex or text values "
            "cannot be drawn: take .real or convert with .astype('float32')"
        )
    return a


def _class_codes(da: Any, name: str, classes: Sequence[str], nodata: int) -> np.ma.MaskedArray:
    """Return a 2-D class raster as a masked int array.

    No data, NaN, inf and codes outside ``0..len(classes)-1`` are masked; booleans and
    non-integer floats are refused.
    """
    arr = _real_values(da, name)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DimensionError(
            f"{name} must be a 2-D (y, x) raster; got shape {arr.shape}. Select one map, "
            "e.g. da.isel(time=0)"
        )
    if arr.dtype.kind == "b":
        raise DimensionError(
            f"{name} must hold integer class codes (index in classes); got dtype bool. A "
            "boolean mask is not a class map: convert it, e.g. mask.astype('uint8')"
        )
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        fraction = finite & (arr != np.round(arr))
        if fraction.any():
            raise LabelError(
                f"{name} holds {int(fraction.sum())} non-integer class values, e.g. "
                f"{arr[fraction][:3].tolist()}; a class map holds integer codes 0.."
                f"{len(classes) - 1} (NaN = no data). Probabilities? Take the argmax first"
            )
        codes = np.where(finite, arr, -1).astype("int64")
    else:
        codes = arr.astype("int64")
    bad = (codes < 0) | (codes == nodata) | (codes >= len(classes))
    if arr.dtype.kind == "f":
        bad |= ~np.isfinite(arr)
    return np.ma.masked_where(bad, codes)


def stretch(
    arr: np.ndarray[Any, Any], *, lower_pct: float = 2.0, upper_pct: float = 98.0
) -> np.ndarray[Any, Any]:
    """Percentile-stretch an array to [0, 1] per band (last axis), NaN kept as 0.

    A 2-D array is one band; from 3-D on the last axis holds the bands. +/-inf are left
    out of the percentiles and shown as 1 / 0.

    Raises
    ------
    DimensionError
        A 1-D array (each value would be its own band) or values that are not real
        numbers.
    ParamsError
        Not ``0 <= lower_pct < upper_pct <= 100``.

    Examples
    --------
    >>> stretch(np.array([[0.0], [1.0], [2.0]]), lower_pct=0, upper_pct=100).ravel().tolist()
    [0.0, 0.5, 1.0]
    """
    raw = _real_values(arr, "the array to stretch")
    if raw.ndim < 2:
        raise DimensionError(
            f"stretch needs a (y, x) band or a (..., band) stack; got shape {raw.shape}. "
            "Reshape a 1-D array first, e.g. a[:, None]"
        )
    pct_ok = all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in (lower_pct, upper_pct)
    )
    if not pct_ok or not 0 <= lower_pct < upper_pct <= 100:
        raise ParamsError(
            f"percentiles must satisfy 0 <= lower_pct < upper_pct <= 100; got "
            f"lower_pct={lower_pct!r}, upper_pct={upper_pct!r}"
        )
    out = np.zeros(arr.shape, dtype="float32")
    a = raw.astype("float64")
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
    furniture: bool = True,
) -> Any:
    """Show a ``(band, y, x)`` reflectance DataArray as a stretched RGB image.

    Use ``bands=("B08", "B04", "B03")`` for the false-colour (NIR-red-green) view.
    No-data (NaN) shows black. Axis ticks are map coordinates in metres; ``furniture``
    adds a scale bar (projected CRS) and a north arrow.

    Raises
    ------
    DimensionError
        ``da`` is not a ``(band, y, x)`` DataArray, or has no pixels.
    BandError
        A band of ``bands`` is missing.
    ParamsError
        ``bands`` does not name 3 bands.
    """
    import xarray as xr

    if not isinstance(da, xr.DataArray) or set(da.dims) != {"band", "y", "x"}:
        got = da.dims if isinstance(da, xr.DataArray) else type(da).__name__
        raise DimensionError(
            f"plot_rgb needs a (band, y, x) DataArray; got {got}. Select one scene or "
            "composite first, e.g. cube.isel(time=0)"
        )
    if isinstance(bands, str) or len(bands) != 3:
        raise ParamsError(f"bands must name 3 bands (red, green, blue); got {bands!r}")
    have = [str(b) for b in da["band"].values.tolist()] if "band" in da.coords else []
    lacking = [b for b in bands if b not in have]
    if lacking:
        raise BandError(
            f"plot_rgb: the image lacks bands {lacking}; it has {have}. Pass bands= from "
            "those, e.g. bands=('B04', 'B03', 'B02')"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    img = np.stack([np.asarray(da.sel(band=b).values, dtype="float64") for b in bands], axis=-1)
    x, y = np.asarray(da.x), np.asarray(da.y)
    extent = _extent(x, y)
    ax.imshow(stretch(img), extent=extent, interpolation="nearest")
    ax.set_title(title or "/".join(bands))
    _metre_axes(ax, furniture=furniture, crs=_crs_of(da))
    return ax


def class_cmap(classes: Sequence[str] = CLASSES) -> ListedColormap:
    """Colormap with one colour per class (index = class code).

    For a GDAL colour table of a class COG use :func:`class_colormap` (from
    :mod:`vitseg.styles`) with :func:`vitseg.predict.write_cog`.

    Raises
    ------
    ParamsError
        ``classes`` is a bare string or empty.
    """
    classes = _check_classes(classes)
    return ListedColormap([CLASS_COLORS.get(c, "#999999") for c in classes])


def plot_classes(
    da: Any,
    *,
    ax: Any = None,
    classes: Sequence[str] = CLASSES,
    title: str | None = None,
    legend: bool = True,
    nodata: int = IGNORE_INDEX,
    furniture: bool = True,
) -> Any:
    """Show a class raster (codes = index in ``classes``; ``nodata`` transparent).

    A DataArray with ``x``/``y`` coordinates is drawn in map coordinates (metres) with,
    if ``furniture``, a scale bar (projected CRS) and a north arrow. NaN, inf, negative
    codes and codes ``>= len(classes)`` are drawn as no data, like ``nodata``.

    Raises
    ------
    DimensionError
        Not 2-D (a leading axis of length 1 is dropped), boolean, or not real numbers.
    LabelError
        Non-integer float values (probabilities are not class codes).
    """
    classes = _check_classes(classes)
    masked = _class_codes(da, "class raster", classes, nodata)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
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
        _metre_axes(ax, furniture=furniture, crs=_crs_of(da))
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

    Raises
    ------
    DimensionError
        ``probs`` is not 3-D ``(class, y, x)`` real numbers.
    ParamsError
        ``order`` is not 3 class indices >= 0, or values lie outside 0..1 (percentages).
    """
    arr = _real_values(probs, "probs").astype("float32")
    if arr.ndim != 3:
        raise DimensionError(
            f"probs must be a (class, y, x) array; got shape {arr.shape}. For one class's "
            "probability use plot_density or imshow"
        )
    if (
        isinstance(order, str)
        or len(order) != 3
        or not all(
            isinstance(i, int | np.integer) and not isinstance(i, bool) and i >= 0 for i in order
        )
    ):
        raise ParamsError(f"order must be 3 class indices >= 0 (red, green, blue); got {order!r}")
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < -0.01 or finite.max() > 1.01):
        raise ParamsError(
            f"probs must lie in 0..1; got values in [{finite.min():g}, {finite.max():g}] "
            "(divide a percentage by 100)"
        )
    rgb = np.stack([arr[i] if i < arr.shape[0] else np.zeros_like(arr[0]) for i in order], -1)
    out: np.ndarray[Any, Any] = np.nan_to_num(np.clip(rgb, 0, 1), nan=0.0)
    return out


def _extent(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[float, float, float, float]:
    if x.size == 0 or y.size == 0:
        raise DimensionError(
            f"the map has no pixels ({y.size} rows x {x.size} columns); check the window or "
            "clip that made it"
        )
    dx = float(x[1] - x[0]) if x.size > 1 else 1.0
    dy = float(y[1] - y[0]) if y.size > 1 else -1.0
    return (
        float(x[0] - dx / 2), float(x[-1] + dx / 2), float(y[-1] + dy / 2), float(y[0] - dy / 2),
    )  # fmt: skip


def _metre_axes(ax: Any, *, furniture: bool = False, crs: Any = None) -> None:
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("easting (m)", fontsize=8)
    ax.set_ylabel("northing (m)", fontsize=8)
    if furniture:
        if crs is None or getattr(crs, "is_projected", True):  # no bar in degrees
            add_scale_bar(ax)
        add_north_arrow(ax)


def _crs_of(da: Any) -> Any:
    try:
        return da.rio.crs
    except AttributeError:  # plain arrays, DataArrays without the rio accessor
        return None


def _nice_length(span: float) -> float:
    """Return a round length (1, 2 or 5 x 10^k) near a fifth of ``span``.

    Examples
    --------
    >>> _nice_length(6400.0), _nice_length(330.0), _nice_length(12.0)
    (1000.0, 50.0, 2.0)
    """
    target = max(span / 5.0, 1e-9)
    k = 10 ** np.floor(np.log10(target))
    return float(max(m * k for m in (1, 2, 5) if m * k <= target))


def add_scale_bar(
    ax: Any,
    *,
    length_m: float | None = None,
    loc: str = "lower left",
    color: str = "black",
) -> Any:
    """Draw a scale bar on a map whose axes are in metres (a projected CRS).

    Parameters
    ----------
    ax
        Matplotlib axes showing map coordinates in metres (:func:`plot_classes` ...).
    length_m
        Bar length in metres; default a round length near a fifth of the map width
        (1, 2 or 5 x 10^k m), labelled in km from 1 km.
    loc
        Matplotlib location string of the bar.
    color
        Bar and text colour (on a white box).

    Returns
    -------
    matplotlib.offsetbox.AnchoredOffsetbox
        The artist added to ``ax``.

    Raises
    ------
    ParamsError
        ``length_m`` is not a finite number > 0.

    Examples
    --------
    >>> fig, ax = plt.subplots()
    >>> _ = ax.set_xlim(600000, 606400)
    >>> add_scale_bar(ax).txt_label.get_text()
    '1 km'
    >>> plt.close(fig)
    """
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # type: ignore[import-untyped]

    if length_m is not None:
        _check_positive(length_m, "length_m")
    x0, x1 = ax.get_xlim()
    length = float(length_m) if length_m is not None else _nice_length(abs(x1 - x0))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    y0, y1 = ax.get_ylim()
    bar = AnchoredSizeBar(
        ax.transData, length, label, loc, pad=0.4, borderpad=0.6, sep=3, color=color,
        frameon=True, size_vertical=abs(y1 - y0) / 150, fontproperties={"size": 7},
    )  # fmt: skip
    bar.patch.set_alpha(0.75)
    bar.patch.set_edgecolor("none")
    bar.set_gid("scale_bar")
    ax.add_artist(bar)
    return bar


def add_north_arrow(ax: Any, *, xy: tuple[float, float] = (0.06, 0.94), size: float = 0.08) -> Any:
    """Draw a north arrow (a north-up map: grid north) at ``xy`` in axes fractions.

    Parameters
    ----------
    ax
        Matplotlib axes.
    xy
        Position of the arrow's tip, as fractions of the axes.
    size
        Arrow length as a fraction of the axes height.

    Returns
    -------
    matplotlib.text.Annotation
        The "N" annotation with its arrow.

    Raises
    ------
    ParamsError
        ``size`` not in (0, 1], or ``xy`` not two finite numbers.

    Examples
    --------
    >>> fig, ax = plt.subplots()
    >>> add_north_arrow(ax).get_text()
    'N'
    >>> plt.close(fig)
    """
    from matplotlib import patheffects

    _check_positive(size, "size", upper=1.0)
    xy_ok = isinstance(xy, Sequence) and len(xy) == 2
    if not xy_ok or not all(isinstance(v, int | float) and np.isfinite(v) for v in xy):
        raise ParamsError(f"xy must be two finite axes fractions, e.g. (0.06, 0.94); got {xy!r}")
    ann = ax.annotate(
        "N", xy=xy, xytext=(xy[0], xy[1] - size), xycoords="axes fraction",
        textcoords="axes fraction", ha="center", va="top", fontsize=9, fontweight="bold",
        arrowprops={"facecolor": "black", "edgecolor": "white", "width": 3, "headwidth": 9,
                    "headlength": 8, "linewidth": 0.6},
    )  # fmt: skip
    ann.set_path_effects([patheffects.withStroke(linewidth=2.5, foreground="white")])
    ann.set_gid("north_arrow")
    return ann


# --- labels and tiles (vitseg.labels, vitseg.tiles) -----------------------------------

#: Colours of the train / val / test splits on split maps.
SPLIT_COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#d62728"}


def plot_class_distribution(
    dist: Any, *, ax: Any = None, title: str = "Class distribution of labelled pixels"
) -> Any:
    """Bar chart of :func:`vitseg.labels.class_distribution` (fractions, counts on bars).

    ``dist`` may also be a mapping ``{group: distribution}`` (e.g. one per split):
    the bars are then grouped per class.

    Raises
    ------
    ParamsError
        An empty mapping, or a table without ``class``, ``fraction`` and ``pixels``.
    """
    groups = dict(dist) if isinstance(dist, dict) else {"": dist}
    if not groups:
        raise ParamsError("dist is an empty mapping; give at least one class distribution")
    for name, df in groups.items():
        _need_columns(df, ("class", "fraction", "pixels"), f"distribution {name!r}".replace(
            " ''", ""), "vitseg.labels.class_distribution", ParamsError)  # fmt: skip
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / len(groups)
    for g, (name, df) in enumerate(groups.items()):
        x = np.arange(len(df)) + (g - (len(groups) - 1) / 2) * width
        colors = [CLASS_COLORS.get(c, "#999999") for c in df["class"]]
        bars = ax.bar(
            x, df["fraction"], width=width * 0.95, label=name or None,
            color=colors if len(groups) == 1 else None, edgecolor="black", linewidth=0.4,
        )  # fmt: skip
        for bar, n in zip(bars, df["pixels"], strict=True):
            ax.annotate(
                f"{int(n):,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center", va="bottom", fontsize=7,
            )  # fmt: skip
    first = next(iter(groups.values()))
    ax.set_xticks(np.arange(len(first)), list(first["class"]))
    ax.set_ylabel("fraction of labelled pixels")
    ax.set_ylim(0, 1.08)
    ax.set_title(title)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    return ax


def _need_columns(
    table: Any, columns: Sequence[str], name: str, source: str, error: type[Exception]
) -> None:
    have = [str(c) for c in getattr(table, "columns", [])]
    lacking = [c for c in columns if c not in have]
    if lacking:
        raise error(f"{name} lacks columns {lacking}; it has {have}. Pass the table of {source}")


def plot_cooccurrence(
    matrix: Any,
    *,
    ax: Any = None,
    title: str = "Class co-occurrence (VitSegh24 eq. 2)",
    normalize_rows: bool = True,
) -> Any:
    """Heat map of :func:`vitseg.labels.cooccurrence`.

    With ``normalize_rows`` each row shows the share of a class's neighbours in each
    class (rows sum to 1); cells are annotated with share and raw pair count.

    Raises
    ------
    DimensionError
        ``matrix`` is not a non-empty square 2-D table of real numbers.
    ParamsError
        A count is NaN, infinite or negative.
    """
    counts = _real_values(matrix, "matrix").astype("float64")
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.size == 0:
        raise DimensionError(
            f"matrix must be a square (class, class) table of pair counts; got shape "
            f"{counts.shape}. Pass vitseg.labels.cooccurrence(...)"
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        bad = counts[~np.isfinite(counts) | (counts < 0)]
        raise ParamsError(f"matrix counts must be finite and >= 0; got {bad[:3].tolist()}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    shown = counts
    if normalize_rows:
        sums = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    im = ax.imshow(shown, cmap="viridis", vmin=0, vmax=1 if normalize_rows else None)
    labels_r = list(getattr(matrix, "index", range(counts.shape[0])))
    labels_c = list(getattr(matrix, "columns", range(counts.shape[1])))
    ax.set_xticks(range(len(labels_c)), labels_c)
    ax.set_yticks(range(len(labels_r)), labels_r)
    ax.set_xlabel("class of the offset neighbour")
    ax.set_ylabel("class of the pixel")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            dark = shown[i, j] < 0.6 * (np.nanmax(shown) or 1)
            ax.text(
                j, i, f"{shown[i, j]:.2f}\n({int(counts[i, j]):,})", ha="center", va="center",
                fontsize=7, color="white" if dark else "black",
            )  # fmt: skip
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                       label="row share" if normalize_rows else "pairs")  # fmt: skip
    ax.set_title(title, fontsize=10)
    return ax


def plot_split_map(
    index: Any,
    *,
    ax: Any = None,
    background: Any = None,
    title: str = "Tiles by split (spatial blocks)",
    furniture: bool = True,
) -> Any:
    """Map of tile footprints coloured by split (train/val/test).

    ``index`` is the output of :func:`vitseg.tiles.split_tiles` (a GeoDataFrame or a
    table with ``minx, miny, maxx, maxy, split``). ``background`` (optional class
    raster DataArray on the same CRS): its mines are drawn underneath in dark grey.

    Raises
    ------
    VectorError
        ``index`` lacks ``minx, miny, maxx, maxy`` or ``split``.
    NoValidDataError
        ``index`` has no tile.
    """
    from matplotlib.patches import Rectangle

    cols = ("minx", "miny", "maxx", "maxy", "split")
    _need_columns(index, cols, "tile index", "vitseg.tiles.split_tiles", VectorError)
    if len(index) == 0:
        raise NoValidDataError("tile index is empty; there is no tile to draw")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    if background is not None:
        # Mines of the label raster in dark grey under the tiles; other classes blank.
        lab = np.asarray(background.values)
        ax.imshow(
            np.ma.masked_where(lab != 0, lab), cmap=ListedColormap(["#333333"]),
            extent=_extent(np.asarray(background.x), np.asarray(background.y)),
            interpolation="nearest", zorder=0,
        )  # fmt: skip
    seen = set()
    # One rectangle per footprint (several dates of a place share footprint and split).
    footprints = index.drop_duplicates(subset=["minx", "miny", "maxx", "maxy"])
    for row in footprints.itertuples(index=False):
        color = SPLIT_COLORS.get(str(row.split), "#999999")
        ax.add_patch(
            Rectangle(
                (row.minx, row.miny),
                row.maxx - row.minx,
                row.maxy - row.miny,
                facecolor=(*matplotlib.colors.to_rgb(color), 0.3),
                edgecolor="black",
                linewidth=0.5,
            )
        )
        seen.add(str(row.split))
    ax.set_xlim(float(np.min(index["minx"])), float(np.max(index["maxx"])))
    ax.set_ylim(float(np.min(index["miny"])), float(np.max(index["maxy"])))
    ax.set_aspect("equal")
    handles = [
        Patch(
            facecolor=SPLIT_COLORS[s], alpha=0.5, label=f"{s} ({int((index['split'] == s).sum())})"
        )
        for s in SPLIT_COLORS
        if s in seen
    ]
    if background is not None:
        handles.append(Patch(facecolor="#333333", label="mines (labels)"))
    ax.legend(handles=handles, loc="upper right", fontsize=8, title="split (tiles)")
    ax.set_title(title)
    _metre_axes(ax, furniture=furniture, crs=getattr(index, "crs", None))
    return ax


def plot_benchmark_panel(
    rgbs: Sequence[Any],
    references: Sequence[Any],
    predictions: Mapping[str, Sequence[Any]],
    *,
    tile_names: Sequence[str] | None = None,
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
    title: str | None = None,
) -> Any:
    """Show reference and each classifier's map side by side, a row per tile (Gallwey Fig. 5).

    Parameters
    ----------
    rgbs
        ``(band, y, x)`` reflectance DataArrays with B04/B03/B02, one per tile.
    references
        ``(y, x)`` reference class rasters, one per tile.
    predictions
        ``{classifier: [class raster per tile]}``, in column order.
    tile_names
        Row labels.
    classes, nodata
        Class names (index = code) and the transparent no-data code.
    title
        Figure title above the column titles.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ParamsError
        No tile, or ``rgbs``, each classifier's list or ``tile_names`` of another length
        than ``references``.
    """
    n_rows = len(references)
    lengths = {"rgbs": len(rgbs), **{f"predictions[{k!r}]": len(v) for k, v in predictions.items()}}
    if tile_names is not None:
        lengths["tile_names"] = len(tile_names)
    wrong = {k: v for k, v in lengths.items() if v != n_rows}
    if n_rows == 0 or wrong:
        raise ParamsError(
            f"plot_benchmark_panel needs one entry per tile in every list; references has "
            f"{n_rows}" + "".join(f", {k} has {v}" for k, v in wrong.items())
        )
    n_cols = 2 + len(predictions)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(2.4 * n_cols, 2.4 * n_rows + 0.6), squeeze=False
    )
    titles = ["Sentinel-2 RGB", "Reference", *predictions]
    for r in range(n_rows):
        plot_rgb(rgbs[r], ax=axes[r, 0], furniture=False)
        add_scale_bar(axes[r, 0])
        axes[r, 0].set_title(titles[0] if r == 0 else "")
        layers = [references[r], *(maps[r] for maps in predictions.values())]
        for c, layer in enumerate(layers, start=1):
            plot_classes(
                layer, ax=axes[r, c], classes=classes, legend=False, nodata=nodata,
                title=titles[c] if r == 0 else None, furniture=False,
            )  # fmt: skip
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel("")
        if tile_names is not None:
            axes[r, 0].set_ylabel(str(tile_names[r]), fontsize=8)
    handles = [Patch(color=CLASS_COLORS.get(c, "#999999"), label=c) for c in classes]
    handles.append(Patch(color="#dddddd", label="no data / ignored"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def plot_area_estimates(table: Any, *, ax: Any = None, title: str | None = None) -> Any:
    """Plot mapped area beside the stratified area estimate and its 95% interval, per class.

    Parameters
    ----------
    table
        Output of :func:`vitseg.accuracy.estimate_area` (``mapped_ha``, ``area_ha``,
        ``area_ha_ci95``; index = class names).
    ax
        Axes to draw on.
    title
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    SampleError
        ``table`` lacks ``mapped_ha``, ``area_ha`` or ``area_ha_ci95``.
    """
    _need_columns(table, ("mapped_ha", "area_ha", "area_ha_ci95"), "table",
                  "vitseg.accuracy.estimate_area", SampleError)  # fmt: skip
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    names = [str(c) for c in table.index]
    pos = np.arange(len(names))
    colors = [CLASS_COLORS.get(c, "#999999") for c in names]
    ax.bar(pos - 0.2, table["mapped_ha"], width=0.4, color=colors, alpha=0.45, label="mapped")
    ax.bar(
        pos + 0.2, table["area_ha"], width=0.4, color=colors, yerr=table["area_ha_ci95"],
        capsize=4, label="estimated (95% CI)", edgecolor="black", linewidth=0.5,
    )  # fmt: skip
    ax.set_xticks(pos, names)
    ax.set_ylabel("area (ha)")
    ax.set_title(title or "Mapped versus estimated area")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


# --- monitoring (vitseg.change, vitseg.density, vitseg.zonal) ---------------------------


def plot_change_map(
    codes: Any,
    *,
    ax: Any = None,
    classes: Sequence[str] = CLASSES,
    title: str | None = None,
    nodata: int = IGNORE_INDEX,
    furniture: bool = True,
) -> Any:
    """Show a change map of :func:`vitseg.change.change_map` (Gallwey Fig. 6 insets).

    Unchanged pixels are drawn in pale class colours; pixels that changed take the colour
    of their new class, darkened, and changes *to* the first class (mines) are red: the
    colours of :func:`vitseg.styles.change_colors`, which the change COGs' colour tables
    use too. ``furniture``: a scale bar (projected CRS) and a north arrow. ``nodata``,
    NaN, inf and codes outside ``0..n*n-1`` are drawn grey (no data).

    Raises
    ------
    DimensionError
        Not 2-D, boolean, or not real numbers.
    LabelError
        Non-integer float codes (they were truncated onto a change code).
    """
    classes = _check_classes(classes, max_n=15)
    n = len(classes)
    arr = _class_codes(codes, "change map", [str(i) for i in range(n * n)], nodata).filled(-1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    rgb = np.full((*arr.shape, 3), 0.87)
    colors = {k: np.array(v[:3]) / 255.0 for k, v in change_colors(classes).items()}
    handles = []
    for f in range(n):
        for t in range(n):
            rgb[arr == f * n + t] = colors[f * n + t]
            if f == t:
                handles.append(Patch(color=colors[f * n + t], label=f"{classes[t]} (stable)"))
    handles.append(Patch(color=colors[n], label=f"new {classes[0]}"))  # code n: 1 -> 0
    handles.extend(
        Patch(color=colors[t], label=f"-> {c}") for t, c in enumerate(classes) if t
    )  # code t: 0 -> t
    handles.append(Patch(color=(0.87, 0.87, 0.87), label="no data"))
    extent = _extent(np.asarray(codes.x), np.asarray(codes.y)) if hasattr(codes, "x") else None
    ax.imshow(rgb, extent=extent, interpolation="nearest")
    ax.legend(handles=handles, loc="lower right", fontsize=6, framealpha=0.85)
    if title:
        ax.set_title(title)
    if extent is not None:
        _metre_axes(ax, furniture=furniture, crs=_crs_of(codes))
    return ax


def plot_density(
    da: Any,
    *,
    ax: Any = None,
    title: str | None = None,
    outlines: Any = None,
    vmax: float | None = None,
    cmap: str = "YlOrRd",
    furniture: bool = True,
) -> Any:
    """Show a kernel-density map of :func:`vitseg.density.kde_map` (Gallwey Fig. 9).

    Zero density is left transparent; ``outlines`` (a GeoDataFrame, e.g. districts) are
    drawn on top in the map's CRS; the colour bar carries the map's ``units``;
    ``furniture``: a scale bar (projected CRS) and a north arrow. NaN and inf are drawn
    transparent and left out of the colour scale (default top: the largest finite value).

    Raises
    ------
    DimensionError
        Not real numbers, or no pixels.
    ParamsError
        ``vmax`` is not a finite number > 0.
    MissingCRSError
        ``outlines`` are given but ``da`` has no CRS.
    """
    if vmax is not None:
        _check_positive(vmax, "vmax")
    arr = _real_values(da, "density map").astype(float)
    extent = _extent(np.asarray(da.x), np.asarray(da.y))
    has_outlines = outlines is not None and len(outlines)
    if has_outlines and _crs_of(da) is None:
        raise MissingCRSError(
            "density map has no CRS, so outlines cannot be drawn on it; set it with "
            "da.rio.write_crs('EPSG:32630')"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    finite = np.isfinite(arr)
    masked = np.ma.masked_where(~finite | (np.where(finite, arr, 0) <= 0), arr)
    top = float(arr[finite].max()) if finite.any() else 0.0
    im = ax.imshow(
        masked, extent=extent, cmap=cmap, vmin=0, vmax=vmax or (top if top > 0 else 1.0),
        interpolation="bilinear",
    )  # fmt: skip
    if has_outlines:
        outlines.to_crs(da.rio.crs).boundary.plot(ax=ax, color="#607d8b", linewidth=0.5)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    cb = ax.figure.colorbar(im, ax=ax, shrink=0.75)
    cb.set_label(str(da.attrs.get("units", "density")), fontsize=8)
    bandwidth = da.attrs.get("bandwidth_m")
    bw = f"{bandwidth:g}" if isinstance(bandwidth, int | float | np.number) else "?"
    ax.set_title(title or f"kernel density (bandwidth {bw} m)", fontsize=9)
    _metre_axes(ax, furniture=furniture, crs=_crs_of(da))
    return ax


def plot_prediction_panels(
    rgb: Any,
    classes: Any,
    confidence: Any,
    probs: Any,
    *,
    class_names: Sequence[str] = CLASSES,
    title: str | None = None,
) -> Any:
    """Four panels of Gallwey et al. Fig. 4: RGB, class, confidence, probability-RGB.

    Parameters
    ----------
    rgb
        ``(band, y, x)`` reflectance with ``B04``, ``B03``, ``B02`` (no-data black).
    classes
        ``(y, x)`` class codes (255 = no data).
    confidence
        ``(y, x)`` highest class probability.
    probs
        ``(class, y, x)`` probabilities; channel ``i`` of the last panel is class ``i``
        (mines -> red, built -> green, vegetation -> blue, as :func:`prob_rgb`): pure
        colours are confident predictions, mixed ("muddied") ones are where the model
        hesitates between classes.
    class_names
        Names of the class codes (legend of the class and probability panels).
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    GridMismatchError
        The four inputs do not share one (y, x) shape (the panels would be misaligned).
    """
    shapes = {
        "rgb": tuple(np.shape(rgb))[-2:], "classes": tuple(np.shape(classes))[-2:],
        "confidence": tuple(np.shape(confidence))[-2:], "probs": tuple(np.shape(probs))[-2:],
    }  # fmt: skip
    if len(set(shapes.values())) > 1:
        raise GridMismatchError(
            f"the four panels must share one (y, x) grid; got shapes {shapes}. Cut them from "
            "the same window"
        )
    fig, axes = plt.subplots(1, 4, figsize=(20, 5.6), constrained_layout=True)
    plot_rgb(rgb, ax=axes[0], title="a) Sentinel-2 RGB (B04/B03/B02)")
    plot_classes(classes, ax=axes[1], classes=class_names, title="b) predicted class",
                 furniture=False)  # fmt: skip
    extent = _extent(np.asarray(confidence.x), np.asarray(confidence.y))
    conf = np.ma.masked_invalid(np.asarray(confidence.values, dtype=float))
    im = axes[2].imshow(conf, extent=extent, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_facecolor("#dddddd")
    axes[2].set_title("c) confidence (highest class probability)")
    cb = fig.colorbar(im, ax=axes[2], shrink=0.8)
    cb.set_label("probability", fontsize=8)
    axes[3].imshow(prob_rgb(probs), extent=extent, interpolation="nearest")
    axes[3].set_title("d) class probabilities as RGB")
    channel_colours = ("#ff0000", "#00ff00", "#0000ff")
    handles = [
        Patch(color=channel_colours[i], label=f"{name} = {('red', 'green', 'blue')[i]}")
        for i, name in enumerate(class_names[:3])
    ]
    axes[3].legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.8)
    for ax in axes[2:]:
        _metre_axes(ax)
    if title:
        fig.suptitle(title)
    return fig


def plot_learning_curves(histories: Mapping[str, Any], *, title: str | None = None) -> Any:
    """Learning curves of one or more training runs (``history.csv`` of :func:`vitseg.train.fit`).

    Left: training and validation loss per epoch (log scale); right: the validation
    score of each run (mine-class F1 solid, mean IoU dashed), computed on whole tiles.

    Parameters
    ----------
    histories
        Run name -> history DataFrame (columns ``epoch``, ``train_loss``, ``val_loss``,
        ``val_f1``, ``val_mean_iou``).
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ParamsError
        No history, or a history without the columns above.
    """
    if not histories:
        raise ParamsError("histories is empty; give {run name: history DataFrame}")
    for name, hist in histories.items():
        _need_columns(hist, ("epoch", "train_loss", "val_loss", "val_f1", "val_mean_iou"),
                      f"history {name!r}", "vitseg.train.fit (history.csv)", ParamsError)  # fmt: skip
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, hist) in enumerate(histories.items()):
        c = colours[i % len(colours)]
        ep = np.asarray(hist["epoch"])
        ax_loss.plot(ep, hist["train_loss"], "-o", color=c, ms=3, label=f"{name} train")
        ax_loss.plot(ep, hist["val_loss"], "--s", color=c, ms=3, label=f"{name} validation")
        ax_score.plot(ep, hist["val_f1"], "-o", color=c, ms=3, label=f"{name} mine F1")
        ax_score.plot(ep, hist["val_mean_iou"], "--s", color=c, ms=3, label=f"{name} mean IoU")
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss (log scale)", title="Loss")
    ax_score.set(xlabel="epoch", ylabel="score", ylim=(0, 1),
                 title="Validation score (whole validation tiles)")  # fmt: skip
    for ax in (ax_loss, ax_score):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig
