"""A local STAC API server: an offline stand-in for Element 84's Earth Search v1.

:func:`serve_items` starts a real HTTP server on a loopback address (``127.0.0.1``
and a free port by default) in a daemon thread and serves a fixed set of STAC items
with the endpoints and the paging of Earth Search v1
(``https://earth-search.aws.element84.com/v1``). Offline tests and demos then take
the real path of :func:`vitseg.stac.search_items`: pystac-client over HTTP, with POST
or GET searches, ``query`` on ``eo:cloud_cover`` and ``next`` links, exactly as
against Earth Search.

It serves local files only: the items come from an ItemCollection JSON file, a
static ``catalog.json`` or item dicts built in code, and their asset hrefs (local
COG files, usually) are served untouched; only their ``self``, ``parent``,
``collection`` and ``root`` links are rewritten to the server's URLs. Collections
are derived from the items' ``collection`` field. Nothing is fetched from the
network, and the server refuses to listen on anything but a loopback address.

Endpoints (JSON; items and searches as ``application/geo+json``):

* ``GET /`` landing page, ``GET /conformance``;
* ``GET /collections``, ``/collections/{id}``, ``/collections/{id}/items`` (paged
  like a search) and ``/collections/{id}/items/{item_id}``;
* ``GET`` and ``POST /search`` with ``collections``, ``ids``, ``bbox``,
  ``intersects``, ``datetime``, ``limit``, ``query`` (``eq``, ``neq``, ``lt``,
  ``lte``, ``gt``, ``gte``) and ``sortby``; ``fields`` is accepted and ignored
  (whole items are returned). Results are sorted by datetime, then id, unless
  ``sortby`` says otherwise.

Bad requests answer ``400 {"code": "BadRequest", "description": ...}`` and unknown
paths or items ``404 {"code": "NotFound", ...}``, as Earth Search does.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as _dt
import http.server
import ipaddress
import json
import math
import operator
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pystac
import shapely.geometry
from shapely import make_valid

from vitseg.errors import MissingFileError, ParamsError, VitsegError
from vitseg.stac import _local_items, _parse_time

__all__ = ["CONFORMANCE", "MAX_LIMIT", "StacServer", "serve_items"]

#: Conformance classes the landing page and ``/conformance`` advertise.
CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
#: Largest page a search returns; a larger ``limit`` is lowered to it.
MAX_LIMIT = 1000

_JSON = "application/json"
_GEOJSON = "application/geo+json"
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
#: Item links the server rewrites (the others are kept as they are).
_OWN_RELS = frozenset({"self", "parent", "collection", "root", "items", "child"})


class _HTTPError(Exception):
    """An answer other than 200: status, Earth Search-style code and description."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code


def _bad(description: str) -> _HTTPError:
    return _HTTPError(400, "BadRequest", description)


def _not_found(description: str) -> _HTTPError:
    return _HTTPError(404, "NotFound", description)


@dataclass(frozen=True)
class _Entry:
    """One served item with what searches need, parsed once."""

    item: dict[str, Any]
    id: str
    collection: str | None
    geometry: Any  # shapely geometry
    bbox: tuple[float, float, float, float]
    start: _dt.datetime
    end: _dt.datetime


@dataclass
class _Search:
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
            raise _bad(f"{name} must be JSON in a GET request; got {value!r} ({err})") from err
    return value


