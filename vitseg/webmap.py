"""A static, self-contained HTML web map of class maps, probabilities, alerts and districts.

The page inlines Leaflet 1.9.4 (BSD-2-Clause, vendored from the npm registry in
``vitseg/data/leaflet/``), every raster as base64 PNG overlays and every vector layer as
GeoJSON, so it opens offline with no request at all. Tiled basemaps (OpenStreetMap and Esri
World Imagery by default) are listed in the layer switcher but not switched on: they load
only when the user picks one, i.e. when the internet is there.

Rasters keep their full resolution: each layer is reprojected to Web Mercator (nearest, on a
grid slightly finer than the source so that no source pixel is skipped) and split into PNG
tiles of at most ``max_size_px`` a side. Only a layer over ``max_pixels`` is coarsened, by a
block reduction that keeps the first class of ``classes`` present in a block (mines first),
so a single mine pixel always stays on the map.

The page records script errors in ``<body data-vitseg-errors>``, the raster layers it draws
(name, lon/lat bounds, tiles) as JSON in ``<body data-vitseg-rasters>`` and sets
``<body data-vitseg-ready="1">`` once drawn, which the tests read from a headless browser. A
URL fragment ``#opacity=40`` starts the raster opacity slider at 40 %.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.constants import CLASS_COLORS, CLASSES
from vitseg.errors import DimensionError, LabelError, MissingCRSError, ParamsError, VectorError

__all__ = ["BASEMAPS", "write_webmap"]

#: Known basemaps: name -> (tile URL template, attribution).
BASEMAPS: dict[str, tuple[str, str]] = {
    "osm": (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
    ),
    "satellite": (
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
        "Tiles &copy; Esri",
    ),
}
_BASEMAP_LABELS = {"osm": "OpenStreetMap", "satellite": "Esri World Imagery (satellite)"}

_LEAFLET_DIR = Path(__file__).resolve().parent / "data" / "leaflet"
#: Web Mercator pixels per source pixel along a side (> 1, so nearest skips no source pixel
#: under the small rotation and scale change between a UTM or geographic grid and Mercator).
_OVERSAMPLE = 1.1
#: Steps of the probability and confidence colour ramps (2 % each: smaller PNGs).
_LEVELS = 50
#: Probability: transparent at 0 -> dark red -> red -> opaque yellow at 1 (rising lightness).
_PROB_STOPS = ((0.0, "#800026", 0.0), (0.5, "#e31a1c", 0.6), (1.0, "#ffeb3b", 1.0))
#: Confidence: grey at 0 -> blue at 1, opaque.
_CONF_STOPS = ((0.0, "#d9d9d9", 1.0), (1.0, "#08519c", 1.0))


def _leaflet_assets() -> tuple[str, str]:
    js = (_LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8")
    js = "\n".join(ln for ln in js.splitlines() if not ln.startswith("//# sourceMappingURL"))
    css = (_LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")
    png = base64.b64encode((_LEAFLET_DIR / "layers.png").read_bytes()).decode("ascii")
    css = css.replace("url(images/layers.png)", f"url(data:image/png;base64,{png})")
    css = css.replace("url(images/layers-2x.png)", f"url(data:image/png;base64,{png})")
    css = css.replace("url(images/marker-icon.png)", "none")
    return js, css


def _hex_rgba(color: str, alpha: int = 255) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha


def _ramp_lut(stops: Sequence[tuple[float, str, float]]) -> np.ndarray:
    """Palette: index 0 transparent (no data), index ``1 + round(v * _LEVELS)`` for v in 0..1."""
    lut = np.zeros((256, 4), dtype="uint8")
    t = np.linspace(0.0, 1.0, _LEVELS + 1)
    xs = [s[0] for s in stops]
    for ch in range(3):
        lut[1 : _LEVELS + 2, ch] = np.round(np.interp(t, xs, [_hex_rgba(s[1])[ch] for s in stops]))
    lut[1 : _LEVELS + 2, 3] = np.round(np.interp(t, xs, [255 * s[2] for s in stops]))
    return lut


def _ramp_css(stops: Sequence[tuple[float, str, float]]) -> str:
    parts = []
    for x, color, alpha in stops:
        r, g, b, _ = _hex_rgba(color)
        parts.append(f"rgba({r},{g},{b},{alpha:g}) {100 * x:g}%")
    return "linear-gradient(to right, " + ", ".join(parts) + ")"


def _as_2d(da: xr.DataArray, name: str, kind: str = "classes") -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise ParamsError(
            f"raster layer {name!r} must be an xarray.DataArray; got {type(da).__name__}"
        )
    if da.rio.crs is None:
        raise MissingCRSError(
            f"raster layer {name!r} has no CRS; set it with da.rio.write_crs('EPSG:32630')."
        )
    if "band" in da.dims and da.sizes["band"] == 1:
        da = da.squeeze("band", drop=True)
    if da.ndim != 2:
        hint = " (pick one class: probs.sel({'class': 'mines'}))" if "class" in da.dims else ""
        raise ParamsError(
            f"raster layer {name!r} has dims {da.dims}; expected a 2-D (y, x) map{hint}"
        )
    if 0 in da.shape:
        raise DimensionError(
            f"raster layer {name!r} has no pixels (shape {da.shape}); check the window or "
            "clip that made it"
        )
    if da.dtype.kind not in "biuf" or (da.dtype.kind == "b" and kind == "classes"):
        what = "integer class codes" if kind == "classes" else "real numbers"
        fix = (" A boolean mask is not a class map: pass it in masks=" if da.dtype.kind == "b"
               else " Convert it, e.g. .real or .astype('float32')")  # fmt: skip
        raise DimensionError(f"raster layer {name!r} must hold {what}; got dtype {da.dtype}.{fix}")
    # (y, x) order, whatever the dims are called: a transposed map would be drawn mirrored
    return da.transpose(da.rio.y_dim, da.rio.x_dim)


def _encode_classes(
    arr: np.ndarray, colors: Mapping[int, str], name: str = "", *, mask: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Codes -> palette indices ranked by priority (first colour = highest index); 0 = none.

    Float codes that are not whole numbers (probabilities) are a :class:`LabelError`; NaN
    and inf are no data.
    """
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        fraction = finite & (arr != np.round(arr))
        if fraction.any():
            what = "mask values (1 = drawn)" if mask else "class codes"
            raise LabelError(
                f"raster layer {name!r} holds {int(fraction.sum())} non-integer values, e.g. "
                f"{arr[fraction][:3].tolist()}; expected {what} (NaN = no data). "
                "Probabilities? Pass them in probability_maps, or take the argmax first"
            )
    n = len(colors)
    idx = np.zeros(arr.shape, dtype="uint8")
    lut = np.zeros((256, 4), dtype="uint8")
    for rank, (code, color) in enumerate(colors.items()):
        idx[arr == code] = n - rank
        lut[n - rank] = _hex_rgba(color)
    return idx, lut


