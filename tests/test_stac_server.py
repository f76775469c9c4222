"""Tests for vitseg.stac_server: a local Earth Search v1 stand-in searched over HTTP."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pystac
import pystac_client
import pytest

from vitseg.errors import MissingFileError, ParamsError, VitsegError
from vitseg.stac import search_items
from vitseg.stac_server import MAX_LIMIT, StacServer, serve_items

S2 = "sentinel-2-l2a"
C1 = "sentinel-2-c1-l2a"
ES_ITEM = (
    Path(__file__).parent
    / "data"
    / "stac_earthsearch"
    / "item_sentinel-2-l2a_S2B_24MVV_20250731_0_L2A.json"
)


def make_item(
    item_id: str, collection: str, when: str, box: tuple[float, float, float, float], cc: float
) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": list(box),
        "properties": {"datetime": when, "eo:cloud_cover": cc},
        "assets": {"red": {"href": f"/data/{item_id}_B04.tif", "type": "image/tiff"}},
        "links": [{"rel": "self", "href": f"file:///data/{item_id}.json"}],
    }


# id, collection, datetime, bbox, eo:cloud_cover
SPECS = [
    ("a", S2, "2021-01-05T10:00:00Z", (0, 0, 1, 1), 5.0),
    ("b", S2, "2021-01-10T10:00:00Z", (0, 0, 1, 1), 50.0),
    ("c", S2, "2021-01-15T10:00:00Z", (2, 2, 3, 3), 10.0),
    ("d", S2, "2021-02-01T10:00:00Z", (0.5, 0.5, 1.5, 1.5), 20.0),
    ("e", S2, "2021-03-01T10:00:00Z", (0, 0, 1, 1), 80.0),
    ("f", C1, "2021-01-05T10:00:00Z", (0, 0, 1, 1), 1.0),
    ("g", C1, "2021-02-20T10:00:00Z", (2, 2, 3, 3), 30.0),
]


def items() -> list[dict[str, Any]]:
    # given out of order: the server sorts by datetime, then id
    return [make_item(*spec) for spec in reversed(SPECS)]


@pytest.fixture(scope="module")
def server() -> Iterator[StacServer]:
    with serve_items(items(), page_size=3) as srv:
        yield srv


def get(url: str) -> tuple[int, Any, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read()), resp.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers["Content-Type"]


def post(url: str, body: bytes | dict[str, Any]) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def ids_of(srv: StacServer, method: str, **kw: Any) -> list[str]:
    client = pystac_client.Client.open(srv.url)
    return [i.id for i in client.search(method=method, **kw).items()]


# ------------------------------------------------------------------- pystac-client


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_pystac_client_pages_through_every_match(method: str) -> None:
    with serve_items(items()) as srv:
        found = ids_of(srv, method, collections=[S2], limit=2)
        assert found == ["a", "b", "c", "d", "e"]
        # 5 matches at 2 a page: 3 search requests, all with the client's method
        assert srv.requests.count((method, "/search")) == 3
        assert [r for r in srv.requests if r[1] == "/search"] == [(method, "/search")] * 3


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, ["a", "f", "b", "c", "d", "g", "e"]),  # datetime, then id (a and f tie)
        ({"bbox": [0.2, 0.2, 0.4, 0.4]}, ["a", "f", "b", "e"]),
        ({"bbox": [1.2, 1.2, 1.4, 1.4]}, ["d"]),
        ({"bbox": [2.5, 2.5, 4, 4], "collections": [C1]}, ["g"]),
        ({"datetime": "2021-01-06/2021-02-01"}, ["b", "c", "d"]),  # closed, day-long ends
        ({"datetime": "2021-02-01T10:00:01Z/.."}, ["g", "e"]),  # open end
        ({"datetime": "../2021-01-09"}, ["a", "f"]),  # open start
        ({"query": {"eo:cloud_cover": {"lte": 20}}}, ["a", "f", "c", "d"]),
        ({"query": {"eo:cloud_cover": {"gt": 5, "lt": 50}}}, ["c", "d", "g"]),
        ({"query": {"eo:cloud_cover": {"neq": 5}}, "collections": [S2]}, ["b", "c", "d", "e"]),
        ({"query": {"eo:cloud_cover": {"eq": 80}}}, ["e"]),
        ({"query": {"eo:cloud_cover": {"gte": 30}}}, ["b", "g", "e"]),
        ({"ids": ["e", "a", "zzz"]}, ["a", "e"]),
        ({"collections": [C1]}, ["f", "g"]),
        ({"collections": ["nope"]}, []),
        ({"sortby": "-eo:cloud_cover", "collections": [S2]}, ["e", "b", "d", "c", "a"]),
        (
            {
                "intersects": {"type": "Point", "coordinates": [1.25, 1.25]},
                "datetime": "2021-01-01/2021-12-31",
            },
            ["d"],
        ),
    ],
)
def test_filters_give_hand_computed_sets(
    server: StacServer, method: str, kw: dict[str, Any], expected: list[str]
) -> None:
    assert ids_of(server, method, **kw) == expected


def test_vitseg_search_items_through_the_server(server: StacServer) -> None:
    found = search_items(
        server.url,
        bbox=(0.2, 0.2, 0.4, 0.4),
        datetime="2021-01-01/2021-02-28",
        max_cloud_pct=50,
        collection=S2,
    )
    assert [i.id for i in found] == ["a", "b"]  # e: March; f: other collection
    assert found[0].assets["red"].href == "/data/a_B04.tif"  # asset hrefs untouched


def test_server_filters_what_vitseg_asks(server: StacServer) -> None:
    """The server itself applies the query pystac-client sends (not only vitseg's refilter)."""
    body = {
        "collections": [S2],
        "bbox": [0.2, 0.2, 0.4, 0.4],
        "datetime": "2021-01-01T00:00:00Z/2021-02-28T23:59:59Z",
        "query": {"eo:cloud_cover": {"lte": 50}},
    }
    status, page = post(f"{server.url}/search", body)
    assert status == 200
    assert [f["id"] for f in page["features"]] == ["a", "b"]


def test_served_from_itemcollection_file_and_catalog(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items()}))
    with serve_items(path) as srv:
        assert ids_of(srv, "POST", query={"eo:cloud_cover": {"lte": 5}}) == ["a", "f"]
        assert srv.items[0]["assets"]["red"]["href"] == "/data/a_B04.tif"

    cat = pystac.Catalog("local", "two collections")
    for cid in (S2, C1):
        extent = pystac.Extent(
            pystac.SpatialExtent([[0, 0, 3, 3]]), pystac.TemporalExtent([[None, None]])
        )
        coll = pystac.Collection(cid, cid, extent, license="other")
        for d in items():
            if d["collection"] == cid:
                coll.add_item(pystac.Item.from_dict({**d, "links": []}))
        cat.add_child(coll)
    cat.normalize_hrefs(str(tmp_path / "cat"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    with serve_items(tmp_path / "cat") as srv:
        assert ids_of(srv, "GET", collections=[C1]) == ["f", "g"]
        assert len(srv.items) == 7


def test_real_earth_search_item_links_are_rewritten() -> None:
    doc = json.loads(ES_ITEM.read_text())
    with serve_items([doc]) as srv:
        status, item, ctype = get(f"{srv.url}/collections/{S2}/items/{doc['id']}")
        assert (status, ctype) == (200, "application/geo+json")
        links = {link["rel"]: link["href"] for link in item["links"]}
        assert links["self"] == f"{srv.url}/collections/{S2}/items/{doc['id']}"
        assert links["parent"] == links["collection"] == f"{srv.url}/collections/{S2}"
        assert links["root"] == srv.url
        assert links["license"].startswith("https://sentinel.esa.int/")  # others kept
        assert item["assets"] == doc["assets"]
        found = search_items(srv.url, bbox=(-39.5, -4.8, -39.3, -4.6), datetime="2025-07")
        assert [i.id for i in found] == [doc["id"]]


# ------------------------------------------------------------------------ raw HTTP


def test_landing_conformance_and_collections(server: StacServer) -> None:
    status, land, ctype = get(server.url + "/")
    assert (status, ctype, land["type"], land["stac_version"]) == (
        200,
        "application/json",
        "Catalog",
        "1.0.0",
    )
    rels = [(link["rel"], link.get("method")) for link in land["links"]]
    for rel in [("self", None), ("root", None), ("conformance", None), ("data", None)]:
        assert rel in rels
    searches = [link for link in land["links"] if link["rel"] == "search"]
    assert {link["method"] for link in searches} == {"GET", "POST"}
    assert {link["type"] for link in searches} == {"application/geo+json"}
    assert "https://api.stacspec.org/v1.0.0/item-search#query" in land["conformsTo"]
    assert get(server.url + "/conformance")[1]["conformsTo"] == land["conformsTo"]

    cols = {c["id"]: c for c in get(server.url + "/collections")[1]["collections"]}
    assert sorted(cols) == [C1, S2]
    assert cols[S2]["extent"]["spatial"]["bbox"] == [[0, 0, 3, 3]]
    assert cols[S2]["extent"]["temporal"]["interval"] == [
        ["2021-01-05T10:00:00Z", "2021-03-01T10:00:00Z"]
    ]
    assert get(f"{server.url}/collections/{C1}")[1]["extent"]["spatial"]["bbox"] == [[0, 0, 3, 3]]
    client = pystac_client.Client.open(server.url)
    assert sorted(c.id for c in client.get_collections()) == [C1, S2]


def test_collection_items_are_paged(server: StacServer) -> None:
    status, page, ctype = get(f"{server.url}/collections/{S2}/items?limit=2")
    assert (status, ctype) == (200, "application/geo+json")
    seen = [f["id"] for f in page["features"]]
    while nxt := [link for link in page["links"] if link["rel"] == "next"]:
        page = get(nxt[0]["href"])[1]
        seen += [f["id"] for f in page["features"]]
    assert seen == ["a", "b", "c", "d", "e"]


def test_paging_links_follow_earth_search(server: StacServer) -> None:
    qs = urlencode({"collections": S2, "limit": 2, "bbox": "0,0,1,1"})
    status, page, _ = get(f"{server.url}/search?{qs}")
    assert status == 200
    assert page["context"] == {"returned": 2, "limit": 2, "matched": 4}  # a, b, d, e
    assert (page["numberMatched"], page["numberReturned"]) == (4, 2)
    (nxt,) = [link for link in page["links"] if link["rel"] == "next"]
    split = urlsplit(nxt["href"])
    assert split.path == "/search"
    assert split.query.startswith(qs + "&next=")
    _, last, _ = get(nxt["href"])  # matches are a multiple of the limit: no 3rd page
    assert [f["id"] for f in last["features"]] == ["d", "e"]
    assert not [link for link in last["links"] if link["rel"] == "next"]

    body = {"collections": [S2], "limit": 3}
    status, page = post(f"{server.url}/search", body)
    assert [f["id"] for f in page["features"]] == ["a", "b", "c"]
    (nxt,) = [link for link in page["links"] if link["rel"] == "next"]
    assert nxt["method"] == "POST" and nxt["merge"] is False
    assert nxt["href"] == f"{server.url}/search"
    assert nxt["type"] == "application/geo+json"
    assert {k: v for k, v in nxt["body"].items() if k != "next"} == body
    status, last = post(nxt["href"], nxt["body"])
    assert [f["id"] for f in last["features"]] == ["d", "e"]
    assert not [link for link in last["links"] if link["rel"] == "next"]
    # no limit: the server's page_size (3); a limit above the maximum is lowered
    assert post(f"{server.url}/search", {})[1]["context"]["limit"] == 3
    assert post(f"{server.url}/search", {"limit": 5000})[1]["context"]["limit"] == MAX_LIMIT


def test_date_only_instant_covers_the_day(server: StacServer) -> None:
    _, page, _ = get(f"{server.url}/search?datetime=2021-01-15")
    assert [f["id"] for f in page["features"]] == ["c"]
    _, page, _ = get(f"{server.url}/search?datetime=2021-01-15T10:00:00Z")
    assert [f["id"] for f in page["features"]] == ["c"]
    _, page, _ = get(f"{server.url}/search?datetime=2021-01-15T10:00:01Z")
    assert page["features"] == []


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("bbox=0,0,1", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=0,1,1,0", "bbox"),
        ("bbox=0,0,1,100", "bbox"),
        ("datetime=yesterday", "datetime"),
        ("datetime=2021-02-01/2021-01-01", "ends before it starts"),
        ("datetime=../..", "datetime"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("query=%7Bnot-json", "query must be JSON"),
        (urlencode({"query": json.dumps({"eo:cloud_cover": {"like": 5}})}), "unknown operator"),
        ("next=!!!", "next token"),
        ("filter=x", "not supported"),
        ("colections=x", "unknown search parameter"),
    ],
)
def test_bad_get_search_is_400(server: StacServer, query: str, match: str) -> None:
    status, err, ctype = get(f"{server.url}/search?{query}")
    assert (status, ctype, err["code"]) == (400, "application/json", "BadRequest")
    assert match in err["description"]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ({"bbox": [0, 0, 1]}, "bbox"),
        ({"bbox": "0,0,1,1"}, "bbox"),
        ({"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}}, "either"),
        ({"intersects": {"type": "Circle"}}, "intersects"),
        ({"datetime": "2021-13-45"}, "datetime"),
        ({"query": {"eo:cloud_cover": {"like": 5}}}, "unknown operator"),
        ({"query": {"eo:cloud_cover": 5}}, "query"),
        ({"sortby": [{"field": "id", "direction": "up"}]}, "sortby"),
        ({"ids": [1, 2]}, "ids"),
    ],
)
def test_bad_post_search_is_400(server: StacServer, body: Any, match: str) -> None:
    status, err = post(f"{server.url}/search", body)
    assert (status, err["code"]) == (400, "BadRequest")
    assert match in err["description"]


@pytest.mark.parametrize(
    "path",
    [f"/collections/{S2}/items/nope", f"/collections/{C1}/items/a", "/collections/nope", "/nope"],
)
def test_unknown_path_or_item_is_404(server: StacServer, path: str) -> None:
    status, err, ctype = get(server.url + path)
    assert (status, ctype, err["code"]) == (404, "application/json", "NotFound")


def test_requests_are_not_logged(server: StacServer, capsys: pytest.CaptureFixture[str]) -> None:
    get(server.url + "/")
    get(server.url + "/nope")
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------- setup and close


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ParamsError, match="loopback"):
        serve_items(items(), host=host)


NO_FOOTPRINT = {**make_item("a", S2, "2021-01-01T00:00:00Z", (0, 0, 1, 1), 1), "geometry": None}
NO_FOOTPRINT["bbox"] = None
NO_TIME = {**make_item("a", S2, "2021-01-01T00:00:00Z", (0, 0, 1, 1), 1), "properties": {}}


@pytest.mark.parametrize(
    ("source", "kw", "error", "match"),
    [
        ([{"type": "Feature", "properties": {}}], {}, VitsegError, "not a STAC item"),
        ([NO_FOOTPRINT], {}, VitsegError, "neither a geometry"),
        ([NO_TIME], {}, VitsegError, "datetime"),
        (items() + items()[:1], {}, VitsegError, "appears twice"),
        ("https://earth-search.aws.element84.com/v1", {}, VitsegError, "local files only"),
        ("no/such/items.json", {}, MissingFileError, "does not exist"),
        (items(), {"page_size": 0}, ParamsError, "page_size"),
        (items(), {"port": 70000}, ParamsError, "port"),
    ],
)
def test_bad_setup_is_refused(source: Any, kw: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        serve_items(source, **kw)


def test_localhost_binds_ipv4_loopback() -> None:
    with serve_items(items()[:1], host="localhost") as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        assert get(srv.url + "/conformance")[0] == 200


def test_server_stops_on_context_exit() -> None:
    with serve_items(items()) as srv:
        port = urlsplit(srv.url).port
        assert port is not None
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    srv.close()  # idempotent
    assert "closed" in repr(srv)
