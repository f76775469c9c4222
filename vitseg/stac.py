"""Find Sentinel-2 L2A items and freeze the item set a run used.

One entry point, :func:`search_items`, serves three kinds of ``source``:

* a STAC API URL (``https://earth-search.aws.element84.com/v1`` by default in the
  ``ghana_*`` experiments), searched with pystac-client;
* a local static catalog (a ``catalog.json``, e.g. the one :mod:`vitseg.synthetic`
  writes for the offline demo), walked with pystac;
* an ItemCollection JSON file (e.g. the ``items.json`` a previous run froze with
  :func:`freeze_items`).

The same filters (collection, bbox, datetime, maximum cloud cover) are applied in all
three cases, also after an API search, so a server that ignores part of a query cannot
leak items that do not match it. Results are sorted by datetime, then id.

Network failures (timeouts, refused connections, HTTP 403/408/429/5xx -- Earth Search
answers throttled clients with ``403 Forbidden``) are retried a bounded number of times
with exponential backoff, request by request (pystac-client's ``StacApiIO`` with a urllib3
``Retry``), so a throttled page of a long search is fetched again without restarting the
search; then :class:`~vitseg.errors.NetworkError` is raised.

Missing assets: with ``bands=`` given, items lacking an asset for one of the bands are
dropped with a ``UserWarning`` (the remaining set is still valid); if no item is left,
:class:`~vitseg.errors.MissingAssetError` is raised. Without ``bands=``, no asset check
is done here and :func:`vitseg.cube.build_cube` raises ``MissingAssetError`` instead.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from itertools import takewhile
from pathlib import Path
from typing import Any

import pystac
from urllib3.util import Retry

from vitseg.errors import (
    BandError,
    EmptySearchError,
    MissingAssetError,
    MissingFileError,
    NetworkError,
    ParamsError,
    VectorError,
    VitsegError,
)
from vitseg.io import atomic_path

__all__ = [
    "EARTH_SEARCH",
    "RETRY_STATUS",
    "asset_band_map",
    "clearest_day",
    "cube_bbox",
    "freeze_items",
    "item_ids",
    "load_items",
    "search_items",
    "select_items",
]

#: Element 84's Earth Search STAC API (v1).
EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
#: HTTP status codes that are retried (403: Earth Search's answer to throttling).
RETRY_STATUS = frozenset({403, 408, 429, 500, 502, 503, 504})

Bbox = tuple[float, float, float, float]

#: Earth Search v1 asset keys (common names) -> Sentinel-2 band names.
_COMMON_TO_BAND = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12", "scl": "SCL",
}  # fmt: skip
_BAND_RE = re.compile(r"^(B(0[1-9]|1[0-2]|8A)|SCL)$")


def asset_band_map(item: pystac.Item | dict[str, Any]) -> dict[str, str]:
    """Map Sentinel-2 band names (``"B04"``, ``"SCL"``) to the item's asset keys.

    Works for Earth Search v1 keys (``"red"``, ``"nir08"``, ``"scl"``; band names read
    from ``eo:bands`` where they are given as ``"B04"``), old Earth Search v0 keys
    (``"B04"``, ``"SCL"``) and :mod:`vitseg.synthetic` items. Cloud-optimised GeoTIFF
    assets win over their ``-jp2`` twins.

    Parameters
    ----------
    item
        A pystac Item or its dict.

    Returns
    -------
    dict
        ``{band_name: asset_key}``.

    Examples
    --------
    >>> sorted(asset_band_map({"assets": {"red": {"href": "a.tif"}, "B8A": {"href": "b.tif"}}}).items())
    [('B04', 'red'), ('B8A', 'B8A')]
    """
    if isinstance(item, pystac.Item):  # never to_dict(): that may resolve remote links
        assets = {k: a.to_dict() for k, a in item.assets.items()}
    elif isinstance(item, Mapping) and isinstance(item.get("assets"), Mapping):
        assets = item["assets"]
    else:
        what = type(item).__name__ if not isinstance(item, Mapping) else "a dict without 'assets'"
        raise MissingAssetError(
            f"asset_band_map needs a STAC item (pystac.Item or an item dict with an 'assets' "
            f"mapping); got {what}. Pass one item, e.g. items[0]."
        )
    out: dict[str, str] = {}
    for key in sorted(assets, key=lambda k: (k.endswith("-jp2"), k)):
        asset = assets[key]
        base = key[: -len("-jp2")] if key.endswith("-jp2") else key
        band: str | None = None
        eo_bands = asset.get("eo:bands") or []
        if len(eo_bands) == 1 and _BAND_RE.match(str(eo_bands[0].get("name", ""))):
            band = str(eo_bands[0]["name"])
        elif _BAND_RE.match(base):
            band = base
        elif base in _COMMON_TO_BAND:
            band = _COMMON_TO_BAND[base]
        if band is not None and band not in out:
            out[band] = key
    return out


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _parse_time(value: str | _dt.datetime | None, *, end: bool) -> _dt.datetime | None:
    """Parse one end of a STAC datetime interval (date-only ends cover the whole day)."""
    if value is None or value in ("", ".."):
        return None
    if isinstance(value, _dt.datetime):
        t = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        if re.fullmatch(r"\d{4}", text):
            text = f"{text}-12-31" if end else f"{text}-01-01"
        elif re.fullmatch(r"\d{4}-\d{2}", text):
            y, m = int(text[:4]), int(text[5:])
            if end:
                nxt = _dt.date(y + (m == 12), m % 12 + 1, 1)
                text = (nxt - _dt.timedelta(days=1)).isoformat()
            else:
                text = f"{text}-01"
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                d = _dt.date.fromisoformat(text)
                t = _dt.datetime.combine(d, _dt.time.max if end else _dt.time.min)
            else:
                t = _dt.datetime.fromisoformat(text)
        except ValueError as err:
            raise VitsegError(
                f"cannot parse datetime {value!r}; use ISO 8601 like '2020-11-01', "
                "'2020-11-01T10:00:00Z' or an interval '2020-11-01/2021-03-31'"
            ) from err
    return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)


def _interval(
    datetime: str | Sequence[str | None] | None,
) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    if datetime is None:
        return None, None
    if not isinstance(datetime, (str, Sequence)):
        raise ParamsError(
            f"datetime must be ISO 8601 text ('2020-11-01/2021-03-31'), a (start, end) pair "
            f"or None; got {datetime!r} ({type(datetime).__name__}). Write e.g. '{datetime}'."
        )
    if isinstance(datetime, str):
        parts = datetime.split("/")
        if len(parts) == 1:
            return _parse_time(parts[0], end=False), _parse_time(parts[0], end=True)
        if len(parts) != 2:
            raise VitsegError(f"datetime interval {datetime!r} must be 'start/end'")
        seq: list[Any] = parts
    else:
        seq = list(datetime)
    if len(seq) != 2:
        raise VitsegError(f"datetime must be a string or a (start, end) pair; got {datetime!r}")
    start, end = _parse_time(seq[0], end=False), _parse_time(seq[1], end=True)
    if start is not None and end is not None and start > end:
        raise ParamsError(
            f"datetime interval {datetime!r} ends before it starts; swap the dates "
            f"(start <= end), e.g. '{seq[1]}/{seq[0]}'"
        )
    return start, end


def _check_bbox(bbox: Sequence[float]) -> Bbox:
    try:
        if isinstance(bbox, (str, bytes)):
            raise TypeError("text")
        vals = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as err:
        raise ParamsError(
            f"bbox must be 4 numbers (min_lon, min_lat, max_lon, max_lat); got {bbox!r}. "
            "Write e.g. bbox=(-1.82, 6.14, -1.69, 6.27)."
        ) from err
    if not all(math.isfinite(v) for v in vals):
        raise ParamsError(f"bbox must hold finite numbers (no NaN or inf); got {bbox!r}")
    if len(vals) != 4 or not (vals[0] < vals[2] and vals[1] < vals[3]):
        raise VitsegError(
            f"bbox must be (min_lon, min_lat, max_lon, max_lat) with min < max; got {bbox!r}"
        )
    lon_ok = -180 <= vals[0] <= 180 and -180 <= vals[2] <= 180
    if not (lon_ok and -90 <= vals[1] <= 90 and -90 <= vals[3] <= 90):
        raise VitsegError(
            f"search bbox is in lon/lat degrees (EPSG:4326, STAC convention); got {bbox!r}. "
            "Reproject a metric AOI first, e.g. gdf.to_crs(4326).total_bounds."
        )
    return (vals[0], vals[1], vals[2], vals[3])


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (bool and text are not)."""
    from numbers import Real

    return isinstance(value, Real) and not isinstance(value, bool)


