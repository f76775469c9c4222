"""Search requests of the local STAC server: parse them, match items, sort and page.

The HTTP-free half of :mod:`vitseg.stac_server`: :func:`parse_item` checks a served
item once and keeps what searches need (an :class:`Entry`); :func:`parse_search`
turns the parameters of a GET query string or a POST body into a :class:`Search`,
answering a bad one with :class:`HTTPError` (400, Earth Search's ``BadRequest``);
:func:`matches` and :func:`sort_entries` pick and order the entries, and
:func:`next_token` makes the ``next`` token of a page. Private: the server is the API.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as _dt
import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pystac
import shapely.geometry
from shapely import make_valid

from vitseg.errors import VitsegError
from vitseg.stac import _parse_time

__all__ = [
    "MAX_LIMIT",
    "Entry",
    "HTTPError",
    "Search",
    "bad_request",
    "item_dict",
    "matches",
    "next_token",
    "not_found",
    "parse_item",
    "parse_search",
    "sort_entries",
]

#: Largest page a search returns; a larger ``limit`` is lowered to it.
MAX_LIMIT = 1000

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
_SEARCH_KEYS = frozenset(
    {"collections", "ids", "bbox", "intersects", "datetime", "limit", "query", "sortby"}
    | {"fields", "next"}
)
_UNSUPPORTED_KEYS = frozenset({"filter", "filter-lang", "q"})


class HTTPError(Exception):
    """An answer other than 200: status, Earth Search-style code and description."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code


def bad_request(description: str) -> HTTPError:
    """Return a 400 ``BadRequest`` answer to raise."""
    return HTTPError(400, "BadRequest", description)


def not_found(description: str) -> HTTPError:
    """Return a 404 ``NotFound`` answer to raise."""
    return HTTPError(404, "NotFound", description)


@dataclass(frozen=True)
class Entry:
    """One served item with what searches need, parsed once."""

    item: dict[str, Any]
    id: str
    collection: str | None
    geometry: Any  # shapely geometry
    bbox: tuple[float, float, float, float]
    start: _dt.datetime
    end: _dt.datetime


@dataclass
class Search:
    """One parsed search: its filters, sort order and page."""

    collections: list[str] | None = None
    ids: list[str] | None = None
    geometry: Any = None  # shapely geometry or None
    start: _dt.datetime | None = None
    end: _dt.datetime | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int = 10
    offset: int = 0


# --------------------------------------------------------------------------- parsing


def _json_param(name: str, value: Any, *, get: bool) -> Any:
    if get and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as err:
            raise bad_request(
                f"{name} must be JSON in a GET request; got {value!r} ({err})"
            ) from err
    return value