def _encode_ramp(arr: np.ndarray, name: str) -> np.ndarray:
    """Values 0..1 -> palette indices 1..101 (0 = NaN, transparent)."""
    a = np.asarray(arr).astype("float32")
    finite = np.isfinite(a)
    if finite.any():
        lo, hi = float(a[finite].min()), float(a[finite].max())
        if lo < -0.01 or hi > 1.01:  # decoded scaled integers may overshoot 1 a little
            raise ParamsError(
                f"raster layer {name!r} has values in [{lo:g}, {hi:g}]; expected 0..1 "
                "(divide a percentage by 100)"
            )
    idx = np.zeros(a.shape, dtype="uint8")
    idx[finite] = 1 + np.round(np.clip(a[finite], 0.0, 1.0) * _LEVELS).astype("uint8")
    return idx


def _block_reduce(idx: np.ndarray, k: int, how: Literal["max", "mean"]) -> np.ndarray:
    """Reduce ``k x k`` blocks of palette indices (0 = no data, padded at the far edges).

    ``max`` keeps the highest index in the block: the first class of the priority order, or
    the highest probability. ``mean`` averages the indices that have data.
    """
    ny, nx = idx.shape
    padded = np.pad(idx, ((0, -ny % k), (0, -nx % k)))
    blocks = padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k)
    if how == "max":
        out: np.ndarray = blocks.max(axis=(1, 3))
        return out
    count = (blocks > 0).sum(axis=(1, 3))
    total = blocks.sum(axis=(1, 3), dtype="int64")
    mean = np.zeros(count.shape, dtype="float64")
    np.divide(total, count, out=mean, where=count > 0)
    return np.round(mean).astype("uint8")