def _check_search_options(
    *,
    max_cloud_pct: Any,
    max_items: Any,
    timeout_s: Any,
    retries: Any,
    backoff_s: Any,
    bands: Any,
) -> None:
    """Refuse options of :func:`search_items` that would be ignored or silently misread."""
    from numbers import Integral

    if max_cloud_pct is not None and not (
        _is_number(max_cloud_pct) and 0 <= float(max_cloud_pct) <= 100
    ):
        raise ParamsError(
            f"max_cloud_pct must be a number in [0, 100] (percent) or None; got "
            f"{max_cloud_pct!r}. NaN or text would keep or drop every item silently."
        )
    if max_items is not None and not (
        isinstance(max_items, Integral) and not isinstance(max_items, bool) and int(max_items) >= 1
    ):
        raise ParamsError(
            f"max_items must be an integer >= 1 or None (all items); got {max_items!r}"
        )
    if not (isinstance(retries, Integral) and not isinstance(retries, bool) and int(retries) >= 0):
        raise ParamsError(f"retries must be an integer >= 0; got {retries!r}")
    for name, value, rule in (("timeout_s", timeout_s, "> 0"), ("backoff_s", backoff_s, ">= 0")):
        ok = _is_number(value) and math.isfinite(float(value))
        if not (ok and (float(value) > 0 if rule == "> 0" else float(value) >= 0)):
            raise ParamsError(f"{name} must be a finite number {rule} (seconds); got {value!r}")
    if bands is None:
        return
    if isinstance(bands, str):
        raise ParamsError(
            f"bands must be a list of band names; got the text {bands!r}. Write bands=[{bands!r}]."
        )
    unknown = [b for b in bands if not (isinstance(b, str) and _BAND_RE.match(b))]
    if unknown:
        raise BandError(
            f"unknown band(s) {unknown}; expected Sentinel-2 names such as 'B04', 'B8A' or "
            "'SCL' (not asset keys like 'red')"
        )


