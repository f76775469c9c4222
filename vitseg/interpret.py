"""A self-contained browser page on which interpreters label the accuracy sample.

:func:`write_interpretation_page` writes one HTML file (inline CSS and JavaScript, image
chips as base64 JPEG data URIs; no server, no request, opens from ``file://``). For each
sample point, in a seeded random order, it shows chips of true colour (B04, B03, B02) and
false colour (B12, B8A, B04: vegetation green, bare soil and pits pink to brown, water
dark blue to black) for each season given, with the point marked by a crosshair and its
map pixel by a square. The map class stays hidden (blind interpretation) until the
interpreter asks for it; the reveal is recorded per point. So are the point ids, which
follow the strata of :func:`vitseg.accuracy.stratified_sample` and would give the class
away: the page numbers points in its own random order.

Keys: ``1``..``9`` or a class's first letter labels the point, ``0`` or ``x`` marks it
"cannot tell", ``Backspace``/``u``/``Ctrl+Z`` undoes, ``n``/``Enter`` goes to the next
unlabelled point, the arrow keys to the previous/next one, ``r`` reveals the map class,
``o`` hides the markers and ``e`` exports. Work is saved in the browser's
``localStorage`` under the sample id after every key, so a closed tab loses nothing.
The export is a CSV that :func:`vitseg.accuracy.read_reference` reads: ``point_id``,
``reference_class``, ``interpreter``, ``labelled_at`` (ISO 8601, UTC),
``map_revealed`` (true/false), ``notes`` and ``sample_id``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import pyproj
import rioxarray
import xarray as xr

from vitseg import accuracy
from vitseg.constants import CLASSES
from vitseg.errors import (
    BandError,
    CorruptRasterError,
    DimensionError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    SampleError,
)
from vitseg.io import atomic_path

__all__ = ["FALSE_COLOUR", "TRUE_COLOUR", "write_interpretation_page"]

Array = np.ndarray[Any, Any]
#: One season's imagery: a composite, several (e.g. one per area), or named composites.
Images: TypeAlias = (
    xr.DataArray
    | str
    | os.PathLike[str]
    | Sequence[xr.DataArray | str | os.PathLike[str]]
    | Mapping[str, xr.DataArray | str | os.PathLike[str]]
)
#: Bands of the true-colour chips (red, green, blue).
TRUE_COLOUR: tuple[str, str, str] = ("B04", "B03", "B02")
#: Bands of the false-colour chips: SWIR 2, narrow NIR, red.
FALSE_COLOUR: tuple[str, str, str] = ("B12", "B8A", "B04")
#: Keys the page keeps for itself (a class starting with one of them gets only its number).
_RESERVED_KEYS = frozenset("nuroex")
_CANNOT_TELL = "cannot tell"
_NODATA_RGB = 48


def _open(image: xr.DataArray | str | os.PathLike[str], name: str) -> xr.DataArray:
    if isinstance(image, (str, os.PathLike)):
        file = Path(image)
        if file.is_dir():
            raise MissingFileError(f"image {name} ({file}) is a folder; give a GeoTIFF/COG file")
        if not file.exists():
            raise MissingFileError(
                f"image {name}: no file at {file}; write the composite first (notebook 02)"
            )
        try:
            opened = rioxarray.open_rasterio(file, masked=True)
        except Exception as exc:  # rasterio raises RasterioIOError, CPLE_* and more
            raise CorruptRasterError(
                f"cannot read image {name} ({file}): {str(exc).rstrip('.')}. It is not a GeoTIFF/COG, or it is "
                "truncated: re-write it"
            ) from None
        if not isinstance(opened, xr.DataArray):
            raise DimensionError(f"image {name} ({image}) holds several variables; give one")
        image = opened
    if not isinstance(image, xr.DataArray):
        raise ParamsError(
            f"image {name} must be a DataArray (band, y, x) or a GeoTIFF path; got "
            f"{type(image).__name__}"
        )
    if image.dims != ("band", "y", "x"):
        raise DimensionError(
            f"image {name} must have dims ('band', 'y', 'x'); got {image.dims}. "
            "Transpose it with .transpose('band', 'y', 'x')."
        )
    if 0 in image.shape:
        raise DimensionError(
            f"image {name} has no pixels (shape {image.shape}); check the window or clip "
            "that made it"
        )
    if image.dtype.kind not in "biuf":
        raise DimensionError(
            f"image {name} must hold real reflectance numbers; got dtype {image.dtype}"
        )
    if image.rio.crs is None:
        raise MissingCRSError(
            f"image {name} has no CRS; set it with image.rio.write_crs('EPSG:32630')"
        )
    return image


def _band_names(image: xr.DataArray, name: str) -> list[str]:
    values = image["band"].values.tolist() if "band" in image.coords else []
    if values and all(isinstance(v, str) for v in values):
        return [str(v) for v in values]
    long_name = image.attrs.get("long_name")
    if isinstance(long_name, (list, tuple)) and len(long_name) == image.sizes["band"]:
        return [str(v) for v in long_name]
    raise BandError(
        f"image {name} has no band names (band coordinate {values[:12]}, no long_name); "
        "name them with .assign_coords(band=['B02', 'B03', ...]) or "
        ".assign_coords(band=list(da.attrs['long_name']))"
    )


def _images(
    images: Mapping[str, Images], bands: Sequence[str]
) -> dict[str, list[tuple[str, xr.DataArray, list[int]]]]:
    """Check the images: season -> [(name, image, indices of ``bands``)]."""
    if not isinstance(images, Mapping) or not images:
        raise ParamsError(
            "'images' must map a season label to its composites, e.g. "
            f"{{'2021-22': [composite_a, composite_b]}}; got {images!r:.80}"
        )
    out: dict[str, list[tuple[str, xr.DataArray, list[int]]]] = {}
    for season, value in images.items():
        if isinstance(value, (xr.DataArray, str, os.PathLike)):
            named: list[tuple[str, Any]] = [(f"{season}", value)]
        elif isinstance(value, Mapping):
            named = [(f"{season}/{k}", v) for k, v in value.items()]
        else:
            named = [(f"{season}[{i}]", v) for i, v in enumerate(value)]
        if not named:
            raise ParamsError(f"season {season!r} of 'images' holds no image")
        checked = []
        for name, raw in named:
            da = _open(raw, name)
            have = _band_names(da, name)
            lacking = [b for b in bands if b not in have]
            if lacking:
                raise BandError(
                    f"image {name} lacks bands {lacking} for the chips; it has {have}. "
                    "Pass a composite with them, or other true_colour/false_colour bands."
                )
            checked.append((name, da, [have.index(b) for b in bands]))
        out[str(season)] = checked
    return out


def _check_sample(sample: gpd.GeoDataFrame) -> None:
    if not isinstance(sample, gpd.GeoDataFrame):
        raise SampleError(
            f"'sample' must be the GeoDataFrame of stratified_sample; got {type(sample).__name__}"
        )
    lacking = [c for c in ("point_id", "map_class") if c not in sample.columns]
    if lacking:
        raise SampleError(
            f"sample lacks columns {lacking}; it has {list(sample.columns)}. Pass the sample "
            "of stratified_sample (or read_sample of the GeoPackage write_sample wrote)."
        )
    if sample.crs is None:
        raise MissingCRSError("sample has no CRS; set it with sample.set_crs('EPSG:32630')")
    if sample.empty:
        raise SampleError("sample has no point; draw one with stratified_sample")
    geoms = sample.geometry
    bad = geoms.isna() | geoms.is_empty | (geoms.geom_type != "Point")
    if not bad.any():
        bad = ~(np.isfinite(geoms.x.to_numpy()) & np.isfinite(geoms.y.to_numpy()))
    if bad.any():
        first = sample.loc[bad.to_numpy(), "point_id"].astype(str).tolist()[:5]
        kinds = sorted({str(g.geom_type) if g is not None else "None" for g in geoms[bad]})
        raise SampleError(
            f"every sample point needs a point geometry with finite coordinates; points "
            f"{first} have {kinds} (empty, missing or not a point). Drop or fix them: the "
            "page cannot place them"
        )
    keys = sample["point_id"].astype(str).str.strip()
    dup = sorted(set(keys[keys.duplicated()]))
    if dup:
        raise SampleError(f"the sample repeats point ids {dup[:10]}; each point needs its own id")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _window(image: xr.DataArray, bands: list[int], row: int, col: int, size: int) -> Array:
    """``(len(bands), size, size)`` float32 pixels from ``(row, col)`` on, NaN outside."""
    ny, nx = image.sizes["y"], image.sizes["x"]
    out = np.full((len(bands), size, size), np.nan, dtype=np.float32)
    r0, r1 = max(row, 0), min(row + size, ny)
    c0, c1 = max(col, 0), min(col + size, nx)
    if r0 >= r1 or c0 >= c1:
        return out
    block = image.isel(band=bands, y=slice(r0, r1), x=slice(c0, c1))
    values = np.asarray(block.values, dtype=np.float32)
    nodata = image.rio.nodata
    if nodata is not None and not np.isnan(nodata):
        values = np.where(values == np.float32(nodata), np.float32(np.nan), values)
    out[:, r0 - row : r1 - row, c0 - col : c1 - col] = values
    return out


def _stretch(chips: list[Array], percentiles: tuple[float, float]) -> list[Array]:
    """Scale 3-band chips to uint8 RGB with per-channel percentiles shared by all chips."""
    stacked = np.concatenate([c.reshape(3, -1) for c in chips], axis=1)
    finite = np.isfinite(stacked)
    lo = np.zeros(3, np.float32)
    hi = np.ones(3, np.float32)
    for k in range(3):
        vals = stacked[k][finite[k]]
        if vals.size:
            lo[k], hi[k] = np.percentile(vals, percentiles)
            if hi[k] <= lo[k]:
                hi[k] = lo[k] + max(abs(float(lo[k])) * 1e-3, 1e-6)
    out = []
    for chip in chips:
        scaled = (chip - lo[:, None, None]) / (hi - lo)[:, None, None]
        rgb = np.clip(np.nan_to_num(scaled * 255.0, nan=0.0), 0, 255).astype(np.uint8)
        rgb[:, ~np.isfinite(chip).all(axis=0)] = _NODATA_RGB
        out.append(np.moveaxis(rgb, 0, -1))
    return out


def _jpeg(rgb: Array, quality: int) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), mode="RGB").save(
        buf, format="JPEG", quality=quality, subsampling=0, optimize=True
    )
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _class_keys(classes: Sequence[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name in classes:
        letter = name[:1].lower()
        if letter.isalpha() and letter not in _RESERVED_KEYS and letter not in keys.values():
            keys[name] = letter
    return keys


def _locate(
    sample: gpd.GeoDataFrame, image: xr.DataArray, half_px: float
) -> tuple[Array, Array, Array]:
    """Fractional (col, row) of each point and the corners of its map pixel, in ``image``."""
    to_image = pyproj.Transformer.from_crs(sample.crs, image.rio.crs, always_xy=True)
    xs = sample.geometry.x.to_numpy()
    ys = sample.geometry.y.to_numpy()
    inv = ~image.rio.transform()

    def _pix(x: Array, y: Array) -> tuple[Array, Array]:
        px, py = to_image.transform(x, y)
        px, py = np.asarray(px, np.float64), np.asarray(py, np.float64)
        return inv.a * px + inv.b * py + inv.c, inv.d * px + inv.e * py + inv.f

    col, row = _pix(xs, ys)
    corners = [_pix(xs + dx, ys + dy) for dx in (-half_px, half_px) for dy in (-half_px, half_px)]
    cc = np.stack([c for c, _ in corners])
    rr = np.stack([r for _, r in corners])
    box = np.stack([cc.min(0), rr.min(0), cc.max(0), rr.max(0)], axis=1)
    return col, row, box


def write_interpretation_page(
    sample: gpd.GeoDataFrame,
    images: Mapping[str, Images],
    path: str | os.PathLike[str],
    *,
    classes: Sequence[str] = CLASSES,
    chip_px: int = 64,
    seed: int | None = 0,
    title: str = "Reference interpretation of the accuracy sample",
    sample_id: str | None = None,
    true_colour: Sequence[str] = TRUE_COLOUR,
    false_colour: Sequence[str] = FALSE_COLOUR,
    map_pixel_m: float = 10.0,
    percentiles: tuple[float, float] = (2.0, 98.0),
    jpeg_quality: int = 90,
) -> Path:
    """Write a self-contained HTML page on which interpreters label the sample points.

    Parameters
    ----------
    sample
        Output of :func:`vitseg.accuracy.stratified_sample` (``point_id``,
        ``map_class``, point geometry, any CRS).
    images
        Season label -> the composites of that season: one ``(band, y, x)``
        DataArray, a list of them (e.g. one per area) or a ``{name: DataArray}``
        mapping; GeoTIFF/COG paths are opened lazily. Any CRS: each point is
        reprojected to each image's CRS and its chips are cut from the first image that
        covers it with data. Band names come from the ``band`` coordinate or the
        ``long_name`` attribute (as notebook 02 writes them). Seasons are shown in the
        mapping's order, so put the earlier ("before") one first.
    path
        Output ``.html`` file (written atomically).
    classes
        Class names, in the order of their keys ``1``, ``2``, ...
    chip_px
        Chip width in image pixels (64 px at 10 m = 640 m), shown enlarged with square
        pixels.
    seed
        Seed of the random order in which points are shown.
    title
        Page title.
    sample_id
        Id that keys the saved work and is written into the export; default
        :func:`vitseg.accuracy.sample_id` of ``sample``, which
        :func:`~vitseg.accuracy.read_reference` checks. Give another only with a
        ``sample_id`` column of that value in the sample passed to ``read_reference``.
    true_colour, false_colour
        Bands (red, green, blue) of the two chips of each season.
    map_pixel_m
        Side of a map pixel in the sample's CRS units, outlined around each point.
    percentiles
        Lower and upper percentile of the linear stretch, per channel over the chips
        of one point (all seasons alike, so that a change shows).
    jpeg_quality
        JPEG quality of the chips (chroma at full resolution).

    Returns
    -------
    pathlib.Path
        ``path``: one HTML file of roughly 10-30 kB a point for two seasons of
        64 px chips.

    Raises
    ------
    SampleError
        The sample lacks ``point_id``/``map_class``, is empty or repeats ids.
    MissingCRSError
        The sample or an image has no CRS.
    DimensionError
        An image is not ``(band, y, x)``.
    BandError
        An image lacks band names or a chip band.
    ParamsError
        Bad ``path``, ``images``, ``classes`` (a bare string, empty names, "cannot
        tell"), ``chip_px``, ``percentiles``, ``jpeg_quality``, ``map_pixel_m`` (NaN or
        <= 0) or ``seed``.
    MissingFileError
        An image path that does not exist or is a folder.
    CorruptRasterError
        An image path that is not a readable raster.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, xarray as xr, rioxarray, geopandas as gpd
    >>> bands = ["B02", "B03", "B04", "B08", "B8A", "B11", "B12"]
    >>> img = xr.DataArray(np.random.default_rng(0).random((7, 40, 40), "float32"),
    ...                    dims=("band", "y", "x"), coords={"band": bands,
    ...                    "y": 1000 - 10 * np.arange(40) - 5, "x": 10 * np.arange(40) + 5})
    >>> img = img.rio.write_crs("EPSG:32630")
    >>> s = gpd.GeoDataFrame({"point_id": ["a-1", "a-2"], "map_class": ["mines", "built"]},
    ...                      geometry=gpd.points_from_xy([105, 255], [895, 705]), crs=32630)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "interpret.html"
    >>> page = write_interpretation_page(s, {"2021-22": img}, out, chip_px=16)
    >>> "http://" in page.read_text() or "https://" in page.read_text()
    False
    """
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ParamsError(f"page path must end in .html; got {path.name!r}")
    _check_sample(sample)
    if isinstance(classes, str):
        raise ParamsError(
            f"'classes' must be a list of class names; got the string {classes!r}, which "
            "would be read letter by letter"
        )
    names = [str(c) for c in classes]
    if (
        not names
        or len(set(names)) != len(names)
        or len(names) > 9
        or not all(c.strip() for c in names)
        or _CANNOT_TELL in names
    ):
        raise ParamsError(
            f"'classes' must be 1 to 9 distinct, non-empty names other than "
            f"{_CANNOT_TELL!r} (the page adds that one); got {list(classes)}"
        )
    if not _is_int(chip_px) or not 8 <= chip_px <= 512:
        raise ParamsError(
            f"'chip_px' must be between 8 and 512 pixels (a whole number); got {chip_px!r}"
        )
    if isinstance(percentiles, str) or len(percentiles) != 2:
        raise ParamsError(f"'percentiles' must be (low, high) in [0, 100]; got {percentiles!r}")
    lo_pct, hi_pct = percentiles
    if not 0 <= lo_pct < hi_pct <= 100:
        raise ParamsError(f"'percentiles' must be (low, high) in [0, 100]; got {percentiles}")
    if not _is_int(jpeg_quality) or not 1 <= jpeg_quality <= 100:
        raise ParamsError(f"'jpeg_quality' must be a whole number in 1..100; got {jpeg_quality!r}")
    if (
        isinstance(map_pixel_m, bool)
        or not isinstance(map_pixel_m, int | float | np.number)
        or not np.isfinite(map_pixel_m)
        or map_pixel_m <= 0
    ):
        raise ParamsError(
            f"'map_pixel_m' must be a finite size > 0 in the sample's CRS units (10.0 for "
            f"Sentinel-2 in UTM); got {map_pixel_m!r}"
        )
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise ParamsError(f"'seed' must be a whole number >= 0 or None; got {seed!r}")
    if len(true_colour) != 3 or len(false_colour) != 3:
        raise ParamsError(
            f"'true_colour' and 'false_colour' need 3 bands each; got {list(true_colour)}, "
            f"{list(false_colour)}"
        )
    bands = list(true_colour) + list(false_colour)
    seasons = _images(images, bands)
    chip = int(chip_px)
    half = chip // 2
    n = len(sample)

    # where each point falls in each image: season -> [(image, bands, col, row, box)]
    located = {
        season: [(da, idx, *_locate(sample, da, map_pixel_m / 2)) for _, da, idx in items]
        for season, items in seasons.items()
    }
    points: list[dict[str, Any]] = []
    lonlat = sample.geometry.to_crs("EPSG:4326")
    for i in range(n):
        cut: list[tuple[Array, list[float], list[float]] | None] = []
        for season in seasons:
            best: tuple[Array, list[float], list[float]] | None = None
            for da, idx, col, row, box in located[season]:
                c, r = float(col[i]), float(row[i])
                if not (0 <= c < da.sizes["x"] and 0 <= r < da.sizes["y"]):
                    continue
                r0, c0 = int(np.floor(r)) - half, int(np.floor(c)) - half
                pixels = _window(da, idx, r0, c0, chip)
                marks = ([round(c - c0, 2), round(r - r0, 2)],
                         [round(float(box[i, 0] - c0), 2), round(float(box[i, 1] - r0), 2),
                          round(float(box[i, 2] - c0), 2), round(float(box[i, 3] - r0), 2)])  # fmt: skip
                centre = pixels[:, int(r) - r0, int(c) - c0]
                if best is None or np.isfinite(centre).all():
                    best = (pixels, *marks)
                if np.isfinite(centre).all():
                    break
            cut.append(best)
        found = [got for got in cut if got is not None]
        chips: list[Any] = [None] * len(cut)
        if found:
            true_rgb = _stretch([got[0][:3] for got in found], (lo_pct, hi_pct))
            false_rgb = _stretch([got[0][3:] for got in found], (lo_pct, hi_pct))
            k = 0
            for s, got in enumerate(cut):
                if got is None:
                    continue
                chips[s] = {
                    "img": [_jpeg(true_rgb[k], jpeg_quality), _jpeg(false_rgb[k], jpeg_quality)],
                    "pt": got[1],
                    "box": got[2],
                }
                k += 1
        points.append(
            {
                "id": str(sample["point_id"].iloc[i]),
                "map": str(sample["map_class"].iloc[i]),
                "lon": round(float(lonlat.x.iloc[i]), 6),
                "lat": round(float(lonlat.y.iloc[i]), 6),
                "chips": chips,
            }
        )
    order = np.random.default_rng(seed).permutation(n).tolist()
    sid = sample_id if sample_id is not None else accuracy.sample_id(sample)
    data = {
        "title": title,
        "sample_id": sid,
        "classes": names,
        "keys": _class_keys(names),
        "cannot_tell": _CANNOT_TELL,
        "seasons": list(seasons),
        "views": [
            f"true colour ({' '.join(true_colour)})",
            f"false colour ({' '.join(false_colour)})",
        ],
        "chip_px": chip,
        "points": points,
        "order": order,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    values = {"%TITLE%": html.escape(str(title)), "%CSS%": _CSS, "%JS%": _JS, "%DATA%": blob}
    # one pass, so that a title such as "%JS%" stays text and is not replaced in turn
    page = re.sub("|".join(map(re.escape, values)), lambda m: values[m.group(0)], _PAGE)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%TITLE%</title>
<style>%CSS%</style>
</head>
<body>
<header>
  <h1>%TITLE%</h1>
  <label>Interpreter <input id="interpreter" type="text" autocomplete="name" placeholder="your name"></label>
  <span id="progress"></span>
  <button id="export" type="button" title="e">Export CSV (e)</button>
</header>
<div id="bar"><div id="bar-fill"></div></div>
<main>
  <section id="chips"></section>
  <aside>
    <div id="where"></div>
    <div id="labels"></div>
    <div id="current"></div>
    <div id="mapclass"><button id="reveal" type="button" title="r">Reveal map class (r)</button></div>
    <label for="notes">Notes on this point</label>
    <textarea id="notes" rows="3" placeholder="what you saw, doubts..."></textarea>
    <div id="nav">
      <button id="prev" type="button">&#8592; previous</button>
      <button id="next-unlabelled" type="button">next unlabelled (n)</button>
      <button id="next" type="button">next &#8594;</button>
      <button id="undo" type="button">undo (u)</button>
    </div>
    <div id="message" role="status"></div>
    <details id="help" open><summary>Keys</summary><ul id="keys"></ul>
    <p>Crosshair: the sample point; square: its map pixel (<b>o</b> hides them). Work is saved in this
    browser after every key; export when done and send the CSV.</p></details>
    <div id="sid"></div>
  </aside>
</main>
<script type="application/json" id="data">%DATA%</script>
<script>%JS%</script>
</body>
</html>
"""