def _str_list(name: str, value: Any, *, get: bool) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if get else [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise bad_request(f"{name} must be a list of strings (comma-separated in GET); got {value!r}")


def _parse_bbox(value: Any, *, get: bool) -> Any:
    hint = "min_lon,min_lat,max_lon,max_lat in degrees (or 6 numbers with heights)"
    if get and isinstance(value, str):
        try:
            nums = [float(v) for v in value.split(",")]
        except ValueError as err:
            raise bad_request(f"bbox must be 4 numbers {hint}; got {value!r}") from err
    elif isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        nums = [float(v) for v in value]
    else:
        raise bad_request(f"bbox must be 4 numbers {hint}; got {value!r}")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or not all(math.isfinite(v) for v in nums):
        raise bad_request(f"bbox must be 4 numbers {hint}; got {value!r}")
    x0, y0, x1, y1 = nums
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise bad_request(
            f"bbox must be {hint}, longitudes in [-180, 180], latitudes in [-90, 90] and "
            f"min_lat <= max_lat; got {value!r}"
        )
    if x0 > x1:  # crosses the antimeridian
        return shapely.geometry.box(x0, y0, 180, y1).union(shapely.geometry.box(-180, y0, x1, y1))
    return shapely.geometry.box(x0, y0, x1, y1)


def _parse_intersects(value: Any, *, get: bool) -> Any:
    geom = _json_param("intersects", value, get=get)
    kinds = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
    if not isinstance(geom, dict) or geom.get("type") not in kinds | {"GeometryCollection"}:
        raise bad_request(f"intersects must be a GeoJSON geometry object; got {value!r}")
    try:
        shape = shapely.geometry.shape(geom)
    except Exception as err:
        raise bad_request(
            f"intersects is not a valid GeoJSON geometry ({err}); got {value!r}"
        ) from err
    return shape if shape.is_valid else make_valid(shape)


def _parse_datetime(value: Any) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    hint = (
        "an RFC 3339 instant or interval like '2021-01-01T00:00:00Z/2021-01-31T23:59:59Z' "
        "(open ends '..'; date-only ends cover the day)"
    )
    if not isinstance(value, str):
        raise bad_request(f"datetime must be {hint}; got {value!r}")
    parts = [p.strip() for p in value.upper().split("/")]
    if len(parts) not in (1, 2) or all(p in ("", "..") for p in parts):
        raise bad_request(f"datetime must be {hint}; got {value!r}")
    try:
        if len(parts) == 1:
            start, end = _parse_time(parts[0], end=False), _parse_time(parts[0], end=True)
        else:
            start, end = _parse_time(parts[0], end=False), _parse_time(parts[1], end=True)
    except VitsegError as err:
        raise bad_request(f"datetime must be {hint}; got {value!r}") from err
    if start is not None and end is not None and start > end:
        raise bad_request(f"datetime interval {value!r} ends before it starts; swap its ends")
    return start, end


def _parse_query(value: Any, *, get: bool) -> dict[str, dict[str, Any]]:
    query = _json_param("query", value, get=get)
    example = '{"eo:cloud_cover": {"lte": 20}}'
    if not isinstance(query, dict):
        raise bad_request(f"query must be an object like {example}; got {value!r}")
    for name, ops in query.items():
        if not isinstance(ops, dict) or not ops:
            raise bad_request(f"query[{name!r}] must be an object like {{'lte': 20}}; got {ops!r}")
        unknown = sorted(set(ops) - set(_OPS))
        if unknown:
            raise bad_request(
                f"query[{name!r}] has unknown operator(s) {unknown}; use one of {sorted(_OPS)}"
            )
    return query


def _parse_sortby(value: Any, *, get: bool) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    if get and isinstance(value, str):
        for part in (p.strip() for p in value.split(",")):
            if part.lstrip("+-"):
                out.append((part.lstrip("+-"), part.startswith("-")))
        return out
    if isinstance(value, list):
        for spec in value:
            if (
                isinstance(spec, dict)
                and isinstance(spec.get("field"), str)
                and spec.get("direction", "asc") in ("asc", "desc")
            ):
                out.append((spec["field"], spec.get("direction") == "desc"))
            else:
                raise bad_request(
                    "sortby entries must look like {'field': 'properties.eo:cloud_cover', "
                    f"'direction': 'asc' or 'desc'}}; got {spec!r}"
                )
        return out
    raise bad_request(
        f"sortby must be a list of {{field, direction}} ('+a,-b' in GET); got {value!r}"
    )


def _parse_limit(value: Any, *, get: bool) -> int:
    if get and isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"limit must be a positive integer (at most {MAX_LIMIT}); got {value!r}")
    return min(value, MAX_LIMIT)