def _str_list(name: str, value: Any, *, get: bool) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if get else [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _bad(f"{name} must be a list of strings (comma-separated in GET); got {value!r}")


def _parse_bbox(value: Any, *, get: bool) -> Any:
    hint = "min_lon,min_lat,max_lon,max_lat in degrees (or 6 numbers with heights)"
    if get and isinstance(value, str):
        try:
            nums = [float(v) for v in value.split(",")]
        except ValueError as err:
            raise _bad(f"bbox must be 4 numbers {hint}; got {value!r}") from err
    elif isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        nums = [float(v) for v in value]
    else:
        raise _bad(f"bbox must be 4 numbers {hint}; got {value!r}")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or not all(math.isfinite(v) for v in nums):
        raise _bad(f"bbox must be 4 numbers {hint}; got {value!r}")
    x0, y0, x1, y1 = nums
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise _bad(
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
        raise _bad(f"intersects must be a GeoJSON geometry object; got {value!r}")
    try:
        shape = shapely.geometry.shape(geom)
    except Exception as err:
        raise _bad(f"intersects is not a valid GeoJSON geometry ({err}); got {value!r}") from err
    return shape if shape.is_valid else make_valid(shape)


def _parse_datetime(value: Any) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    hint = (
        "an RFC 3339 instant or interval like '2021-01-01T00:00:00Z/2021-01-31T23:59:59Z' "
        "(open ends '..'; date-only ends cover the day)"
    )
    if not isinstance(value, str):
        raise _bad(f"datetime must be {hint}; got {value!r}")
    parts = [p.strip() for p in value.upper().split("/")]
    if len(parts) not in (1, 2) or all(p in ("", "..") for p in parts):
        raise _bad(f"datetime must be {hint}; got {value!r}")
    try:
        if len(parts) == 1:
            start, end = _parse_time(parts[0], end=False), _parse_time(parts[0], end=True)
        else:
            start, end = _parse_time(parts[0], end=False), _parse_time(parts[1], end=True)
    except VitsegError as err:
        raise _bad(f"datetime must be {hint}; got {value!r}") from err
    if start is not None and end is not None and start > end:
        raise _bad(f"datetime interval {value!r} ends before it starts; swap its ends")
    return start, end


def _parse_query(value: Any, *, get: bool) -> dict[str, dict[str, Any]]:
    query = _json_param("query", value, get=get)
    example = '{"eo:cloud_cover": {"lte": 20}}'
    if not isinstance(query, dict):
        raise _bad(f"query must be an object like {example}; got {value!r}")
    for name, ops in query.items():
        if not isinstance(ops, dict) or not ops:
            raise _bad(f"query[{name!r}] must be an object like {{'lte': 20}}; got {ops!r}")
        unknown = sorted(set(ops) - set(_OPS))
        if unknown:
            raise _bad(
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
                raise _bad(
                    "sortby entries must look like {'field': 'properties.eo:cloud_cover', "
                    f"'direction': 'asc' or 'desc'}}; got {spec!r}"
                )
        return out
    raise _bad(f"sortby must be a list of {{field, direction}} ('+a,-b' in GET); got {value!r}")


def _parse_limit(value: Any, *, get: bool) -> int:
    if get and isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(f"limit must be a positive integer (at most {MAX_LIMIT}); got {value!r}")
    return min(value, MAX_LIMIT)


def _token(offset: int) -> str:
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
        raise _bad(
            f"next token {value!r} is not one this server issued; follow its next links"
        ) from err
    return offset


def _parse_search(params: Mapping[str, Any], *, get: bool, page_size: int) -> _Search:
    unsupported = sorted(set(params) & _UNSUPPORTED_KEYS)
    if unsupported:
        raise _bad(
            f"{unsupported} not supported by this local stand-in of Earth Search; "
            "filter with 'query' (e.g. {'eo:cloud_cover': {'lte': 20}}) instead"
        )
    unknown = sorted(set(params) - _SEARCH_KEYS)
    if unknown:
        raise _bad(f"unknown search parameter(s) {unknown}; known are {sorted(_SEARCH_KEYS)}")
    s = _Search(limit=page_size)
    if params.get("bbox") is not None and params.get("intersects") is not None:
        raise _bad("give either bbox or intersects, not both")
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


def _property(entry: _Entry, name: str) -> tuple[bool, Any]:
    if name in ("id", "collection"):
        value = entry.id if name == "id" else entry.collection
        return value is not None, value
    props = entry.item.get("properties") or {}
    key = name.removeprefix("properties.")
    return key in props and props[key] is not None, props.get(key)


def _query_ok(entry: _Entry, query: Mapping[str, Mapping[str, Any]]) -> bool:
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


def _matches(entry: _Entry, s: _Search) -> bool:
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


def _sorted(entries: list[_Entry], sortby: list[tuple[str, bool]]) -> list[_Entry]:
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
            raise _bad(f"cannot sort by {name!r}: its values have mixed types") from err
        out = present + missing
    return out


# ---------------------------------------------------------------------------- items


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _item_dict(obj: Any, k: int) -> dict[str, Any]:
    if isinstance(obj, pystac.Item):
        d: dict[str, Any] = obj.to_dict(include_self_link=False, transform_hrefs=False)
        return d
    if isinstance(obj, Mapping):
        return copy.deepcopy(dict(obj))
    raise VitsegError(
        f"item {k} is a {type(obj).__name__}; expected a STAC item dict or a pystac.Item"
    )


def _entry(item: dict[str, Any], k: int) -> _Entry:
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
    return _Entry(item, item_id, collection, geom, box, start, end)


def _check_host(host: str) -> str:
    """Return the address to bind, refusing anything but a loopback address."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ParamsError(
            f"host must be a loopback address (127.0.0.0/8, ::1 or 'localhost'); got {host!r}. "
            "This server stands in for Earth Search in local tests and must not be reachable "
            "from other machines; use host='127.0.0.1'."
        )
    return host


# --------------------------------------------------------------------------- server


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: StacServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup: skip it
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # client went away
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "vitseg-stac-server"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent (no per-request lines on stderr)."""

    def do_GET(self) -> None:
        """Answer a GET request."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Answer a POST request."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        app = cast(_HTTPServer, self.server).app
        split = urlsplit(self.path)
        app._record(method, split.path)
        ctype = _JSON
        try:
            body: dict[str, Any] | None = None
            if method == "POST":
                body = self._body()
            status, payload, ctype = app._route(method, split.path, split.query, body)
        except _HTTPError as err:
            status, payload = err.status, {"code": err.code, "description": str(err)}
        except Exception as err:  # a bug: answer it rather than print a traceback
            status = 500
            payload = {"code": "InternalServerError", "description": f"{type(err).__name__}: {err}"}
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype if status == 200 else _JSON)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            pass

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as err:
            raise _bad("Content-Length is not an integer") from err
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as err:
            raise _bad(f"request body is not valid JSON ({err})") from err
        if not isinstance(body, dict):
            raise _bad(f"request body must be a JSON object; got {type(body).__name__}")
        return body


class StacServer:
    """A STAC API on a loopback address, serving fixed items like Earth Search v1.

    Usually made by :func:`serve_items`; the constructor takes item dicts or pystac
    Items, starts listening and returns with the server running in a daemon thread.
    Use it as a context manager, or call :meth:`close`.

    Parameters
    ----------
    items
        STAC item dicts (copied) or pystac Items. Ids must be unique per collection.
    host
        Loopback address to listen on (127.0.0.0/8, ``"::1"`` or ``"localhost"``).
    port
        TCP port; 0 picks a free one.
    page_size
        Items per page when a search gives no ``limit`` (1 to :data:`MAX_LIMIT`).
    title
        Title of the landing page.

    Attributes
    ----------
    url : str
        Root URL, e.g. ``"http://127.0.0.1:40123"`` (no trailing slash): pass it to
        ``pystac_client.Client.open`` or :func:`vitseg.stac.search_items`.
    items : list of dict
        The item dicts served, with their links rewritten to this server.
    requests : list of (str, str)
        ``(method, path)`` of every request received, without query strings.

    Raises
    ------
    ParamsError
        ``host`` is not a loopback address, or ``port``/``page_size`` is out of range.
    VitsegError
        An item is not a STAC item, ids repeat, or the port cannot be bound.

    Examples
    --------
    >>> with StacServer([]) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self,
        items: Iterable[Mapping[str, Any] | pystac.Item],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 10,
        title: str = "vitseg local STAC API (Earth Search v1 stand-in)",
    ) -> None:
        bind = _check_host(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ParamsError(
                f"port must be an integer in 0..65535 (0: any free port); got {port!r}"
            )
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= MAX_LIMIT
        ):
            raise ParamsError(f"page_size must be an integer in 1..{MAX_LIMIT}; got {page_size!r}")
        entries = [_entry(_item_dict(obj, k), k) for k, obj in enumerate(items)]
        seen: set[tuple[str | None, str]] = set()
        for e in entries:
            if (e.collection, e.id) in seen:
                raise VitsegError(
                    f"item id {e.id!r} appears twice in collection {e.collection!r}; "
                    "ids must be unique within a collection"
                )
            seen.add((e.collection, e.id))
        self.title = title
        self.page_size = page_size
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._httpd = _HTTPServer((bind, port), self)
        except OSError as err:
            raise VitsegError(
                f"cannot listen on {bind}:{port} ({err}); pass port=0 to pick a free port"
            ) from err
        bound = int(self._httpd.server_address[1])
        self.url = f"http://[{bind}]:{bound}" if ":" in bind else f"http://{bind}:{bound}"
        for e in entries:
            e.item["links"] = self._item_links(e)
        self._entries = sorted(entries, key=lambda e: (e.start, e.id))
        self.items: list[dict[str, Any]] = [e.item for e in self._entries]
        self._collections: dict[str, list[_Entry]] = {}
        for e in self._entries:
            if e.collection is not None:
                self._collections.setdefault(e.collection, []).append(e)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"vitseg-stac-server-{bound}",
            daemon=True,
        )
        self._thread.start()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop serving and free the port (new connections are refused); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StacServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving"
        return f"<StacServer {self.url} {len(self.items)} items, {state}>"

    # ------------------------------------------------------------------- helpers

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def _link(self, rel: str, path: str, kind: str = _JSON, **extra: Any) -> dict[str, Any]:
        return {"rel": rel, "type": kind, "href": f"{self.url}{path}", **extra}

    def _item_links(self, e: _Entry) -> list[dict[str, Any]]:
        kept = [
            link
            for link in e.item.get("links") or []
            if isinstance(link, dict)
            and link.get("rel") not in _OWN_RELS
            and "://" in str(link.get("href", ""))  # relative links mean nothing here
        ]
        own = [self._link("root", "")]
        if e.collection is None:  # served by /search only
            return [*own, self._link("parent", ""), *kept]
        cpath = f"/collections/{quote(e.collection, safe='')}"
        return [
            self._link("self", f"{cpath}/items/{quote(e.id, safe='')}", _GEOJSON),
            self._link("parent", cpath),
            self._link("collection", cpath),
            *own,
            *kept,
        ]

    def _collection(self, cid: str) -> dict[str, Any]:
        entries = self._collections[cid]
        cpath = f"/collections/{quote(cid, safe='')}"
        return {
            "type": "Collection",
            "stac_version": "1.0.0",
            "stac_extensions": [],
            "id": cid,
            "title": cid,
            "description": f"{len(entries)} items of {cid!r}, served from local files",
            "license": "proprietary",
            "extent": {
                "spatial": {
                    "bbox": [
                        [
                            min(e.bbox[0] for e in entries),
                            min(e.bbox[1] for e in entries),
                            max(e.bbox[2] for e in entries),
                            max(e.bbox[3] for e in entries),
                        ]
                    ]
                },
                "temporal": {
                    "interval": [
                        [_iso(min(e.start for e in entries)), _iso(max(e.end for e in entries))]
                    ]
                },
            },
            "links": [
                self._link("self", cpath),
                self._link("parent", ""),
                self._link("root", ""),
                self._link("items", f"{cpath}/items", _GEOJSON),
            ],
        }

    def _landing(self) -> dict[str, Any]:
        n = len(self._collections)
        return {
            "type": "Catalog",
            "id": "vitseg-stac-server",
            "stac_version": "1.0.0",
            "stac_extensions": [],
            "title": self.title,
            "description": (
                f"{len(self.items)} STAC items in {n} collection(s), served from local files "
                "in the structure of Earth Search v1 (for offline tests)"
            ),
            "conformsTo": list(CONFORMANCE),
            "links": [
                self._link("self", ""),
                self._link("root", ""),
                self._link("conformance", "/conformance"),
                self._link("data", "/collections"),
                self._link("search", "/search", _GEOJSON, method="GET"),
                self._link("search", "/search", _GEOJSON, method="POST"),
                *(
                    self._link("child", f"/collections/{quote(cid, safe='')}", title=cid)
                    for cid in self._collections
                ),
            ],
        }

    def _page(
        self,
        s: _Search,
        *,
        pool: list[_Entry],
        path: str,
        qs: str,
        body: dict[str, Any] | None,
        links: list[dict[str, Any]],
    ) -> dict[str, Any]:
        matched = _sorted([e for e in pool if _matches(e, s)], s.sortby)
        page = matched[s.offset : s.offset + s.limit]
        out_links = list(links)
        if s.offset + s.limit < len(matched):
            token = _token(s.offset + s.limit)
            if body is not None:
                out_links.append(
                    self._link(
                        "next",
                        path,
                        _GEOJSON,
                        method="POST",
                        body={**body, "next": token},
                        merge=False,
                    )
                )
            else:
                pairs = [(k, v) for k, v in parse_qsl(qs, keep_blank_values=True) if k != "next"]
                query = urlencode([*pairs, ("next", token)])
                out_links.append(self._link("next", f"{path}?{query}", _GEOJSON, method="GET"))
        return {
            "type": "FeatureCollection",
            "stac_version": "1.0.0",
            "stac_extensions": [],
            "context": {"returned": len(page), "limit": s.limit, "matched": len(matched)},
            "numberMatched": len(matched),
            "numberReturned": len(page),
            "features": [e.item for e in page],
            "links": out_links,
        }

    def _route(
        self, method: str, path: str, qs: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any], str]:
        """Answer one request: (status, JSON payload, content type)."""
        parts = [unquote(p) for p in path.split("/") if p]
        get_params = dict(parse_qsl(qs, keep_blank_values=True))

        def only(*methods: str) -> None:
            if method not in methods:
                raise _HTTPError(
                    405, "MethodNotAllowed", f"{method} {path} is not allowed; use {methods}"
                )

        if not parts:
            only("GET")
            return 200, self._landing(), _JSON
        if parts == ["conformance"]:
            only("GET")
            return 200, {"conformsTo": list(CONFORMANCE)}, _JSON
        if parts == ["search"]:
            only("GET", "POST")
            params: Mapping[str, Any] = (
                body if method == "POST" and body is not None else get_params
            )
            s = _parse_search(params, get=method == "GET", page_size=self.page_size)
            return (
                200,
                self._page(
                    s,
                    pool=self._entries,
                    path="/search",
                    qs=qs,
                    body=body if method == "POST" else None,
                    links=[self._link("root", "")],
                ),
                _GEOJSON,
            )
        if parts[0] == "collections":
            only("GET")
            if len(parts) == 1:
                cols = [self._collection(cid) for cid in self._collections]
                links = [self._link("self", "/collections"), self._link("root", "")]
                return 200, {"collections": cols, "links": links}, _JSON
            cid = parts[1]
            if cid not in self._collections:
                raise _not_found(
                    f"collection {cid!r} not found; this server has {sorted(self._collections)}"
                )
            if len(parts) == 2:
                return 200, self._collection(cid), _JSON
            if parts[2] == "items" and len(parts) == 3:
                get_params.pop("collections", None)
                s = _parse_search(get_params, get=True, page_size=self.page_size)
                cpath = f"/collections/{quote(cid, safe='')}"
                links = [
                    self._link("self", f"{cpath}/items", _GEOJSON),
                    self._link("parent", cpath),
                    self._link("collection", cpath),
                    self._link("root", ""),
                ]
                return (
                    200,
                    self._page(
                        s,
                        pool=self._collections[cid],
                        path=f"{cpath}/items",
                        qs=qs,
                        body=None,
                        links=links,
                    ),
                    _GEOJSON,
                )
            if parts[2] == "items" and len(parts) == 4:
                for e in self._collections[cid]:
                    if e.id == parts[3]:
                        return 200, e.item, _GEOJSON
                raise _not_found(f"item {parts[3]!r} not found in collection {cid!r}")
        raise _not_found(f"no endpoint at {path!r}; try /, /conformance, /collections, /search")