_CSS = """
:root { --chip: 256px; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1d1d1f; background: #f4f4f5; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 20px; padding: 8px 16px;
  background: #fff; border-bottom: 1px solid #ddd; }
h1 { font-size: 17px; margin: 0; flex: 1 1 auto; }
input[type=text] { font: inherit; padding: 4px 6px; width: 14em; }
input.missing { outline: 2px solid #d93025; }
#progress { font-weight: 600; }
#bar { height: 4px; background: #ddd; }
#bar-fill { height: 4px; width: 0; background: var(--accent); }
main { display: flex; gap: 16px; padding: 12px 16px; align-items: flex-start; }
#chips { display: grid; gap: 10px 12px; flex: none; }
.cell figcaption { font-size: 12px; color: #555; margin-bottom: 2px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; width: var(--chip); }
figure.cell { margin: 0; }
.chip { position: relative; width: var(--chip); height: var(--chip); background: #333; }
.chip img { width: 100%; height: 100%; image-rendering: pixelated; display: block; }
.chip svg { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.nomarks .chip svg { display: none; }
.chip.none { display: flex; align-items: center; justify-content: center; color: #ccc;
  font-size: 12px; text-align: center; padding: 8px; }
aside { width: 330px; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px; }
#where { font-size: 16px; font-weight: 600; }
#where small { display: block; font-weight: 400; color: #555; font-size: 12px; user-select: all; }
#labels { display: flex; flex-direction: column; gap: 6px; margin: 10px 0; }
#labels button { text-align: left; padding: 6px 10px; font: inherit; border: 1px solid #bbb;
  border-radius: 4px; background: #fafafa; cursor: pointer; }
#labels button kbd { display: inline-block; min-width: 3.2em; color: #555; }
#labels button.on { background: var(--accent); border-color: var(--accent); color: #fff; }
#labels button.on kbd { color: #dde; }
#current { min-height: 1.4em; }
#mapclass { margin: 8px 0; min-height: 2em; }
#mapclass .shown { font-weight: 600; color: #b3261e; }
textarea { width: 100%; font: inherit; }
#nav { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0; }
#nav button, header button, #reveal { font: inherit; padding: 4px 8px; cursor: pointer; }
#message { min-height: 1.4em; color: #b3261e; }
#message.ok { color: #137333; }
#help ul { margin: 4px 0; padding-left: 18px; }
#help p, #sid { font-size: 12px; color: #555; }
kbd { font-family: ui-monospace, monospace; }
"""

