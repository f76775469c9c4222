"""Acquisition dates, MGRS names, COG writing and Earth Search v1 item documents.

Everything :func:`vitseg.synthetic.write_catalog` needs to turn a rendered date into
files and STAC JSON shaped like Earth Search's ``sentinel-2-l2a`` items (asset keys,
``eo:bands``, ``raster:bands`` with the processing-baseline offset, ``proj:*``, MGRS
and ``s2:*`` properties).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, Final

import numpy as np

from vitseg.constants import S2_BANDS_10, S2_BANDS_20M
from vitseg.errors import VitsegError
from vitseg.synthetic.base import SYNTHETIC_VERSION, _epsg, _Grid, _rng

#: Earth Search v1 asset key, common name, centre wavelength and FWHM (micrometres) of each band.
_EARTH_SEARCH: Final[dict[str, tuple[str, str, float, float, str]]] = {
    "B02": ("blue", "blue", 0.490, 0.098, "Blue - 10m"),
    "B03": ("green", "green", 0.560, 0.045, "Green - 10m"),
    "B04": ("red", "red", 0.665, 0.038, "Red - 10m"),
    "B05": ("rededge1", "rededge", 0.704, 0.019, "Red Edge 1 - 20m"),
    "B06": ("rededge2", "rededge", 0.740, 0.018, "Red Edge 2 - 20m"),
    "B07": ("rededge3", "rededge", 0.783, 0.028, "Red Edge 3 - 20m"),
    "B08": ("nir", "nir", 0.842, 0.145, "NIR 1 - 10m"),
    "B8A": ("nir08", "nir08", 0.865, 0.033, "NIR 2 - 20m"),
    "B11": ("swir16", "swir16", 1.610, 0.143, "SWIR 1.6μm - 20m"),
    "B12": ("swir22", "swir22", 2.190, 0.242, "SWIR 2.2μm - 20m"),
}
_COG_TYPE: Final[str] = "image/tiff; application=geotiff; profile=cloud-optimized"
#: Processing baseline 04.00 (from 2022-01-25) added a +1000 DN offset to L2A reflectance.
_BASELINE_04_DATE: Final[_dt.date] = _dt.date(2022, 1, 25)


# ----------------------------------------------------------------------------- dates
def _parse_season(season: str) -> int:
    try:
        start, end = season.split("-")
        y0 = int(start)
        if (y0 + 1) % 100 != int(end) % 100 or len(start) != 4:
            raise ValueError(season)
    except ValueError:
        raise VitsegError(
            f"season must look like '2020-21' (dry season Nov 2020 - Mar 2021); got {season!r}"
        ) from None
    return y0


def season_dates(season: str, n: int, *, seed: int = 0) -> list[_dt.datetime]:
    """Acquisition datetimes spread over a dry season (15 Nov - 15 Mar).

    Parameters
    ----------
    season
        ``"2020-21"`` means the dry season from November 2020 to March 2021.
    n
        Number of dates (>= 1).
    seed
        Jitters the dates by up to +-4 days.

    Returns
    -------
    list of datetime.datetime
        UTC datetimes at about 10:30 (Sentinel-2 overpass over Ghana), sorted.

    Examples
    --------
    >>> [d.date().isoformat() for d in season_dates("2021-22", 3)]
    ['2021-12-05', '2022-01-15', '2022-02-19']
    """
    if n < 1:
        raise VitsegError(f"dates_per_season must be >= 1; got {n}")
    y0 = _parse_season(season)
    start = _dt.datetime(y0, 11, 15, 10, 28, 31, tzinfo=_dt.UTC)
    span = (_dt.datetime(y0 + 1, 3, 15, tzinfo=_dt.UTC) - start).days
    rng = _rng(seed, "dates", season)
    out = []
    for k in range(n):
        day = (k + 0.5) * span / n + float(rng.uniform(-4, 4))
        out.append(start + _dt.timedelta(days=round(day)))
    return sorted(out)


def _baseline(date: _dt.date) -> str:
    if date >= _BASELINE_04_DATE:
        return "04.00"
    if date >= _dt.date(2021, 6, 30):
        return "03.01"
    return "02.14"


def _mgrs(lon: float, lat: float) -> tuple[int, str, str]:
    """MGRS zone, latitude band and 100 km square of a point (standard WGS84 lettering)."""
    from pyproj import CRS, Transformer

    zone = int((lon + 180) // 6) + 1
    bands = "CDEFGHJKLMNPQRSTUVWXX"
    band = bands[int((lat + 80) // 8)]
    epsg = (32600 if lat >= 0 else 32700) + zone
    e, nn = Transformer.from_crs(
        CRS.from_epsg(4326), CRS.from_epsg(epsg), always_xy=True
    ).transform(lon, lat)
    cols = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3]
    col = cols[int(e // 100000) - 1]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    row = rows[(int(nn // 100000) + (5 if zone % 2 == 0 else 0)) % 20]
    return zone, band, col + row


# ----------------------------------------------------------------------------- writing
def _write_cog(path: Path, data: Any, grid_transform: Any, crs: str, *, nodata: int) -> Path:
    """Write a single-band COG (deflate, 256 blocks, overviews), atomically."""
    import rasterio

    from vitseg.io import atomic_path

    with atomic_path(path) as tmp:
        with rasterio.open(
            tmp,
            "w",
            driver="COG",
            width=data.shape[-1],
            height=data.shape[-2],
            count=1,
            dtype=str(data.dtype),
            crs=crs,
            transform=grid_transform,
            nodata=nodata,
            compress="DEFLATE",
            level=1,
            blocksize=256,
            overview_resampling="nearest",
        ) as dst:
            dst.write(data, 1)
    return path


def _footprint(grid: _Grid, valid: Any) -> Any:
    """Footprint of the valid pixels, in EPSG:4326."""
    import geopandas as gpd
    from rasterio import features
    from shapely.geometry import shape
    from shapely.ops import unary_union

    mask = valid.astype(np.uint8)
    polys = [shape(g) for g, v in features.shapes(mask, mask=mask > 0, transform=grid.transform)]
    geom = unary_union(polys).simplify(grid.res) if polys else None
    return gpd.GeoSeries([geom], crs=grid.crs).to_crs("EPSG:4326").iloc[0]


def _item_dict(
    *,
    item_id: str,
    box: str,
    season: str,
    when: _dt.datetime,
    grid: _Grid,
    footprint: Any,
    hrefs: dict[str, str],
    scl: Any,
    mgrs: tuple[int, str, str],
    platform: str,
) -> dict[str, Any]:
    from shapely.geometry import mapping

    baseline = _baseline(when.date())
    offset = -0.1 if baseline >= "04.00" else 0.0
    epsg = _epsg(grid.crs)
    valid = scl > 0
    nvalid = max(int(valid.sum()), 1)

    def pct(codes: tuple[int, ...]) -> float:
        return round(100.0 * float(np.isin(scl[valid], codes).sum()) / nvalid, 6)

    zone, band, square = mgrs
    stamp = when.strftime("%Y%m%dT%H%M%S")
    tile = f"{zone:02d}{band}{square}"
    nbase = "N" + baseline.replace(".", "")
    created = (when + _dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    props: dict[str, Any] = {
        "created": created,
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": pct((8, 9, 10)),
        "proj:epsg": epsg,
        "proj:code": f"EPSG:{epsg}",
        "mgrs:utm_zone": zone,
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "grid:code": f"MGRS-{tile}",
        "view:sun_azimuth": 130.0,
        "view:sun_elevation": 55.0,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": baseline,
        "s2:product_uri": f"S2{platform[-1].upper()}_MSIL2A_{stamp}_{nbase}_R108_T{tile}_{stamp}.SAFE",
        "s2:nodata_pixel_percentage": round(100.0 * (1 - valid.mean()), 6),
        "s2:cloud_shadow_percentage": pct((3,)),
        "s2:vegetation_percentage": pct((4,)),
        "s2:not_vegetated_percentage": pct((5,)),
        "s2:water_percentage": pct((6,)),
        "s2:unclassified_percentage": pct((7,)),
        "s2:medium_proba_clouds_percentage": pct((8,)),
        "s2:high_proba_clouds_percentage": pct((9,)),
        "s2:thin_cirrus_percentage": pct((10,)),
        "s2:dark_features_percentage": pct((2,)),
        "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
        # DN keep ESA's +1000 from baseline 04.00 on and raster:bands carries the -0.1;
        # on Earth Search a true flag means the DN were already shifted back
        # (Element84/earth-search#66), which these simulated files are not.
        "earthsearch:boa_offset_applied": False,
        "processing:software": {"vitseg.synthetic": str(SYNTHETIC_VERSION)},
        "updated": created,
        "vitseg:simulated": True,
        "vitseg:box": box,
        "vitseg:season": season,
    }
    assets: dict[str, Any] = {}
    for name in S2_BANDS_10:
        key, common, cw, fwhm, title = _EARTH_SEARCH[name]
        res = 20 if name in S2_BANDS_20M else 10
        f = res // 10
        assets[key] = {
            "href": hrefs[name],
            "type": _COG_TYPE,
            "title": title,
            "eo:bands": [
                {
                    "name": name,
                    "common_name": common,
                    "center_wavelength": cw,
                    "full_width_half_max": fwhm,
                }
            ],
            "gsd": res,
            "proj:epsg": epsg,
            "proj:code": f"EPSG:{epsg}",
            "proj:shape": [grid.height // f, grid.width // f],
            "proj:transform": [res, 0, grid.x0, 0, -res, grid.y0],
            "raster:bands": [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "spatial_resolution": res,
                    "scale": 0.0001,
                    "offset": offset,
                }
            ],
            "roles": ["data", "reflectance"],
        }
    assets["scl"] = {
        "href": hrefs["SCL"],
        "type": _COG_TYPE,
        "title": "Scene classification map (SCL)",
        "gsd": 20,
        "proj:epsg": epsg,
        "proj:code": f"EPSG:{epsg}",
        "proj:shape": [grid.height // 2, grid.width // 2],
        "proj:transform": [20, 0, grid.x0, 0, -20, grid.y0],
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "roles": ["data"],
    }
    minx, miny, maxx, maxy = footprint.bounds
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
            "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": item_id,
        "geometry": json.loads(json.dumps(mapping(footprint))),
        "bbox": [round(v, 6) for v in (minx, miny, maxx, maxy)],
        "properties": props,
        "links": [],
        "assets": assets,
        "collection": "sentinel-2-l2a",
    }


def _collection_dict(items: list[dict[str, Any]]) -> dict[str, Any]:
    bboxes = np.array([it["bbox"] for it in items])
    times = sorted(it["properties"]["datetime"] for it in items)
    return {
        "type": "Collection",
        "id": "sentinel-2-l2a",
        "stac_version": "1.0.0",
        "title": "Sentinel-2 Level-2A (SIMULATED by vitseg.synthetic)",
        "description": (
            "Simulated Sentinel-2 L2A scenes over real hand-labelled mining boxes in Ghana, "
            "written by vitseg.synthetic for the offline demo and tests. Not real imagery."
        ),
        "stac_extensions": [
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        ],
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        float(bboxes[:, 0].min()),
                        float(bboxes[:, 1].min()),
                        float(bboxes[:, 2].max()),
                        float(bboxes[:, 3].max()),
                    ]
                ]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "license": "CC-BY-4.0",
        "keywords": ["sentinel", "simulated", "ghana", "artisanal mining"],
        "providers": [{"name": "vitseg.synthetic", "roles": ["producer", "processor"]}],
        "links": [],
    }