def _item_bbox(item: pystac.Item) -> Bbox | None:
    if item.bbox is not None and len(item.bbox) >= 4:
        b = item.bbox
        if len(b) == 6:
            return (b[0], b[1], b[3], b[4])
        return (b[0], b[1], b[2], b[3])
    if item.geometry is not None:
        import shapely.geometry

        minx, miny, maxx, maxy = shapely.geometry.shape(item.geometry).bounds
        return (minx, miny, maxx, maxy)
    return None


def _intersects(item: pystac.Item, area: Bbox | Any) -> bool:
    """Whether the item's footprint (its geometry, else its bbox) meets ``area``.

    ``area`` is a lon/lat bbox tuple or a shapely geometry.
    """
    import shapely.geometry

    geom = shapely.geometry.box(*area) if isinstance(area, tuple) else area
    if item.geometry is not None:
        return bool(shapely.geometry.shape(item.geometry).intersects(geom))
    ib = _item_bbox(item)
    return ib is not None and bool(shapely.geometry.box(*ib).intersects(geom))


def _check_area(geometry: Any, func: str) -> Any:
    """Return ``geometry`` (a shapely geometry or a lon/lat bbox tuple) if it is a usable area."""
    import shapely

    if isinstance(geometry, tuple) and len(geometry) == 4:
        geom = shapely.box(*_check_bbox(geometry))
    elif isinstance(geometry, shapely.Geometry):
        geom = geometry
    else:
        raise VectorError(
            f"{func} needs a shapely geometry in lon/lat degrees (EPSG:4326); got "
            f"{type(geometry).__name__}. Pass e.g. one geometry of vitseg.aoi.resolve_aoi(...)."
        )
    if geom.is_empty:
        raise VectorError(f"{func} got an empty geometry; it meets no item. Check the area.")
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise VectorError(
            f"{func}: geometry bounds {tuple(round(v, 3) for v in geom.bounds)} are not lon/lat "
            "degrees; is it in metres (UTM)? Reproject it first, e.g. gdf.to_crs(4326)."
        )
    return geometry if isinstance(geometry, shapely.Geometry) else geom