_JS = r"""
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("data").textContent);
  var KEY = "vitseg-interpretation:" + D.sample_id;
  var CT = D.cannot_tell;
  var byLetter = {};
  Object.keys(D.keys).forEach(function (c) { byLetter[D.keys[c]] = c; });
  var $ = function (id) { return document.getElementById(id); };
  var canStore = true;
  var S = load();
  var pos = Math.min(Math.max(S.pos || 0, 0), D.order.length - 1);

  function fresh() { return { v: 1, interpreter: "", labels: {}, revealed: {}, notes: {}, undo: [], pos: 0 }; }
  function load() {
    try {
      var raw = window.localStorage.getItem(KEY);
      if (!raw) { return fresh(); }
      var s = JSON.parse(raw), f = fresh();
      Object.keys(f).forEach(function (k) { if (s[k] === undefined) { s[k] = f[k]; } });
      return s;
    } catch (err) {
      canStore = false;
      return fresh();
    }
  }
  function save() {
    S.pos = pos;
    try { window.localStorage.setItem(KEY, JSON.stringify(S)); canStore = true; }
    catch (err) { canStore = false; }
  }
  function point() { return D.points[D.order[pos]]; }
  function say(text, ok) { var m = $("message"); m.textContent = text; m.className = ok ? "ok" : ""; }
  function nLabelled() { return Object.keys(S.labels).length; }

  function svgMarks(c) {
    // a square on the map pixel and four short arms pointing at it, leaving the rest of the chip clear
    var n = D.chip_px, x = c.pt[0], y = c.pt[1], b = c.box, g = Math.max(b[2] - b[0], 1), a = g + n / 16;
    var lines = [[x, b[1] - a, x, b[1] - g], [x, b[3] + g, x, b[3] + a],
                 [b[0] - a, y, b[0] - g, y], [b[2] + g, y, b[2] + a, y]];
    var out = "";
    ["#000", "#ffe600"].forEach(function (col, k) {
      var w = k ? 1.5 : 3.5;
      lines.forEach(function (l) {
        out += '<line x1="' + l[0] + '" y1="' + l[1] + '" x2="' + l[2] + '" y2="' + l[3] +
          '" stroke="' + col + '" stroke-width="' + w + '" vector-effect="non-scaling-stroke"/>';
      });
      out += '<rect x="' + b[0] + '" y="' + b[1] + '" width="' + (b[2] - b[0]) + '" height="' +
        (b[3] - b[1]) + '" fill="none" stroke="' + col + '" stroke-width="' + w +
        '" vector-effect="non-scaling-stroke"/>';
    });
    return '<svg viewBox="0 0 ' + n + " " + n + '" preserveAspectRatio="none">' + out + "</svg>";
  }

  function buildChips() {
    var box = $("chips");
    box.style.gridTemplateColumns = "repeat(" + D.views.length + ", var(--chip))";
    D.seasons.forEach(function (season, s) {
      D.views.forEach(function (view, v) {
        var fig = document.createElement("figure");
        fig.className = "cell";
        var cap = document.createElement("figcaption");
        cap.textContent = season + " \u00b7 " + view;
        var chip = document.createElement("div");
        chip.className = "chip";
        chip.id = "chip-" + s + "-" + v;
        fig.appendChild(cap);
        fig.appendChild(chip);
        box.appendChild(fig);
      });
    });
  }

  function buildLabels() {
    var box = $("labels"), help = $("keys");
    D.classes.concat([CT]).forEach(function (c, i) {
      var b = document.createElement("button");
      b.type = "button";
      b.dataset.label = c;
      var keys = c === CT ? "0 x" : String(i + 1) + (D.keys[c] ? " " + D.keys[c] : "");
      var k = document.createElement("kbd");
      k.textContent = keys;
      b.appendChild(k);
      b.appendChild(document.createTextNode(" " + c));
      b.addEventListener("click", function () { label(c); });
      box.appendChild(b);
    });
    [["1-" + D.classes.length + " / letter", "label the point"], ["0 / x", "cannot tell"],
     ["Backspace / u / Ctrl+Z", "undo"], ["n / Enter", "next unlabelled"],
     ["\u2190 \u2192", "previous / next"], ["r", "reveal the map class (recorded)"],
     ["o", "hide / show markers"], ["e", "export CSV"], ["Esc", "leave a text field"]
    ].forEach(function (kv) {
      var li = document.createElement("li"), k = document.createElement("kbd");
      k.textContent = kv[0];
      li.appendChild(k);
      li.appendChild(document.createTextNode(" " + kv[1]));
      help.appendChild(li);
    });
  }

  function render() {
    var p = point(), lab = S.labels[p.id];
    D.seasons.forEach(function (season, s) {
      D.views.forEach(function (view, v) {
        var el = $("chip-" + s + "-" + v), c = p.chips[s];
        if (!c) {
          el.className = "chip none";
          el.textContent = "no image of " + season + " covers this point";
          return;
        }
        el.className = "chip";
        el.innerHTML = '<img alt="' + season + " " + view + '">' + svgMarks(c);
        el.firstChild.src = c.img[v];
      });
    });
    $("where").innerHTML = "";
    $("where").appendChild(document.createTextNode("Point " + (pos + 1) + " of " + D.order.length));
    var small = document.createElement("small");
    small.textContent = p.lat.toFixed(6) + ", " + p.lon.toFixed(6);
    small.title = "latitude, longitude (WGS84): paste into other imagery";
    $("where").appendChild(small);
    Array.prototype.forEach.call($("labels").children, function (b) {
      b.className = lab && lab.label === b.dataset.label ? "on" : "";
    });
    $("current").textContent = lab ? "labelled: " + lab.label : "not labelled yet";
    var mc = $("mapclass");
    if (S.revealed[p.id]) {
      mc.innerHTML = "";
      var sp = document.createElement("span");
      sp.className = "shown";
      sp.textContent = "map class: " + p.map + " (point " + p.id + ")";
      mc.appendChild(sp);
    } else if (!$("reveal")) {
      mc.innerHTML = '<button id="reveal" type="button" title="r">Reveal map class (r)</button>';
      $("reveal").addEventListener("click", reveal);
    }
    $("notes").value = S.notes[p.id] || "";
    var n = nLabelled(), ct = 0;
    Object.keys(S.labels).forEach(function (k) { if (S.labels[k].label === CT) { ct += 1; } });
    $("progress").textContent = n + " / " + D.order.length + " labelled" + (ct ? " (" + ct + " cannot tell)" : "");
    $("bar-fill").style.width = (100 * n / D.order.length) + "%";
    if (!canStore) { say("This browser does not save the work here: export before closing the page."); }
  }

  function nextUnlabelled(from) {
    for (var k = 1; k <= D.order.length; k += 1) {
      var i = (from + k) % D.order.length;
      if (!S.labels[D.points[D.order[i]].id]) { return i; }
    }
    return -1;
  }
  function go(i) { pos = Math.min(Math.max(i, 0), D.order.length - 1); save(); render(); }
  function label(c) {
    var p = point(), prev = S.labels[p.id] || null;
    S.labels[p.id] = { label: c, at: new Date().toISOString() };
    S.undo.push({ id: p.id, prev: prev });
    if (S.undo.length > 500) { S.undo.shift(); }
    var nxt = nextUnlabelled(pos);
    say(nxt < 0 ? "All points labelled: press e to export." : "", true);
    go(nxt < 0 ? pos : nxt);
  }
  function undo() {
    var u = S.undo.pop();
    if (!u) { say("Nothing to undo."); return; }
    if (u.prev) { S.labels[u.id] = u.prev; } else { delete S.labels[u.id]; }
    for (var i = 0; i < D.order.length; i += 1) {
      if (D.points[D.order[i]].id === u.id) { pos = i; }
    }
    say("Undone: point " + (pos + 1) + " is " + (u.prev ? "back to " + u.prev.label : "unlabelled again") + ".", true);
    go(pos);
  }
  function reveal() { S.revealed[point().id] = true; save(); render(); }

  function csvCell(v) {
    var s = v === undefined || v === null ? "" : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function exportCsv() {
    var who = $("interpreter").value.trim();
    if (!who) {
      $("interpreter").classList.add("missing");
      $("interpreter").focus();
      say("Type your name in the Interpreter field before exporting.");
      return;
    }
    var head = ["point_id", "reference_class", "interpreter", "labelled_at", "map_revealed", "notes", "sample_id"];
    var rows = [head.join(",")], n = 0;
    D.points.forEach(function (p) {
      var lab = S.labels[p.id];
      if (!lab) { return; }
      n += 1;
      rows.push([p.id, lab.label, who, lab.at, S.revealed[p.id] ? "true" : "false",
                 S.notes[p.id] || "", D.sample_id].map(csvCell).join(","));
    });
    var blob = new Blob([rows.join("\r\n") + "\r\n"], { type: "text/csv" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "reference_" + D.sample_id + "_" + who.replace(/[^A-Za-z0-9_-]+/g, "_") + ".csv";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    var left = D.order.length - n;
    say("Exported " + n + " labels" + (left ? "; " + left + " points are not labelled yet (the export is incomplete)." : "."), !left);
  }

  function onKey(ev) {
    var t = ev.target, typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA");
    if (typing) {
      if (ev.key === "Escape" || (ev.key === "Enter" && t.tagName === "INPUT")) { t.blur(); ev.preventDefault(); }
      return;
    }
    var k = ev.key, lower = k.length === 1 ? k.toLowerCase() : k;
    if ((ev.ctrlKey || ev.metaKey) && lower === "z") { undo(); ev.preventDefault(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var digit = /^[0-9]$/.test(k) ? Number(k) : -1;
    var done = true;
    if (digit >= 1 && digit <= D.classes.length) { label(D.classes[digit - 1]); }
    else if (digit === 0 || lower === "x") { label(CT); }
    else if (byLetter[lower]) { label(byLetter[lower]); }
    else if (k === "Backspace" || lower === "u") { undo(); }
    else if (k === "Enter" || lower === "n") {
      var nxt = nextUnlabelled(pos);
      if (nxt < 0) { say("All points labelled: press e to export.", true); } else { go(nxt); }
    }
    else if (k === "ArrowRight") { go(pos + 1); }
    else if (k === "ArrowLeft") { go(pos - 1); }
    else if (lower === "r") { reveal(); }
    else if (lower === "o") { document.body.classList.toggle("nomarks"); }
    else if (lower === "e") { exportCsv(); }
    else { done = false; }
    if (done) { ev.preventDefault(); }
  }

  buildChips();
  buildLabels();
  $("interpreter").value = S.interpreter || "";
  $("interpreter").addEventListener("input", function () {
    S.interpreter = $("interpreter").value;
    $("interpreter").classList.remove("missing");
    save();
  });
  $("notes").addEventListener("input", function () {
    var id = point().id, v = $("notes").value;
    if (v) { S.notes[id] = v; } else { delete S.notes[id]; }
    save();
  });
  $("export").addEventListener("click", exportCsv);
  $("prev").addEventListener("click", function () { go(pos - 1); });
  $("next").addEventListener("click", function () { go(pos + 1); });
  $("next-unlabelled").addEventListener("click", function () { var i = nextUnlabelled(pos); if (i >= 0) { go(i); } });
  $("undo").addEventListener("click", undo);
  $("reveal").addEventListener("click", reveal);
  $("sid").textContent = "sample " + D.sample_id + " \u00b7 " + D.order.length + " points \u00b7 page written " + D.written;
  document.addEventListener("keydown", onKey);
  document.documentElement.style.setProperty("--chip", Math.max(192, Math.min(320, 4 * D.chip_px)) + "px");
  if (!S.labels[point().id] && S.pos === 0 && nLabelled() > 0) { var i0 = nextUnlabelled(-1); if (i0 >= 0) { pos = i0; } }
  render();
  document.body.dataset.ready = "1";
})();
"""