def _mercator_grid(crs: Any, transform: Any, shape: tuple[int, int]) -> tuple[Any, int, int]:
    """Return a north-up EPSG:3857 grid over a raster, ``_OVERSAMPLE`` x finer than GDAL's."""
    from affine import Affine
    from rasterio.transform import array_bounds
    from rasterio.warp import calculate_default_transform, transform_bounds

    h, w = shape
    south, west, north, east = _ordered(array_bounds(h, w, transform))
    dst, _, _ = calculate_default_transform(
        crs, "EPSG:3857", w, h, left=west, bottom=south, right=east, top=north
    )
    left, bottom, right, top = transform_bounds(
        crs, "EPSG:3857", west, south, east, north, densify_pts=21
    )
    res = dst.a / _OVERSAMPLE
    w2 = max(1, math.ceil((right - left) / res - 1e-6))  # cover the whole raster
    h2 = max(1, math.ceil((top - bottom) / res - 1e-6))
    return Affine(res, 0.0, left, 0.0, -res, top), h2, w2


def _ordered(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    # rasterio's array_bounds returns (west, south, east, north); order them whatever the signs
    x0, y0, x1, y1 = b
    return min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)


def _png(idx: np.ndarray, lut: np.ndarray) -> str:
    """Palette PNG (with a tRNS alpha table) of palette indices, base64."""
    from PIL import Image

    used = int(idx.max()) + 1 if idx.size else 1
    img = Image.fromarray(np.ascontiguousarray(idx))
    img.putpalette(lut[:used, :3].tobytes(), rawmode="RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, transparency=lut[:used, 3].tobytes())
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _overlay(
    da: xr.DataArray,
    name: str,
    *,
    kind: Literal["classes", "mask", "probability", "confidence"],
    colors: Mapping[int, str] | None = None,
    max_size_px: int,
    max_pixels: int,
) -> dict[str, Any]:
    """Reproject a raster to Web Mercator and cut it into PNG tiles; return its page entry."""
    from affine import Affine
    from pyproj import Transformer
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    da = _as_2d(da, name, kind)
    arr = np.asarray(da.values)
    if kind in ("classes", "mask"):
        idx, lut = _encode_classes(arr, colors or {}, name, mask=kind == "mask")
    else:
        idx = _encode_ramp(arr, name)
        lut = _ramp_lut(_PROB_STOPS if kind == "probability" else _CONF_STOPS)
    t = da.rio.transform()
    if t.e > 0:  # south-up (y ascending): flip to north-up
        idx, t = idx[::-1], t @ Affine.translation(0, idx.shape[0]) @ Affine.scale(1, -1)
    if t.a < 0:
        idx, t = idx[:, ::-1], t @ Affine.translation(idx.shape[1], 0) @ Affine.scale(-1, 1)
    crs = da.rio.crs
    dst_t, h2, w2 = _mercator_grid(crs, t, idx.shape)
    k = 1
    if h2 * w2 > max_pixels:
        k = max(2, math.ceil(math.sqrt(h2 * w2 / max_pixels)))
        while True:
            small = _block_reduce(idx, k, "mean" if kind == "confidence" else "max")
            small_t = t @ Affine.scale(k)
            dst_t, h2, w2 = _mercator_grid(crs, small_t, small.shape)
            if h2 * w2 <= max_pixels or min(small.shape) == 1:
                break
            k += 1
        idx, t = small, small_t
    merc = np.zeros((h2, w2), dtype="uint8")
    reproject(
        source=np.ascontiguousarray(idx),
        destination=merc,
        src_transform=t,
        src_crs=crs,
        dst_transform=dst_t,
        dst_crs="EPSG:3857",
        resampling=Resampling.nearest,
        src_nodata=0,
        dst_nodata=0,
    )
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)

    def lonlat_bounds(r0: int, r1: int, c0: int, c1: int) -> list[list[float]]:
        x0, x1 = dst_t.c + c0 * dst_t.a, dst_t.c + c1 * dst_t.a
        y0, y1 = dst_t.f + r0 * dst_t.e, dst_t.f + r1 * dst_t.e
        west, north = to_ll.transform(x0, y0)
        east, south = to_ll.transform(x1, y1)
        return [[round(south, 8), round(west, 8)], [round(north, 8), round(east, 8)]]

    tiles = []
    for r0 in range(0, h2, max_size_px):
        for c0 in range(0, w2, max_size_px):
            tile = merc[r0 : r0 + max_size_px, c0 : c0 + max_size_px]
            if not tile.any():
                continue  # fully transparent: leave it out
            r1, c1 = r0 + tile.shape[0], c0 + tile.shape[1]
            tiles.append([_png(tile, lut), lonlat_bounds(r0, r1, c0, c1)])
    return {
        "name": name,
        "kind": "classes" if kind == "mask" else kind,
        "tiles": tiles,
        "bounds": lonlat_bounds(0, h2, 0, w2),
        "shape": [h2, w2],
        "downsample": k,
    }