def _item_list(items: Any, func: str) -> list[pystac.Item]:
    if isinstance(items, (pystac.Item, Mapping, str)):
        raise ParamsError(
            f"{func} needs a list of pystac Items; got one {type(items).__name__}. Write [item]."
        )
    return list(items)


def _item_time(item: pystac.Item) -> _dt.datetime:
    t: _dt.datetime | None = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise VitsegError(f"item {item.id!r} has neither datetime nor start_datetime")
    return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)


def _filter(
    items: Iterable[pystac.Item],
    *,
    bbox: Bbox,
    start: _dt.datetime | None,
    end: _dt.datetime | None,
    max_cloud_pct: float | None,
    collection: str | None,
) -> tuple[list[pystac.Item], dict[str, int]]:
    """Apply the query locally; also count why items were dropped (for error messages)."""
    kept: list[pystac.Item] = []
    dropped = {"collection": 0, "bbox": 0, "datetime": 0, "cloud": 0}
    for item in items:
        if collection is not None and item.collection_id not in (None, collection):
            dropped["collection"] += 1
            continue
        if not _intersects(item, bbox):
            dropped["bbox"] += 1
            continue
        t = _item_time(item)
        if (start is not None and t < start) or (end is not None and t > end):
            dropped["datetime"] += 1
            continue
        cc = item.properties.get("eo:cloud_cover")
        if max_cloud_pct is not None and cc is not None and float(cc) > max_cloud_pct:
            dropped["cloud"] += 1
            continue
        kept.append(item)
    return kept, dropped


def _epsg_from_code(fields: dict[str, Any]) -> None:
    """Add ``proj:epsg`` beside an ``"EPSG:<n>"`` ``proj:code``, in place (the one shim).

    pystac >= 1.12 migrates ``proj:epsg`` to ``proj:code`` when it reads older items, and
    projection extension v2 items carry only ``proj:code``; stackstac reads ``proj:epsg``.
    ``fields`` is an item's properties or one asset's fields; an existing ``proj:epsg`` and
    codes of other authorities are left alone. :mod:`vitseg.cube` uses it too.

    Examples
    --------
    >>> fields = {"proj:code": "EPSG:32630"}
    >>> _epsg_from_code(fields)
    >>> fields["proj:epsg"]
    32630
    """
    code = fields.get("proj:code")
    if fields.get("proj:epsg") is None and isinstance(code, str):
        m = re.match(r"^EPSG:(\d+)$", code)
        if m:
            fields["proj:epsg"] = int(m.group(1))


def _absolute_hrefs(item: pystac.Item) -> pystac.Item:
    """Copy ``item`` with absolute asset hrefs and ``proj:epsg`` beside ``proj:code``.

    stackstac needs absolute hrefs and reads ``proj:epsg``, which pystac >= 1.12 migrates
    to ``proj:code`` when it reads older items.
    """
    new = item.clone()
    _epsg_from_code(new.properties)
    for key, asset in item.assets.items():
        if not (_is_url(asset.href) or os.path.isabs(asset.href) or "://" in asset.href):
            href = asset.get_absolute_href()
            if href is not None:
                new.assets[key].href = href
        _epsg_from_code(new.assets[key].extra_fields)
    return new


def _source_path(src: str, also: str = "") -> Path:
    """Resolve a local STAC source: a file, or a folder holding ``catalog.json``."""
    path = Path(src)
    if path.is_dir():
        if not (path / "catalog.json").is_file():
            found = sorted(p.name for p in path.glob("*.json"))[:5]
            raise MissingFileError(
                f"STAC source {src!r} is a folder without a catalog.json (JSON files in it: "
                f"{found}); pass the catalog.json or ItemCollection file itself"
            )
        path = path / "catalog.json"
    if not path.exists():
        raise MissingFileError(
            f"STAC source {src!r} does not exist; pass {also}a catalog.json "
            "(vitseg.synthetic.write_catalog writes one) or an ItemCollection file"
        )
    return path


