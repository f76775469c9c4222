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
from vitseg.io import atomic_path
from vitseg.styles import change_colors, class_colormap

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
        An unknown format.

    Examples
    --------
    >>> import tempfile
    >>> fig, ax = plt.subplots()
    >>> savefig(fig, tempfile.mkdtemp() + "/f.png", simulated=True, formats=("png", "svg")).name
    'f.png'
    """
    from vitseg.errors import ParamsError

    bad = sorted(set(formats) - {"png", "svg", "pdf"})
    if bad:
        raise ParamsError(f"formats must be among ('png', 'svg', 'pdf'); got {bad}")
    png = Path(path)
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
    furniture: bool = True,
) -> Any:
    """Show a ``(band, y, x)`` reflectance DataArray as a stretched RGB image.

    Use ``bands=("B08", "B04", "B03")`` for the false-colour (NIR-red-green) view.
    No-data (NaN) shows black. Axis ticks are map coordinates in metres; ``furniture``
    adds a scale bar (projected CRS) and a north arrow.
    """
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
    """
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
    if ``furniture``, a scale bar (projected CRS) and a north arrow.
    """
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

    Examples
    --------
    >>> fig, ax = plt.subplots()
    >>> _ = ax.set_xlim(600000, 606400)
    >>> add_scale_bar(ax).txt_label.get_text()
    '1 km'
    >>> plt.close(fig)
    """
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # type: ignore[import-untyped]

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

    Examples
    --------
    >>> fig, ax = plt.subplots()
    >>> add_north_arrow(ax).get_text()
    'N'
    >>> plt.close(fig)
    """
    from matplotlib import patheffects

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
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    groups = dict(dist) if isinstance(dist, dict) else {"": dist}
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
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    counts = np.asarray(matrix, dtype="float64")
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
    """
    from matplotlib.patches import Rectangle

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
    """
    n_rows = len(references)
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
    """
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
    use too. ``furniture``: a scale bar (projected CRS) and a north arrow.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    arr = np.asarray(codes.values if hasattr(codes, "values") else codes).astype(int)
    n = len(classes)
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
    ``furniture``: a scale bar (projected CRS) and a north arrow.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    arr = np.asarray(da.values, dtype=float)
    masked = np.ma.masked_where(arr <= 0, arr)
    extent = _extent(np.asarray(da.x), np.asarray(da.y))
    im = ax.imshow(
        masked, extent=extent, cmap=cmap, vmin=0, vmax=vmax or float(arr.max() or 1),
        interpolation="bilinear",
    )  # fmt: skip
    if outlines is not None and len(outlines):
        outlines.to_crs(da.rio.crs).boundary.plot(ax=ax, color="#607d8b", linewidth=0.5)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    cb = ax.figure.colorbar(im, ax=ax, shrink=0.75)
    cb.set_label(str(da.attrs.get("units", "density")), fontsize=8)
    ax.set_title(
        title or f"kernel density (bandwidth {da.attrs.get('bandwidth_m', '?'):g} m)", fontsize=9
    )
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
    """
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
    """
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
