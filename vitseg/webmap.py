"""A static, self-contained HTML web map of class maps, new mining, alerts and districts.

The page inlines Leaflet 1.9.4 (BSD-2-Clause, vendored from the npm registry in
``vitseg/data/leaflet/``), every raster as a base64 PNG overlay and every vector layer as
GeoJSON, so it opens offline with no request at all. A tiled basemap (OpenStreetMap by
default) is listed in the layer switcher but not switched on: it loads only when the user
picks it, i.e. when the internet is there. The page records script errors in
``<body data-vitseg-errors>`` and sets ``<body data-vitseg-ready="1">`` once drawn, which the
tests read from a headless browser.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.constants import CLASS_COLORS, CLASSES, IGNORE_INDEX
from vitseg.errors import MissingCRSError, ParamsError

__all__ = ["BASEMAPS", "write_webmap"]

#: Known basemaps: name -> (tile URL template, attribution).
BASEMAPS: dict[str, tuple[str, str]] = {
    "osm": (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
    ),
}

_LEAFLET_DIR = Path(__file__).resolve().parent / "data" / "leaflet"


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


def _overlay_png(
    da: xr.DataArray, colors: Mapping[int, str], *, max_size_px: int
) -> tuple[str, list[list[float]]]:
    """Reproject a categorical raster to Web Mercator and colour it; return (base64, bounds)."""
    from PIL import Image
    from pyproj import Transformer
    from rasterio.enums import Resampling

    if da.rio.crs is None:
        raise MissingCRSError("raster has no CRS; set it with da.rio.write_crs('EPSG:32630').")
    if "band" in da.dims and da.sizes["band"] == 1:
        da = da.squeeze("band", drop=True)
    merc = da.rio.reproject("EPSG:3857", resampling=Resampling.nearest, nodata=IGNORE_INDEX)
    ny, nx = merc.shape
    scale = max(ny, nx) / max_size_px
    if scale > 1:
        merc = da.rio.reproject(
            "EPSG:3857",
            shape=(max(1, int(ny / scale)), max(1, int(nx / scale))),
            resampling=Resampling.nearest,
            nodata=IGNORE_INDEX,
        )
    arr = np.asarray(merc.values)
    rgba = np.zeros((*arr.shape, 4), dtype="uint8")
    for value, color in colors.items():
        rgba[arr == value] = _hex_rgba(color)
    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG", optimize=True)
    left, bottom, right, top = merc.rio.bounds()
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    w, s = to_ll.transform(left, bottom)
    e, n = to_ll.transform(right, top)
    return base64.b64encode(buf.getvalue()).decode("ascii"), [[s, w], [n, e]]


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


def _safe_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


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
.legend { background: rgba(255,255,255,0.92); padding: 6px 8px; font-size: 12px; line-height: 18px; border-radius: 4px; }
.legend i { display: inline-block; width: 14px; height: 14px; margin-right: 6px; vertical-align: middle; border: 1px solid #555; }
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
  var map = L.map("map", {preferCanvas: false, zoomControl: true});
  var base = {"No basemap (offline)": L.layerGroup().addTo(map)};
  if (cfg.basemap) {
    base[cfg.basemap.name + " (needs internet)"] = L.tileLayer(cfg.basemap.url, {
      attribution: cfg.basemap.attribution, maxZoom: 19});
  }
  var overlays = {};
  var bounds = null;
  function grow(b) { bounds = bounds ? bounds.extend(b) : L.latLngBounds(b); }
  cfg.rasters.forEach(function (r) {
    var layer = L.imageOverlay("data:image/png;base64," + r.png, r.bounds, {opacity: r.opacity});
    if (r.show) { layer.addTo(map); }
    overlays[r.name] = layer;
    grow(r.bounds);
  });
  if (cfg.districts) {
    var d = L.geoJSON(cfg.districts, {
      style: {color: "#37474f", weight: 1.2, fill: false, dashArray: "4 3"},
      onEachFeature: function (f, l) {
        if (f.properties && f.properties[cfg.district_label]) { l.bindTooltip(String(f.properties[cfg.district_label])); }
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
          var v = f.properties[k]; var td = document.createElement("td"); td.textContent = v === null ? "" : String(v);
          return "<tr><td><b>" + k + "</b></td>" + td.outerHTML + "</tr>";
        });
        l.bindPopup("<table class='popup-table'>" + rows.join("") + "</table>");
      }
    }).addTo(map);
    overlays["Alerts (" + a.getLayers().length + ")"] = a;
    if (a.getLayers().length) { grow(a.getBounds()); }
  }
  L.control.layers(base, overlays, {collapsed: false}).addTo(map);
  L.control.scale({metric: true, imperial: false}).addTo(map);
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "legend");
    div.innerHTML = cfg.legend.map(function (e) {
      return "<i style='background:" + e[1] + "'></i>" + e[0];
    }).join("<br>");
    return div;
  };
  legend.addTo(map);
  if (bounds) { map.fitBounds(bounds.pad(0.05)); } else { map.setView([7.9, -1.0], 7); }
  document.body.setAttribute("data-vitseg-layers", String(Object.keys(overlays).length));
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
    alerts: Any = None,
    districts: Any = None,
    title: str = "vitseg: artisanal mining monitor",
    note: str = "",
    basemap: str | None = "osm",
    classes: Sequence[str] = CLASSES,
    mask_color: str = "#e41a1c",
    alert_columns: Sequence[str] | None = None,
    district_label: str = "ADM2_EN",
    clip_districts: bool = True,
    max_size_px: int = 2048,
) -> Path:
    """Write a self-contained HTML web map that opens offline (computes).

    Parameters
    ----------
    path
        Destination ``.html``.
    class_maps
        ``{layer name: class map (y, x)}``, codes as in ``classes`` (255 transparent), any
        CRS; the last one is shown at start, the others are in the layer switcher.
    masks
        ``{layer name: mask (y, x)}`` drawn in ``mask_color`` where the value is 1 (e.g.
        :func:`vitseg.change.new_mining`); all shown at start.
    alerts
        GeoDataFrame of alert polygons (e.g. :func:`vitseg.alerts.make_alerts`); each gets a
        pop-up table of its attributes (``alert_columns``, default all).
    districts
        GeoDataFrame of district outlines; with ``clip_districts`` only the districts that
        touch the other layers (or all, when there are none) are written.
    title, note
        Page title and a one-line note under it (e.g. "Simulated Sentinel-2 scenes").
    basemap
        ``"osm"``, another key of :data:`BASEMAPS`, a tile URL template (``{z}/{x}/{y}``), or
        None. It is offered in the layer switcher but off at start, so the page makes no
        request until the user turns it on.
    classes
        Class names (index = code); colours from :data:`vitseg.constants.CLASS_COLORS`.
    mask_color
        Colour of mask pixels.
    alert_columns
        Alert attributes shown in pop-ups (default: all but geometry).
    district_label
        District column used for tooltips.
    clip_districts
        Keep only districts near the other layers (smaller page).
    max_size_px
        Longest side of a raster overlay; larger rasters are resampled (nearest).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    MissingCRSError
        A layer has no CRS.
    ParamsError
        Unknown basemap name, or nothing to draw.
    """
    import shapely.geometry

    from vitseg.io import atomic_write_text

    if basemap is None:
        base_cfg = None
    elif basemap in BASEMAPS:
        url, attribution = BASEMAPS[basemap]
        base_cfg = {"name": basemap.upper(), "url": url, "attribution": attribution}
    elif "{z}" in basemap and "{x}" in basemap and "{y}" in basemap:
        base_cfg = {"name": "Basemap", "url": basemap, "attribution": ""}
    else:
        raise ParamsError(
            f"unknown basemap {basemap!r}; use one of {sorted(BASEMAPS)}, a tile URL template "
            "with {z}/{x}/{y}, or None"
        )
    class_maps = dict(class_maps or {})
    masks = dict(masks or {})
    if not class_maps and not masks and alerts is None and districts is None:
        raise ParamsError("nothing to draw: pass class_maps, masks, alerts or districts")

    class_colors = {i: CLASS_COLORS.get(c, "#999999") for i, c in enumerate(classes)}
    rasters: list[dict[str, Any]] = []
    extent = []
    names = list(class_maps)
    for name in names:
        png, bounds = _overlay_png(class_maps[name], class_colors, max_size_px=max_size_px)
        extent.append(shapely.geometry.box(bounds[0][1], bounds[0][0], bounds[1][1], bounds[1][0]))
        rasters.append(
            {"name": name, "png": png, "bounds": bounds, "opacity": 0.75, "show": name == names[-1]}
        )
    for name, da in masks.items():
        png, bounds = _overlay_png(da, {1: mask_color}, max_size_px=max_size_px)
        extent.append(shapely.geometry.box(bounds[0][1], bounds[0][0], bounds[1][1], bounds[1][0]))
        rasters.append({"name": name, "png": png, "bounds": bounds, "opacity": 0.9, "show": True})

    alerts_doc = None
    if alerts is not None:
        cols = alert_columns or [c for c in alerts.columns if c != "geometry"]
        alerts_doc = _geojson(alerts, cols)
        if len(alerts):
            extent.append(shapely.geometry.box(*alerts.to_crs("EPSG:4326").total_bounds))
    districts_doc = None
    if districts is not None:
        d = districts.to_crs("EPSG:4326") if districts.crs is not None else districts
        if clip_districts and extent:
            area = shapely.unary_union(extent).envelope.buffer(0.02)
            d = d[d.intersects(area)]
        districts_doc = _geojson(d)

    legend = [[c, class_colors[i]] for i, c in enumerate(classes)] if class_maps else []
    if masks:
        legend.append(["new mining", mask_color])
    if alerts is not None:
        legend.append(["alert polygon", "#ff5252"])
    if districts is not None:
        legend.append(["district boundary", "#ffffff"])
    cfg = {
        "basemap": base_cfg,
        "rasters": rasters,
        "alerts": alerts_doc,
        "districts": districts_doc,
        "district_label": district_label,
        "legend": legend,
    }
    js, css = _leaflet_assets()
    page = (
        _TEMPLATE.replace("__LEAFLET_CSS__", css)
        .replace("__TITLE__", html.escape(title))
        .replace("__NOTE__", html.escape(note))
        .replace("__CONFIG__", _safe_json(cfg))
        .replace("__LEAFLET_JS__", js)
    )
    return atomic_write_text(path, page)