def _check_gdf(gdf: Any, name: str) -> None:
    import geopandas as gpd

    if not isinstance(gdf, gpd.GeoDataFrame):
        raise VectorError(
            f"{name} must be a GeoDataFrame; got {type(gdf).__name__}. Read it with "
            "geopandas.read_file or build it with geopandas.GeoDataFrame(..., crs=...)"
        )


def _geojson(gdf: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    if gdf.crs is None:
        raise MissingCRSError("vector layer has no CRS; set it with gdf.set_crs('EPSG:4326').")
    g = gdf.to_crs("EPSG:4326")
    if columns is not None:
        g = g[[c for c in columns if c in g.columns] + ["geometry"]]
    g = g.copy()
    for c in g.columns:
        if c != "geometry" and not np.issubdtype(g[c].dtype, np.number):
            g[c] = (
                g[c]
                .astype(object)
                .where(g[c].notna(), None)
                .map(lambda v: v if v is None else str(v))
            )
    doc: dict[str, Any] = json.loads(g.to_json(drop_id=True, na="null"))
    return doc


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Replace each ``__KEY__`` of ``template`` once, never inside inserted text.

    A title such as ``"__LEAFLET_JS__"`` is then shown as that text, not replaced again.
    """
    import re

    pattern = "|".join(re.escape(k) for k in values)
    return re.sub(pattern, lambda m: values[m.group(0)], template)


def _safe_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def _basemaps(basemap: str | Sequence[str] | None) -> list[dict[str, str]]:
    if basemap is None:
        return []
    names = [basemap] if isinstance(basemap, str) else list(basemap)
    out: list[dict[str, str]] = []
    for b in dict.fromkeys(names):  # drop repeats, keep the order
        if not isinstance(b, str):
            raise ParamsError(f"basemap entries must be strings; got {b!r}")
        if b in BASEMAPS:
            url, attribution = BASEMAPS[b]
            out.append({"name": _BASEMAP_LABELS.get(b, b), "url": url, "attribution": attribution})
        elif "{z}" in b and "{x}" in b and "{y}" in b:
            out.append({"name": f"Basemap {len(out) + 1}", "url": b, "attribution": ""})
        else:
            raise ParamsError(
                f"unknown basemap {b!r}; use one of {sorted(BASEMAPS)}, a tile URL template "
                "with {z}/{x}/{y}, a list of these, or None"
            )
    return out


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<script>
window.__vitsegErrors = [];
window.addEventListener("error", function (e) {
  window.__vitsegErrors.push(String(e.message || e));
  if (document.body) { document.body.setAttribute("data-vitseg-errors", window.__vitsegErrors.join(" | ")); }
});
</script>
<style>__LEAFLET_CSS__</style>
<style>
html, body { height: 100%; margin: 0; font-family: sans-serif; }
#header { height: 44px; padding: 4px 12px; box-sizing: border-box; background: #263238; color: #fff; }
#header h1 { font-size: 17px; margin: 0; }
#header .note { font-size: 12px; color: #ffcc80; }
#map { position: absolute; top: 44px; bottom: 0; left: 0; right: 0; background: #e8eef2; }
.leaflet-image-layer { image-rendering: pixelated; }
.legend, .opacity-control { background: rgba(255,255,255,0.92); padding: 6px 8px; font-size: 12px; line-height: 18px; border-radius: 4px; }
.legend i { display: inline-block; width: 14px; height: 14px; margin-right: 6px; vertical-align: middle; border: 1px solid #555; }
.legend i.bar { width: 70px; margin: 0 4px; }
.opacity-control label { display: block; font-weight: bold; }
.opacity-control input { width: 130px; vertical-align: middle; }
.popup-table td { padding: 1px 6px 1px 0; font-size: 12px; }
</style>
</head>
<body>
<div id="header"><h1>__TITLE__</h1><div class="note">__NOTE__</div></div>
<div id="map" role="application" aria-label="web map"></div>
<script>__LEAFLET_JS__</script>
<script>
(function () {
  var cfg = __CONFIG__;
  function esc(s) { var d = document.createElement("div"); d.textContent = String(s); return d.innerHTML; }
  var map = L.map("map", {preferCanvas: false, zoomControl: true});
  var base = {"No basemap (offline)": L.layerGroup().addTo(map)};
  cfg.basemaps.forEach(function (b) {
    base[esc(b.name) + " (needs internet)"] = L.tileLayer(b.url, {attribution: b.attribution, maxZoom: 19});
  });
  var overlays = {};
  var rasters = [];
  var info = [];
  var bounds = null;
  function grow(b) { bounds = bounds ? bounds.extend(b) : L.latLngBounds(b); }
  function box(b) { return [[b.getSouth(), b.getWest()], [b.getNorth(), b.getEast()]]; }
  cfg.rasters.forEach(function (r) {
    var group = L.layerGroup(r.tiles.map(function (t) {
      return L.imageOverlay("data:image/png;base64," + t[0], t[1], {opacity: r.opacity, alt: r.name});
    }));
    if (r.show) { group.addTo(map); }
    overlays[esc(r.name)] = group;
    rasters.push({group: group, opacity: r.opacity});
    var lb = L.latLngBounds(r.bounds);
    var tb = null;
    group.eachLayer(function (l) { tb = tb ? tb.extend(l.getBounds()) : L.latLngBounds(l.getBounds().getSouthWest(), l.getBounds().getNorthEast()); });
    info.push({name: r.name, kind: r.kind, bounds: box(lb), tile_bounds: tb ? box(tb) : null,
               tiles: r.tiles.length, shape: r.shape, downsample: r.downsample, on: !!r.show});
    grow(lb);
  });
  if (cfg.districts) {
    var d = L.geoJSON(cfg.districts, {
      style: {color: "#37474f", weight: 1.2, fill: false, dashArray: "4 3"},
      onEachFeature: function (f, l) {
        if (f.properties && f.properties[cfg.district_label]) { l.bindTooltip(esc(f.properties[cfg.district_label])); }
      }
    }).addTo(map);
    overlays["Districts"] = d;
    if (!bounds && d.getLayers().length) { grow(d.getBounds()); }
  }
  if (cfg.alerts) {
    var a = L.geoJSON(cfg.alerts, {
      style: {color: "#b71c1c", weight: 2, fillColor: "#ff5252", fillOpacity: 0.35},
      onEachFeature: function (f, l) {
        var rows = Object.keys(f.properties).map(function (k) {
          var v = f.properties[k];
          return "<tr><td><b>" + esc(k) + "</b></td><td>" + (v === null ? "" : esc(v)) + "</td></tr>";
        });
        l.bindPopup("<table class='popup-table'>" + rows.join("") + "</table>");
      }
    }).addTo(map);
    overlays["Alerts (" + a.getLayers().length + ")"] = a;
    if (a.getLayers().length) { grow(a.getBounds()); }
  }
  L.control.layers(base, overlays, {collapsed: false}).addTo(map);
  L.control.scale({metric: true, imperial: false}).addTo(map);
  var setOpacity = function () {};
  if (rasters.length) {
    var ctl = L.control({position: "topleft"});
    ctl.onAdd = function () {
      var div = L.DomUtil.create("div", "opacity-control leaflet-bar");
      var label = L.DomUtil.create("label", "", div);
      label.htmlFor = "vitseg-opacity";
      label.textContent = "Raster opacity";
      var input = L.DomUtil.create("input", "", div);
      input.type = "range"; input.id = "vitseg-opacity";
      input.min = "0"; input.max = "100"; input.step = "5"; input.value = "100";
      var out = L.DomUtil.create("output", "", div);
      out.htmlFor = "vitseg-opacity";
      setOpacity = function (pct) {
        pct = Math.max(0, Math.min(100, Math.round(Number(pct))));
        if (isNaN(pct)) { return; }
        rasters.forEach(function (r) {
          r.group.eachLayer(function (l) { l.setOpacity(r.opacity * pct / 100); });
        });
        input.value = String(pct);
        out.textContent = " " + pct + "%";
        input.setAttribute("aria-valuetext", pct + "% of each layer's opacity");
        document.body.setAttribute("data-vitseg-opacity", String(pct));
      };
      input.addEventListener("input", function () { setOpacity(input.value); });
      input.addEventListener("change", function () { setOpacity(input.value); });
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      L.DomEvent.on(input, "keydown keyup keypress", L.DomEvent.stopPropagation);
      return div;
    };
    ctl.addTo(map);
    setOpacity(100);
    var m = /(?:^#|&)opacity=(\\d+)/.exec(window.location.hash);
    if (m) { setOpacity(m[1]); }
  }
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "legend");
    cfg.legend.forEach(function (e, i) {
      if (i) { div.appendChild(document.createElement("br")); }
      var sw = document.createElement("i");
      if (e.gradient) {
        sw.className = "bar";
        sw.style.background = e.gradient;
        div.appendChild(document.createTextNode(e.label + ": 0"));
        div.appendChild(sw);
        div.appendChild(document.createTextNode("1"));
      } else {
        sw.style.background = e.color;
        div.appendChild(sw);
        div.appendChild(document.createTextNode(e.label));
      }
    });
    return div;
  };
  legend.addTo(map);
  if (bounds) { map.fitBounds(bounds.pad(0.05)); } else { map.setView([7.9, -1.0], 7); }
  document.body.setAttribute("data-vitseg-layers", String(Object.keys(overlays).length));
  document.body.setAttribute("data-vitseg-rasters", JSON.stringify(info));
  document.body.setAttribute("data-vitseg-ready", "1");
})();
</script>
</body>
</html>
"""


def write_webmap(
    path: str | os.PathLike[str],
    *,
    class_maps: Mapping[str, xr.DataArray] | None = None,
    masks: Mapping[str, xr.DataArray] | None = None,
    probability_maps: Mapping[str, xr.DataArray] | None = None,
    confidence_maps: Mapping[str, xr.DataArray] | None = None,
    alerts: Any = None,
    districts: Any = None,
    title: str = "vitseg: artisanal mining monitor",
    note: str = "",
    basemap: str | Sequence[str] | None = ("osm", "satellite"),
    classes: Sequence[str] = CLASSES,
    mask_color: str = "#e41a1c",
    alert_columns: Sequence[str] | None = None,
    district_label: str = "ADM2_EN",
    clip_districts: bool = True,
    max_size_px: int = 2048,
    max_pixels: int = 50_000_000,
) -> Path:
    """Write a self-contained HTML web map that opens offline (computes).

    Parameters
    ----------
    path
        Destination ``.html``.
    class_maps
        ``{layer name: class map (y, x)}``, codes as in ``classes`` (others, e.g. 255,
        transparent), any CRS; the last one is shown at start, the others are in the layer
        switcher.
    masks
        ``{layer name: mask (y, x)}`` drawn in ``mask_color`` where the value is 1 (e.g.
        :func:`vitseg.change.new_mining`); all shown at start.
    probability_maps
        ``{layer name: one class's probability (y, x), float 0..1}`` (e.g.
        ``probs.sel({"class": "mines"})`` of :func:`vitseg.predict.open_map`), drawn with a
        ramp from transparent at 0 through dark red and red to opaque yellow at 1; NaN is
        transparent. Off at start, with a colour bar in the legend.
    confidence_maps
        ``{layer name: confidence (y, x), float 0..1}``, drawn grey (0) to blue (1); off at
        start, with a colour bar in the legend.
    alerts
        GeoDataFrame of alert polygons (e.g. :func:`vitseg.alerts.make_alerts`); each gets a
        pop-up table of its attributes (``alert_columns``, default all).
    districts
        GeoDataFrame of district outlines; with ``clip_districts`` only the districts that
        touch the other layers (or all, when there are none) are written.
    title, note
        Page title and a one-line note under it (e.g. "Simulated Sentinel-2 scenes").
    basemap
        A name from :data:`BASEMAPS` (``"osm"``, ``"satellite"``: Esri World Imagery), a
        tile URL template (``{z}``, ``{x}``, ``{y}``), a list of these, or None. They are
        offered in the layer switcher but off at start, so the page makes no request until
        the user picks one.
    classes
        Class names (index = code) in priority order for coarsening (first kept first);
        colours from :data:`vitseg.constants.CLASS_COLORS`.
    mask_color
        Colour of mask pixels.
    alert_columns
        Alert attributes shown in pop-ups (default: all but geometry).
    district_label
        District column used for tooltips.
    clip_districts
        Keep only districts near the other layers (smaller page).
    max_size_px
        Longest side of one PNG tile; a layer is drawn as several tiles at full resolution.
    max_pixels
        Most Web Mercator pixels per layer. A larger layer is coarsened by whole ``k x k``
        blocks: class maps and masks keep the first code of ``classes`` present in a block
        (mines survive), probabilities keep the block maximum, confidence the block mean.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    MissingCRSError
        A layer has no CRS.
    ParamsError
        Unknown basemap, nothing to draw, a layer argument that is not a mapping, a layer
        name used twice, a raster that is not 2-D, probabilities or confidence outside
        0..1, ``classes`` empty or a bare string, a bad ``mask_color``, ``alert_columns``
        given as a string, or ``max_size_px`` / ``max_pixels`` below 1.
    DimensionError
        A raster without pixels, a boolean class map, or values that are not real numbers.
    LabelError
        A class map or mask with non-integer values (probabilities).
    VectorError
        ``alerts`` or ``districts`` is not a GeoDataFrame, or ``alert_columns`` names a
        column the alerts lack.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np, xarray as xr, rioxarray
    >>> codes = np.full((50, 60), 2, dtype="uint8")
    >>> codes[20, 30] = 0  # one mine pixel in vegetation
    >>> da = xr.DataArray(codes, dims=("y", "x"),
    ...                   coords={"y": 700000.0 - 10 * np.arange(50), "x": 600000.0 + 10 * np.arange(60)})
    >>> page = write_webmap(tempfile.mkdtemp() + "/map.html", class_maps={"2021": da.rio.write_crs(32630)})
    >>> page.read_text().startswith("<!DOCTYPE html>")
    True
    """
    import shapely.geometry

    from vitseg.io import atomic_write_text
    from vitseg.styles import _check_classes, to_rgba

    base_cfg = _basemaps(basemap)
    layers = {"class_maps": class_maps, "masks": masks, "probability_maps": probability_maps,
              "confidence_maps": confidence_maps}  # fmt: skip
    for arg, value in layers.items():
        if value is not None and not isinstance(value, Mapping):
            raise ParamsError(
                f"{arg} must map a layer name to a DataArray, e.g. {arg}={{'2021': da}}; got "
                f"{type(value).__name__}"
            )
    seen: dict[str, str] = {}
    for arg, value in layers.items():
        for layer in value or {}:
            if str(layer) in seen or (str(layer) == "Districts" and districts is not None):
                other = seen.get(str(layer), "the districts layer")
                raise ParamsError(
                    f"layer name {str(layer)!r} is used twice ({other} and {arg}); the layer "
                    "switcher would show only one of them. Give each layer its own name"
                )
            seen[str(layer)] = arg
    classes = _check_classes(classes)
    to_rgba(mask_color)
    if not isinstance(mask_color, str):
        raise ParamsError(f"mask_color must be a '#rrggbb' string; got {mask_color!r}")
    if isinstance(alert_columns, str):
        raise ParamsError(
            f"alert_columns must be a list of column names; got the string {alert_columns!r}. "
            f"Pass [{alert_columns!r}]"
        )
    if alerts is not None:
        _check_gdf(alerts, "alerts")
        lacking = [c for c in alert_columns or [] if c not in alerts.columns]
        if lacking:
            raise VectorError(
                f"alert_columns {lacking} are not columns of the alerts; they have "
                f"{[c for c in alerts.columns if c != 'geometry']}"
            )
    if districts is not None:
        _check_gdf(districts, "districts")
    if isinstance(max_size_px, bool) or not isinstance(max_size_px, int) or max_size_px < 1:
        raise ParamsError(f"'max_size_px' must be a positive int; got {max_size_px!r}")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ParamsError(f"'max_pixels' must be a positive int; got {max_pixels!r}")
    class_maps = dict(class_maps or {})
    masks = dict(masks or {})
    probability_maps = dict(probability_maps or {})
    confidence_maps = dict(confidence_maps or {})
    if not (class_maps or masks or probability_maps or confidence_maps) and (
        alerts is None and districts is None
    ):
        raise ParamsError(
            "nothing to draw: pass class_maps, masks, probability_maps, confidence_maps, "
            "alerts or districts"
        )

    class_colors = {i: CLASS_COLORS.get(c, "#999999") for i, c in enumerate(classes)}
    rasters: list[dict[str, Any]] = []
    names = list(class_maps)
    for name in names:
        r = _overlay(
            class_maps[name],
            name,
            kind="classes",
            colors=class_colors,
            max_size_px=max_size_px,
            max_pixels=max_pixels,
        )
        rasters.append({**r, "opacity": 0.75, "show": name == names[-1]})
    for name, da in masks.items():
        r = _overlay(
            da,
            name,
            kind="mask",
            colors={1: mask_color},
            max_size_px=max_size_px,
            max_pixels=max_pixels,
        )
        rasters.append({**r, "opacity": 0.9, "show": True})
    for name, da in probability_maps.items():
        r = _overlay(da, name, kind="probability", max_size_px=max_size_px, max_pixels=max_pixels)
        rasters.append({**r, "opacity": 0.9, "show": False})
    for name, da in confidence_maps.items():
        r = _overlay(da, name, kind="confidence", max_size_px=max_size_px, max_pixels=max_pixels)
        rasters.append({**r, "opacity": 0.8, "show": False})
    extent = [
        shapely.geometry.box(
            r["bounds"][0][1], r["bounds"][0][0], r["bounds"][1][1], r["bounds"][1][0]
        )
        for r in rasters
    ]

    alerts_doc = None
    if alerts is not None:
        cols = alert_columns or [c for c in alerts.columns if c != "geometry"]
        alerts_doc = _geojson(alerts, cols)
        bounds = alerts.to_crs("EPSG:4326").total_bounds
        if len(alerts) and np.isfinite(bounds).all():  # all-empty geometries: NaN bounds
            extent.append(shapely.geometry.box(*bounds))
    districts_doc = None
    if districts is not None:
        d = districts.to_crs("EPSG:4326") if districts.crs is not None else districts
        if clip_districts and extent:
            area = shapely.unary_union(extent).envelope.buffer(0.02)
            d = d[d.intersects(area)]
        districts_doc = _geojson(d)

    legend: list[dict[str, str]] = []
    if class_maps:
        legend += [{"label": c, "color": class_colors[i]} for i, c in enumerate(classes)]
    if masks:
        legend.append({"label": "new mining", "color": mask_color})
    if probability_maps:
        legend.append({"label": "probability", "gradient": _ramp_css(_PROB_STOPS)})
    if confidence_maps:
        legend.append({"label": "confidence", "gradient": _ramp_css(_CONF_STOPS)})
    coarse = sorted({r["downsample"] for r in rasters if r["downsample"] > 1})
    if coarse:
        legend.append(
            {
                "label": f"some layers coarsened {'/'.join(f'{k}x' for k in coarse)} "
                f"({classes[0] if classes else 'first class'} kept)",
                "color": "transparent",
            }
        )
    if alerts is not None:
        legend.append({"label": "alert polygon", "color": "#ff5252"})
    if districts is not None:
        legend.append({"label": "district boundary", "color": "#ffffff"})
    cfg = {
        "basemaps": base_cfg,
        "rasters": rasters,
        "alerts": alerts_doc,
        "districts": districts_doc,
        "district_label": district_label,
        "legend": legend,
    }
    js, css = _leaflet_assets()
    page = _fill(
        _TEMPLATE,
        {
            "__LEAFLET_CSS__": css,
            "__TITLE__": html.escape(str(title)),
            "__NOTE__": html.escape(str(note)),
            "__CONFIG__": _safe_json(cfg),
            "__LEAFLET_JS__": js,
        },
    )
    return atomic_write_text(path, page)