def _local_items(path: Path) -> list[pystac.Item]:
    """Read items from a static catalog/collection or an ItemCollection file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise VitsegError(
            f"cannot read STAC source {str(path)!r} as JSON ({err}); pass a STAC API URL, "
            "a catalog.json or an ItemCollection file (e.g. one written by freeze_items)"
        ) from err
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection":
        coll = pystac.ItemCollection.from_dict(data, preserve_dict=False)
        for item in coll:
            for asset in item.assets.values():
                if not _is_url(asset.href) and not os.path.isabs(asset.href):
                    asset.href = str((path.parent / asset.href).resolve())
        return list(coll)
    if kind == "Feature":
        item = pystac.Item.from_file(str(path))
        return [_absolute_hrefs(item)]
    if kind in ("Catalog", "Collection"):
        cat = pystac.read_file(str(path))
        if not isinstance(cat, pystac.Catalog):
            raise VitsegError(f"{str(path)!r} is a STAC {kind} pystac cannot walk")
        return [_absolute_hrefs(i) for i in cat.get_items(recursive=True)]
    raise VitsegError(
        f"{str(path)!r} is not a STAC Catalog, Collection, Item or ItemCollection "
        f"(its 'type' is {kind!r}); pass a catalog.json, an items.json or a STAC API URL"
    )


class _Backoff(Retry):
    """urllib3 retries whose first wait is ``backoff_factor``, doubled at each retry.

    urllib3's own schedule retries the first failure at once and waits
    ``backoff_factor * 2**(n - 1)`` after the n-th consecutive one; vitseg's
    ``backoff_s`` promises a first wait of ``backoff_s``.
    """

    def get_backoff_time(self) -> float:
        n = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if n < 1:
            return 0.0
        return float(max(0.0, min(self.backoff_max, self.backoff_factor * 2 ** (n - 1))))


def _retrying_io(*, timeout_s: float, retries: int, backoff_s: float) -> Any:
    """Return a pystac-client ``StacApiIO`` whose session retries each request itself.

    Every request (the landing page, each search page) is retried on connection errors,
    read timeouts and :data:`RETRY_STATUS` answers, also POSTs (a search is read-only),
    honouring ``Retry-After``; after the last retry the last answer is returned as it is,
    so pystac-client raises an ``APIError`` with its status code.
    """
    from pystac_client.stac_api_io import StacApiIO

    retry = _Backoff(
        total=retries,
        backoff_factor=backoff_s,
        status_forcelist=sorted(RETRY_STATUS),
        allowed_methods=None,
        raise_on_status=False,
    )
    return StacApiIO(timeout=timeout_s, max_retries=retry)


def _api_items(
    url: str,
    *,
    bbox: Bbox,
    datetime: str | Sequence[str | None] | None,
    max_cloud_pct: float | None,
    collection: str,
    max_items: int | None,
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> list[pystac.Item]:
    """Search a STAC API; each request is retried by the session (:func:`_retrying_io`).

    A throttled page is retried on its own, so a long paginated search never restarts
    from its first page.
    """
    import pystac_client
    from pystac_client.exceptions import APIError

    query = {"eo:cloud_cover": {"lte": max_cloud_pct}} if max_cloud_pct is not None else None
    dt: Any = datetime if isinstance(datetime, str) or datetime is None else list(datetime)
    io = _retrying_io(timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
    try:
        client = pystac_client.Client.open(url, stac_io=io, timeout=timeout_s)
        search = client.search(
            collections=[collection],
            bbox=list(bbox),
            datetime=dt,
            query=query,
            max_items=max_items,
        )
        return list(search.items())
    except APIError as err:
        status = getattr(err, "status_code", None)
        if status is not None and status not in RETRY_STATUS:
            raise NetworkError(
                f"STAC API {url} rejected the search (HTTP {status}): {str(err)[:300]}. "
                "Check the collection name and query; this error is not retried."
            ) from err
        last = f"HTTP {status}: {str(err)[:200]}" if status else str(err)[:300]
        raise NetworkError(
            f"STAC API {url} failed {retries + 1} times (last error: {last}). "
            "Check the network (or wait for throttling to end) and retry, or search a local "
            "catalog / ItemCollection file instead."
        ) from err


def search_items(
    source: str | os.PathLike[str],
    *,
    bbox: Sequence[float],
    datetime: str | Sequence[str | None] | None,
    max_cloud_pct: float | None = None,
    collection: str = "sentinel-2-l2a",
    bands: Sequence[str] | None = None,
    max_items: int | None = None,
    timeout_s: float = 30.0,
    retries: int = 4,
    backoff_s: float = 1.0,
) -> pystac.ItemCollection:
    """Search Sentinel-2 items in a STAC API, a static catalog or an ItemCollection file.

    Parameters
    ----------
    source
        A STAC API URL (``http(s)://...``; e.g. :data:`EARTH_SEARCH`), the path of a
        static ``catalog.json``, or of an ItemCollection JSON file.
    bbox
        Area of interest ``(min_lon, min_lat, max_lon, max_lat)`` in degrees
        (EPSG:4326, the STAC convention).
    datetime
        ISO 8601 instant or interval (``"2020-11-01/2021-03-31"``; open ends ``..``),
        a ``(start, end)`` pair, or None for all dates. Date-only ends cover the day.
    max_cloud_pct
        Keep items whose ``eo:cloud_cover`` is at most this (0-100); None keeps all.
    collection
        STAC collection id (``"sentinel-2-l2a"`` on Earth Search). Local items without a
        collection id are kept.
    bands
        Optional band names (``"B04"``, ``"SCL"``); items lacking one of them are dropped
        with a warning.
    max_items
        Stop an API search after this many items (None: all pages).
    timeout_s, retries, backoff_s
        Per-request timeout, number of retries of each request after its first try, and
        the first backoff delay (doubled each retry) for API searches.

    Returns
    -------
    pystac.ItemCollection
        Matching items sorted by datetime then id, asset hrefs absolute.

    Raises
    ------
    EmptySearchError
        Nothing matches; the message names the query and why items were dropped
        (e.g. the AOI lies outside the catalog).
    MissingAssetError
        ``bands`` given and no item has all of them.
    ParamsError
        A bbox that is not 4 finite lon/lat numbers, ``max_cloud_pct`` outside [0, 100]
        or NaN, ``max_items`` < 1, a negative or non-finite ``timeout_s``/``backoff_s``/
        ``retries``, or ``bands`` given as one text.
    BandError
        A band name that is not a Sentinel-2 band (``"red"`` instead of ``"B04"``).
    NetworkError
        The API still fails after ``retries`` retries, or rejects the query.

    Examples
    --------
    >>> import tempfile, pathlib, pystac, datetime as dt
    >>> geom = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    >>> item = pystac.Item("a", geom, [0, 0, 1, 1], dt.datetime(2021, 1, 5), {})
    >>> path = freeze_items([item], pathlib.Path(tempfile.mkdtemp()) / "items.json")
    >>> [i.id for i in search_items(path, bbox=(0.2, 0.2, 0.4, 0.4), datetime="2021-01")]
    ['a']
    """
    box = _check_bbox(bbox)
    start, end = _interval(datetime)
    _check_search_options(
        max_cloud_pct=max_cloud_pct,
        max_items=max_items,
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
        bands=bands,
    )
    src = os.fspath(source)
    if _is_url(src):
        found = _api_items(
            src.rstrip("/"),
            bbox=box,
            datetime=datetime,
            max_cloud_pct=max_cloud_pct,
            collection=collection,
            max_items=max_items,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
        )
    else:
        found = _local_items(_source_path(src, "a STAC API URL, "))
    kept, dropped = _filter(
        found,
        bbox=box,
        start=start,
        end=end,
        max_cloud_pct=max_cloud_pct,
        collection=collection,
    )
    if max_items is not None:
        kept = kept[:max_items]
    query = (
        f"collection={collection!r}, bbox={box}, datetime={datetime!r}, "
        f"max_cloud_pct={max_cloud_pct!r}"
    )
    if not kept:
        extent = ""
        if found:
            boxes = [b for b in (_item_bbox(i) for i in found) if b is not None]
            times = sorted(_item_time(i) for i in found)
            if boxes:
                extent = (
                    f" The {len(found)} items seen cover lon {min(b[0] for b in boxes):.3f}.."
                    f"{max(b[2] for b in boxes):.3f}, lat {min(b[1] for b in boxes):.3f}.."
                    f"{max(b[3] for b in boxes):.3f}, dates {times[0].date()}..{times[-1].date()}"
                    f"; dropped by collection/bbox/datetime/cloud: {dropped}."
                )
            if not any(_intersects(i, box) for i in found):
                extent += " The AOI lies outside the catalog."
        raise EmptySearchError(
            f"no items in {src} match {query}.{extent} Widen the dates, raise "
            "max_cloud_pct, or check the bbox (lon/lat order) and the collection."
        )
    if bands:
        complete = [i for i in kept if set(bands) <= set(asset_band_map(i))]
        if not complete:
            raise MissingAssetError(
                f"none of the {len(kept)} items matching {query} has assets for all bands "
                f"{list(bands)}; first item has {sorted(asset_band_map(kept[0]))}. "
                "Request fewer bands or another collection."
            )
        if len(complete) < len(kept):
            missing = [i.id for i in kept if i not in complete]
            warnings.warn(
                f"dropped {len(missing)} items lacking assets for bands {list(bands)}: "
                f"{missing[:5]}",
                UserWarning,
                stacklevel=2,
            )
        kept = complete
    kept.sort(key=lambda i: (_item_time(i), i.id))
    return pystac.ItemCollection([_absolute_hrefs(i) for i in kept])


def select_items(
    items: Iterable[pystac.Item],
    *,
    geometry: Any,
    datetime: str | Sequence[str | None] | None = None,
) -> list[pystac.Item]:
    """Return the items whose footprint intersects ``geometry`` (lon/lat) within ``datetime``.

    Used to regroup a frozen item set by area and period without any simulator metadata.

    Parameters
    ----------
    items
        pystac Items (e.g. :func:`load_items` of a run's ``items.json``).
    geometry
        A shapely geometry in lon/lat degrees (EPSG:4326), e.g. one row of
        :func:`vitseg.aoi.resolve_aoi`.
    datetime
        Optional STAC interval (``"2020-11-01/2021-03-31"``).

    Returns
    -------
    list of pystac.Item
        In the given order.

    Raises
    ------
    VectorError
        ``geometry`` is not a geometry, is empty, or is not in lon/lat degrees.
    ParamsError
        ``items`` is one item rather than a list, or ``datetime`` is not an interval.

    Examples
    --------
    >>> import pystac, datetime as dt, shapely.geometry as sg
    >>> g = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    >>> a = pystac.Item("a", g, [0, 0, 1, 1], dt.datetime(2021, 1, 5), {})
    >>> [i.id for i in select_items([a], geometry=sg.box(0.5, 0.5, 2, 2), datetime="2021-01")]
    ['a']
    >>> select_items([a], geometry=sg.box(2, 2, 3, 3))
    []
    """
    start, end = _interval(datetime)
    area = _check_area(geometry, "select_items")
    out = []
    for item in _item_list(items, "select_items"):
        hit = _intersects(item, area)
        t = _item_time(item)
        if hit and (start is None or t >= start) and (end is None or t <= end):
            out.append(item)
    return out


def clearest_day(items: Iterable[pystac.Item]) -> list[pystac.Item]:
    """Return the items of the UTC day with the lowest mean ``eo:cloud_cover``.

    Same-day items of neighbouring tiles stay together (one observation). A day's cloud
    cover is the mean over its items that report a finite ``eo:cloud_cover``; days where
    none does rank after every day with a known cover (unknown is not clear).

    Raises
    ------
    EmptySearchError
        No items.
    VitsegError
        An ``eo:cloud_cover`` that is not a number.

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> g = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    >>> mk = lambda i, d, cc: pystac.Item(i, g, [0, 0, 1, 1], d, {"eo:cloud_cover": cc})
    >>> its = [mk("a", dt.datetime(2021, 1, 5), 30), mk("b", dt.datetime(2021, 1, 9), 2),
    ...        mk("c", dt.datetime(2021, 1, 9), 6)]
    >>> [i.id for i in clearest_day(its)]
    ['b', 'c']
    """
    by_day: dict[_dt.date, list[pystac.Item]] = {}
    for item in _item_list(items, "clearest_day"):
        by_day.setdefault(_item_time(item).date(), []).append(item)
    if not by_day:
        raise EmptySearchError("no items to choose the clearest day from")

    def cover(item: pystac.Item) -> float:
        value = item.properties.get("eo:cloud_cover")
        if value is None:
            return math.nan
        if not _is_number(value):
            raise VitsegError(
                f"item {item.id!r} has eo:cloud_cover {value!r}, not a number (percent); "
                "fix the item's metadata or drop it"
            )
        return float(value)

    def mean_cloud(group: list[pystac.Item]) -> float:
        known = [c for c in (cover(i) for i in group) if math.isfinite(c)]
        return sum(known) / len(known) if known else math.inf

    day = min(sorted(by_day), key=lambda d: mean_cloud(by_day[d]))
    return by_day[day]


def cube_bbox(items: Iterable[pystac.Item], *, geometry: Any) -> Bbox:
    """Lon/lat bbox of ``geometry`` clipped to the union of the items' bboxes.

    The cube of an area then covers no more than the imagery does.

    Raises
    ------
    EmptySearchError
        No item overlaps ``geometry``.
    VectorError
        ``geometry`` is not a geometry, is empty, or is not in lon/lat degrees.

    Examples
    --------
    >>> import pystac, datetime as dt, shapely.geometry as sg
    >>> g = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    >>> a = pystac.Item("a", g, [0, 0, 1, 1], dt.datetime(2021, 1, 5), {})
    >>> cube_bbox([a], geometry=sg.box(0.5, -1, 2, 0.5))
    (0.5, 0.0, 1.0, 0.5)
    """
    geometry = _check_area(geometry, "cube_bbox")
    boxes = [b for b in (_item_bbox(i) for i in _item_list(items, "cube_bbox")) if b is not None]
    if not boxes:
        raise EmptySearchError(
            "no item to build a cube from; search the area and period first (notebook 02)"
        )
    w, s, e, n = geometry.bounds
    out = (
        float(max(w, min(b[0] for b in boxes))), float(max(s, min(b[1] for b in boxes))),
        float(min(e, max(b[2] for b in boxes))), float(min(n, max(b[3] for b in boxes))),
    )  # fmt: skip
    if not (out[0] < out[2] and out[1] < out[3]):
        raise EmptySearchError(
            f"the items' footprints {boxes[:3]} do not overlap the area {geometry.bounds}; "
            "check the area's CRS and that the search covered it"
        )
    return out


def item_ids(items: Iterable[pystac.Item]) -> list[str]:
    """Return the ids of ``items`` (for the run manifest)."""
    return [i.id for i in items]


def freeze_items(items: Iterable[pystac.Item], path: str | os.PathLike[str]) -> Path:
    """Write ``items`` as an ItemCollection JSON file, atomically.

    Asset hrefs are written as absolute paths/URLs, so the frozen file can be searched
    (:func:`search_items`) or loaded (:func:`load_items`) from anywhere.

    Parameters
    ----------
    items
        pystac Items (e.g. the result of :func:`search_items`).
    path
        Destination ``.json``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ParamsError
        ``path`` is a folder.
    """
    if Path(path).is_dir():
        raise ParamsError(
            f"path {str(path)!r} is a folder; freeze_items needs a file path, e.g. "
            f"{str(Path(path) / 'items.json')!r}"
        )
    coll = pystac.ItemCollection([_absolute_hrefs(i) for i in _item_list(items, "freeze_items")])
    text = json.dumps(coll.to_dict(transform_hrefs=False), indent=1) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def load_items(path: str | os.PathLike[str]) -> pystac.ItemCollection:
    """Read an ItemCollection JSON file written by :func:`freeze_items`.

    Raises
    ------
    MissingFileError
        The file is missing, or ``path`` is a folder.
    VitsegError
        The file is not an ItemCollection.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"no ItemCollection at {str(p)!r}; run notebook 02_build_cube first")
    if p.is_dir():
        found = sorted(q.name for q in p.glob("*.json"))[:5]
        raise MissingFileError(
            f"{str(p)!r} is a folder, not an ItemCollection file (JSON files in it: {found}); "
            "pass the file freeze_items wrote, e.g. <run>/data/items.json"
        )
    items = _local_items(p)
    return pystac.ItemCollection(items)