def serve_items(
    source: str | os.PathLike[str] | Mapping[str, Any] | Iterable[Mapping[str, Any] | pystac.Item],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    page_size: int = 10,
    title: str = "vitseg local STAC API (Earth Search v1 stand-in)",
) -> StacServer:
    """Serve STAC items over HTTP on a loopback address, like Earth Search v1.

    Parameters
    ----------
    source
        The path of an ItemCollection JSON file (``{"type": "FeatureCollection", ...}``,
        e.g. written by :func:`vitseg.stac.freeze_items`), of a static ``catalog.json``
        (or its folder), an ItemCollection dict, or item dicts / pystac Items. Relative
        asset hrefs in files are made absolute against the file (as
        :func:`vitseg.stac.search_items` does); other asset hrefs are served untouched.
    host
        Loopback address to listen on (127.0.0.0/8, ``"::1"`` or ``"localhost"``).
    port
        TCP port; 0 (default) picks a free one.
    page_size
        Items per page when a search gives no ``limit`` (Earth Search: 10).
    title
        Title of the landing page.

    Returns
    -------
    StacServer
        Running; its ``url`` is the API root. Close it (or use ``with``) when done.

    Raises
    ------
    ParamsError
        ``host`` is not a loopback address, or ``port``/``page_size`` is out of range.
    MissingFileError
        ``source`` is a path that does not exist.
    VitsegError
        ``source`` is a URL, not STAC, or holds a malformed item.

    Examples
    --------
    >>> from vitseg.stac import search_items
    >>> geom = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    >>> item = {"type": "Feature", "stac_version": "1.0.0", "id": "a", "geometry": geom,
    ...         "bbox": [0, 0, 1, 1], "collection": "sentinel-2-l2a", "links": [],
    ...         "properties": {"datetime": "2021-01-05T10:00:00Z", "eo:cloud_cover": 5.0},
    ...         "assets": {"red": {"href": "/data/a_B04.tif"}}}
    >>> with serve_items([item]) as server:
    ...     found = search_items(server.url, bbox=(0.2, 0.2, 0.4, 0.4),
    ...                          datetime="2021-01", max_cloud_pct=20)
    >>> [i.id for i in found], found[0].assets["red"].href
    (['a'], '/data/a_B04.tif')
    """
    items: Iterable[Mapping[str, Any] | pystac.Item]
    if isinstance(source, str | os.PathLike):
        src = os.fspath(source)
        if "://" in src:
            raise VitsegError(
                f"serve_items serves local files only; got the URL {src!r}. Pass an "
                "ItemCollection file, a catalog.json, or item dicts."
            )
        path = Path(src)
        if path.is_dir():
            path = path / "catalog.json"
        if not path.exists():
            raise MissingFileError(
                f"STAC source {src!r} does not exist; pass an ItemCollection JSON file, "
                "a catalog.json (vitseg.synthetic.write_catalog writes one) or item dicts"
            )
        items = [
            i.to_dict(include_self_link=False, transform_hrefs=False) for i in _local_items(path)
        ]
    elif isinstance(source, Mapping):
        if source.get("type") == "FeatureCollection":
            items = list(source.get("features") or [])
        elif source.get("type") == "Feature":
            items = [source]
        else:
            raise VitsegError(
                f"a dict source must be an ItemCollection (type 'FeatureCollection') or an "
                f"item; got type {source.get('type')!r}"
            )
    elif isinstance(source, pystac.Item):
        items = [source]
    else:
        items = source
    return StacServer(items, host=host, port=port, page_size=page_size, title=title)