def next_token(offset: int) -> str:
    """Return the ``next`` token of the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _parse_token(value: Any) -> int:
    try:
        text = base64.urlsafe_b64decode(str(value) + "=" * (-len(str(value)) % 4)).decode()
        if not text.startswith("offset:"):
            raise ValueError(text)
        offset = int(text[len("offset:") :])
        if offset < 0:
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise bad_request(
            f"next token {value!r} is not one this server issued; follow its next links"
        ) from err
    return offset


def parse_search(params: Mapping[str, Any], *, get: bool, page_size: int) -> Search:
    """Parse a GET query (``get=True``: strings) or a POST body into a :class:`Search`."""
    unsupported = sorted(set(params) & _UNSUPPORTED_KEYS)
    if unsupported:
        raise bad_request(
            f"{unsupported} not supported by this local stand-in of Earth Search; "
            "filter with 'query' (e.g. {'eo:cloud_cover': {'lte': 20}}) instead"
        )
    unknown = sorted(set(params) - _SEARCH_KEYS)
    if unknown:
        raise bad_request(
            f"unknown search parameter(s) {unknown}; known are {sorted(_SEARCH_KEYS)}"
        )
    s = Search(limit=page_size)
    if params.get("bbox") is not None and params.get("intersects") is not None:
        raise bad_request("give either bbox or intersects, not both")
    if params.get("collections") is not None:
        s.collections = _str_list("collections", params["collections"], get=get)
    if params.get("ids") is not None:
        s.ids = _str_list("ids", params["ids"], get=get)
    if params.get("bbox") is not None:
        s.geometry = _parse_bbox(params["bbox"], get=get)
    if params.get("intersects") is not None:
        s.geometry = _parse_intersects(params["intersects"], get=get)
    if params.get("datetime") is not None:
        s.start, s.end = _parse_datetime(params["datetime"])
    if params.get("query") is not None:
        s.query = _parse_query(params["query"], get=get)
    if params.get("sortby") is not None:
        s.sortby = _parse_sortby(params["sortby"], get=get)
    if params.get("limit") is not None:
        s.limit = _parse_limit(params["limit"], get=get)
    if params.get("next") is not None:
        s.offset = _parse_token(params["next"])
    return s


# -------------------------------------------------------------------------- matching


def _property(entry: Entry, name: str) -> tuple[bool, Any]:
    if name in ("id", "collection"):
        value = entry.id if name == "id" else entry.collection
        return value is not None, value
    props = entry.item.get("properties") or {}
    key = name.removeprefix("properties.")
    return key in props and props[key] is not None, props.get(key)


def _query_ok(entry: Entry, query: Mapping[str, Mapping[str, Any]]) -> bool:
    for name, ops in query.items():
        present, value = _property(entry, name)
        for op, ref in ops.items():
            if not present:
                if op == "neq":
                    continue
                return False
            try:
                ok = _OPS[op](value, ref)
            except TypeError:  # e.g. a string compared with a number
                ok = False
            if not ok:
                return False
    return True


def matches(entry: Entry, s: Search) -> bool:
    """Return whether ``entry`` passes every filter of ``s``."""
    if s.collections is not None and entry.collection not in s.collections:
        return False
    if s.ids is not None and entry.id not in s.ids:
        return False
    if s.start is not None and entry.end < s.start:
        return False
    if s.end is not None and entry.start > s.end:
        return False
    if s.geometry is not None and not s.geometry.intersects(entry.geometry):
        return False
    return _query_ok(entry, s.query)


def sort_entries(entries: list[Entry], sortby: list[tuple[str, bool]]) -> list[Entry]:
    """Sort by each ``sortby`` field (entries lacking it last); ties keep datetime/id order."""
    out = list(entries)  # already in datetime, id order
    for name, descending in reversed(sortby):
        if name in ("datetime", "properties.datetime"):
            out.sort(key=lambda e: e.start, reverse=descending)
            continue
        present = [e for e in out if _property(e, name)[0]]
        missing = [e for e in out if not _property(e, name)[0]]
        try:
            present.sort(key=lambda e: _property(e, name)[1], reverse=descending)
        except TypeError as err:
            raise bad_request(f"cannot sort by {name!r}: its values have mixed types") from err
        out = present + missing
    return out


# ---------------------------------------------------------------------------- items


def item_dict(obj: Any, k: int) -> dict[str, Any]:
    """Return item ``k`` (a dict, copied, or a pystac Item) as a dict."""
    if isinstance(obj, pystac.Item):
        d: dict[str, Any] = obj.to_dict(include_self_link=False, transform_hrefs=False)
        return d
    if isinstance(obj, Mapping):
        return copy.deepcopy(dict(obj))
    raise VitsegError(
        f"item {k} is a {type(obj).__name__}; expected a STAC item dict or a pystac.Item"
    )


def parse_item(item: dict[str, Any], k: int) -> Entry:
    """Check one item dict and parse its geometry and time."""
    item_id = item.get("id")
    where = f"item {k} (id {item_id!r})"
    if item.get("type") != "Feature" or not isinstance(item_id, str) or not item_id:
        raise VitsegError(
            f"{where} is not a STAC item: expected type 'Feature' and a non-empty string id; "
            f"got type {item.get('type')!r}. Pass item dicts or pystac Items."
        )
    props = item.get("properties")
    if not isinstance(props, dict):
        raise VitsegError(f"{where} has no 'properties' object; got {props!r}")
    collection = item.get("collection")
    if collection is not None and not isinstance(collection, str):
        raise VitsegError(f"{where}: 'collection' must be a string id; got {collection!r}")
    try:
        if item.get("geometry") is not None:
            geom = shapely.geometry.shape(item["geometry"])
        elif item.get("bbox") is not None:
            b = item["bbox"]
            geom = shapely.geometry.box(*(b[:2] + b[3:5] if len(b) == 6 else b))
        else:
            raise VitsegError(f"{where} has neither a geometry nor a bbox; give it a footprint")
    except VitsegError:
        raise
    except Exception as err:
        raise VitsegError(f"{where} has an unreadable geometry/bbox ({err})") from err
    if not geom.is_valid:
        geom = make_valid(geom)
    if item.get("bbox") is None:
        item["bbox"] = list(geom.bounds)
    b = item["bbox"]
    box = (b[0], b[1], b[3], b[4]) if len(b) == 6 else (b[0], b[1], b[2], b[3])
    has_range = props.get("start_datetime") is not None and props.get("end_datetime") is not None
    if props.get("datetime") is None and not has_range:
        raise VitsegError(
            f"{where} has neither 'datetime' nor 'start_datetime'/'end_datetime' "
            "properties; give it an RFC 3339 datetime like '2021-01-05T10:00:00Z'"
        )
    try:
        if props.get("datetime") is not None:
            start = end = cast(_dt.datetime, _parse_time(str(props["datetime"]), end=False))
        else:
            start = cast(_dt.datetime, _parse_time(str(props["start_datetime"]), end=False))
            end = cast(_dt.datetime, _parse_time(str(props["end_datetime"]), end=True))
    except VitsegError as err:
        raise VitsegError(f"{where}: {err}") from err
    return Entry(item, item_id, collection, geom, box, start, end)
