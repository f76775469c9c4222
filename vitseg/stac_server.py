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

import datetime as _dt
import http.server
import ipaddress
import json
import math
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pystac

from vitseg._stac_query import (
    MAX_LIMIT,
    Entry,
    HTTPError,
    Search,
    bad_request,
    item_dict,
    matches,
    next_token,
    not_found,
    parse_item,
    parse_search,
    sort_entries,
)
from vitseg.errors import ParamsError, VitsegError
from vitseg.stac import _local_items, _source_path

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

_JSON = "application/json"
_GEOJSON = "application/geo+json"
#: Item links the server rewrites (the others are kept as they are).
_OWN_RELS = frozenset({"self", "parent", "collection", "root", "items", "child"})


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


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
        except HTTPError as err:
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
            raise bad_request("Content-Length is not an integer") from err
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as err:
            raise bad_request(f"request body is not valid JSON ({err})") from err
        if not isinstance(body, dict):
            raise bad_request(f"request body must be a JSON object; got {type(body).__name__}")
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
        ``host`` is not a loopback address, ``port``/``page_size`` is out of range, or
        ``items`` is one item rather than a list.
    VitsegError
        An item is not a STAC item, its bbox holds NaN or inf, ids repeat, or the port
        cannot be bound.

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
        if isinstance(items, (Mapping, pystac.Item, str, bytes)):
            raise ParamsError(
                f"items must be a list of item dicts or pystac Items; got one "
                f"{type(items).__name__}. Write [item], or pass an ItemCollection dict or file "
                "to serve_items."
            )
        entries = [parse_item(item_dict(obj, k), k) for k, obj in enumerate(items)]
        for k, e in enumerate(entries):
            if not all(math.isfinite(v) for v in e.bbox):
                raise VitsegError(
                    f"item {k} (id {e.id!r}) has a bbox with NaN or inf ({list(e.bbox)}); a "
                    "search could never match it. Fix its bbox or geometry."
                )
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
        self._collections: dict[str, list[Entry]] = {}
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

    def _item_links(self, e: Entry) -> list[dict[str, Any]]:
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
        s: Search,
        *,
        pool: list[Entry],
        path: str,
        qs: str,
        body: dict[str, Any] | None,
        links: list[dict[str, Any]],
    ) -> dict[str, Any]:
        matched = sort_entries([e for e in pool if matches(e, s)], s.sortby)
        page = matched[s.offset : s.offset + s.limit]
        out_links = list(links)
        if s.offset + s.limit < len(matched):
            token = next_token(s.offset + s.limit)
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
                raise HTTPError(
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
            s = parse_search(params, get=method == "GET", page_size=self.page_size)
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
                raise not_found(
                    f"collection {cid!r} not found; this server has {sorted(self._collections)}"
                )
            if len(parts) == 2:
                return 200, self._collection(cid), _JSON
            if parts[2] == "items" and len(parts) == 3:
                get_params.pop("collections", None)
                s = parse_search(get_params, get=True, page_size=self.page_size)
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
                raise not_found(f"item {parts[3]!r} not found in collection {cid!r}")
        raise not_found(f"no endpoint at {path!r}; try /, /conformance, /collections, /search")


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
        ``host`` is not a loopback address, ``port``/``page_size`` is out of range, or
        ``source`` is of another type (a number, None).
    MissingFileError
        ``source`` is a path that does not exist, or a folder without ``catalog.json``.
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
        path = _source_path(src)
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
    elif isinstance(source, Iterable) and not isinstance(source, bytes):
        items = source
    else:
        raise ParamsError(
            f"source must be the path of an ItemCollection or catalog.json, an ItemCollection "
            f"dict, or a list of items; got {type(source).__name__} ({source!r})"
        )
    return StacServer(items, host=host, port=port, page_size=page_size, title=title)
