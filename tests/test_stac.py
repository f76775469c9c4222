"""Tests for vitseg.stac: local catalogs, ItemCollections, replayed Earth Search, retries."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pystac
import pytest
import yaml

from vitseg.errors import EmptySearchError, MissingAssetError, NetworkError, VitsegError
from vitseg.stac import asset_band_map, freeze_items, item_ids, load_items, search_items

ES = Path(__file__).parent / "data" / "stac_earthsearch"
ES_URL = "https://earth-search.aws.element84.com/v1"
L2A_24MVV = "item_sentinel-2-l2a_S2B_24MVV_20250731_0_L2A.json"
C1_24MVV = "item_sentinel-2-c1-l2a_S2B_T24MVV_20250731T130245_L2A.json"
L2A_13TDE = "item_sentinel-2-l2a_S2A_13TDE_20231008_0_L2A.json"
V0_28QCH = "odcstac_v0_item_S2A_28QCH_20200714_0_L2A.json"
BBOX_24MVV = (-39.5, -4.8, -39.3, -4.6)
GHANA_BBOX = (-1.82, 6.14, -1.69, 6.27)


def doc(name: str) -> dict[str, Any]:
    return json.loads((ES / name).read_text())


def unlinked(name: str) -> dict[str, Any]:
    """A real item document without its links (they point at the live API)."""
    return {**doc(name), "links": []}


# ---------------------------------------------------------------- local sources


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    cat = pystac.Catalog("local", "real Earth Search item documents")
    for name in (L2A_24MVV, L2A_13TDE, V0_28QCH):
        cat.add_item(pystac.Item.from_dict(unlinked(name)))
    cat.normalize_hrefs(str(tmp_path / "cat"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return tmp_path / "cat" / "catalog.json"


def test_search_static_catalog_filters_bbox_time_collection(catalog: Path) -> None:
    found = search_items(catalog, bbox=BBOX_24MVV, datetime="2025-07", max_cloud_pct=40)
    assert item_ids(found) == ["S2B_24MVV_20250731_0_L2A"]
    # the folder works as well as catalog.json; an interval with an open end too
    found = search_items(catalog.parent, bbox=(-106, 39, -104, 41), datetime="2023-01-01/..")
    assert item_ids(found) == ["S2A_13TDE_20231008_0_L2A"]
    # the v0 item is in collection sentinel-s2-l2a-cogs, so not in sentinel-2-l2a ...
    with pytest.raises(EmptySearchError, match="collection"):
        search_items(catalog, bbox=(-17, 19, -15.5, 21), datetime=None)
    # ... unless asked for
    found = search_items(
        catalog, bbox=(-17, 19, -15.5, 21), datetime=None, collection="sentinel-s2-l2a-cogs"
    )
    assert item_ids(found) == ["S2A_28QCH_20200714_0_L2A"]


def test_cloud_filter_and_empty_search_names_query(catalog: Path) -> None:
    with pytest.raises(EmptySearchError, match=r"max_cloud_pct=10.*'cloud': 1"):
        search_items(catalog, bbox=BBOX_24MVV, datetime="2025-07-31", max_cloud_pct=10)


def test_aoi_outside_catalog(catalog: Path) -> None:
    with pytest.raises(EmptySearchError, match="AOI lies outside the catalog"):
        search_items(catalog, bbox=GHANA_BBOX, datetime="2020-11-01/2021-03-31")


def test_freeze_load_roundtrip_and_search_item_collection(tmp_path: Path, catalog: Path) -> None:
    found = search_items(catalog, bbox=(-180, -80, 180, 80), datetime=None, collection=None)  # type: ignore[arg-type]
    out = freeze_items(found, tmp_path / "run" / "data" / "items.json")
    assert out == tmp_path / "run" / "data" / "items.json"
    assert [p.name for p in out.parent.iterdir()] == ["items.json"]  # no temp file left
    assert json.loads(out.read_text())["type"] == "FeatureCollection"
    back = load_items(out)
    assert item_ids(back) == item_ids(found) == [
        "S2A_28QCH_20200714_0_L2A", "S2A_13TDE_20231008_0_L2A", "S2B_24MVV_20250731_0_L2A",
    ]  # fmt: skip
    again = search_items(out, bbox=BBOX_24MVV, datetime=("2025-07-01", "2025-08-01"))
    assert item_ids(again) == ["S2B_24MVV_20250731_0_L2A"]


def test_relative_asset_hrefs_become_absolute(tmp_path: Path) -> None:
    d = doc(L2A_24MVV)
    d["assets"] = {"red": {"href": "cogs/B04.tif", "eo:bands": [{"name": "B04"}]}}
    (tmp_path / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": [d]}))
    found = search_items(tmp_path / "items.json", bbox=BBOX_24MVV, datetime=None)
    assert found.items[0].assets["red"].href == str(tmp_path / "cogs" / "B04.tif")


def test_items_missing_assets_are_dropped_with_warning(tmp_path: Path) -> None:
    full, partial = doc(L2A_24MVV), doc(C1_24MVV)
    partial["collection"] = full["collection"]
    del partial["assets"]["scl"]
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [full, partial]}))
    with pytest.warns(UserWarning, match="dropped 1 items lacking assets"):
        found = search_items(path, bbox=BBOX_24MVV, datetime=None, bands=("B04", "SCL"))
    assert item_ids(found) == [full["id"]]
    with pytest.raises(MissingAssetError, match="has assets for all bands"):
        search_items(path, bbox=BBOX_24MVV, datetime=None, bands=("B04", "B10"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bbox": (600000, 700000, 610000, 710000)}, "lon/lat degrees"),
        ({"bbox": (1, 1, 0, 0)}, "min < max"),
        ({"datetime": "last tuesday"}, "cannot parse datetime"),
        ({"datetime": "2020/2021/2022"}, "start/end"),
    ],
)
def test_bad_queries(catalog: Path, kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"bbox": BBOX_24MVV, "datetime": None, **kwargs}
    with pytest.raises(VitsegError, match=match):
        search_items(catalog, **args)


def test_missing_or_bad_source(tmp_path: Path) -> None:
    with pytest.raises(VitsegError, match="does not exist"):
        search_items(tmp_path / "nope.json", bbox=BBOX_24MVV, datetime=None)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(VitsegError, match="cannot read STAC source"):
        search_items(tmp_path / "bad.json", bbox=BBOX_24MVV, datetime=None)
    with pytest.raises(VitsegError, match="run notebook 02_build_cube"):
        load_items(tmp_path / "items.json")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (L2A_13TDE, {"B04": "red", "B8A": "nir08", "B05": "rededge1", "SCL": "scl"}),
        (C1_24MVV, {"B04": "red", "B8A": "nir08", "B05": "rededge1", "SCL": "scl"}),
        (L2A_24MVV, {"B04": "red", "B11": "swir16", "B01": "coastal", "SCL": "scl"}),
        (V0_28QCH, {"B04": "B04", "B8A": "B8A", "SCL": "SCL"}),
    ],
)
def test_asset_band_map_on_real_items(name: str, expected: dict[str, str]) -> None:
    mapping = asset_band_map(doc(name))
    assert {k: mapping[k] for k in expected} == expected
    assert not any(v.endswith("-jp2") for v in mapping.values())  # COG wins over JP2 twin


# ------------------------------------------------------ replayed Earth Search API


def _cassette() -> list[dict[str, Any]]:
    raw = yaml.safe_load((ES / "earthsearch_search_cassette.yaml").read_text())
    return list(raw["interactions"])


class _Replay(BaseHTTPRequestHandler):
    """Serve the recorded Earth Search landing page and two search pages.

    URLs in the bodies are rewritten to this server; the recorded next link of page 1
    leads to page 2; page 2's next link (a page that was never recorded) is dropped.
    Behaviour for failure tests comes from ``server.plan``: a list consumed per
    landing-page request, each an HTTP status, "timeout" or "ok"; ``server.post_plan``
    likewise per search-page request (an HTTP status or "ok").
    """

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self, index: int) -> str:
        srv: Any = self.server
        text = srv.interactions[index]["response"]["body"]["string"]
        return str(text).replace(ES_URL, srv.base)

    def do_GET(self) -> None:
        srv: Any = self.server
        srv.log.append(("GET", self.path, None))
        action = srv.plan.pop(0) if srv.plan else "ok"
        srv.landing_calls += 1
        if action == "timeout":
            time.sleep(1.0)
            return self._send(200, self._body(0))
        if action != "ok":
            return self._send(int(action), '{"message": "Forbidden"}')
        if self.path.rstrip("/") == "/v1":
            return self._send(200, self._body(0))
        return self._send(404, '{"message": "not found"}')

    def do_POST(self) -> None:
        srv: Any = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        srv.log.append(("POST", self.path, body))
        action = srv.post_plan.pop(0) if srv.post_plan else "ok"
        if action != "ok":
            return self._send(int(action), '{"message": "Forbidden"}')
        if self.path != "/v1/search":
            return self._send(404, '{"message": "not found"}')
        if "next" not in body:
            return self._send(200, self._body(1))
        page = json.loads(self._body(2))
        page["links"] = [lk for lk in page["links"] if lk["rel"] != "next"]
        return self._send(200, json.dumps(page))


@pytest.fixture
def server() -> Iterator[Any]:
    srv: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    srv.daemon_threads = True
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.interactions = _cassette()
    srv.plan, srv.post_plan, srv.log, srv.landing_calls = [], [], [], 0
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_replayed_earth_search_with_pagination(server: Any) -> None:
    found = search_items(
        server.base,
        bbox=(-40.5, -5.3, -37.5, -3.5),
        datetime="2025-07-31",
        max_cloud_pct=40,
        backoff_s=0.01,
    )
    # l2a items of both recorded pages; 24MUV (56.8 %) and 24MUA (41.5 %) are too cloudy,
    # 20EPT is outside the bbox; c1-l2a / l1c / sentinel-1 are other collections
    assert sorted(item_ids(found)) == [
        "S2B_24MVV_20250731_0_L2A", "S2B_24MWV_20250731_0_L2A", "S2B_24MXV_20250731_0_L2A",
    ]  # fmt: skip
    posts = [entry for entry in server.log if entry[0] == "POST"]
    assert len(posts) == 2  # followed the recorded next link to page 2
    first = posts[0][2]
    assert first["collections"] == ["sentinel-2-l2a"]
    assert first["bbox"] == [-40.5, -5.3, -37.5, -3.5]
    assert first["query"] == {"eo:cloud_cover": {"lte": 40}}
    assert posts[1][2]["next"].startswith("2025-07-31T13:03:25.899000Z")
    assert all(i.properties["proj:epsg"] == 32724 for i in found)
    assert {entry[1] for entry in server.log} == {"/v1", "/v1/search"}


def test_retries_throttling_then_succeeds(server: Any) -> None:
    server.plan = ["403", "429", "503"]
    start = time.perf_counter()
    found = search_items(
        server.base, bbox=BBOX_24MVV, datetime="2025-07-31", backoff_s=0.01, retries=3
    )
    assert item_ids(found) == ["S2B_24MVV_20250731_0_L2A"]
    assert server.landing_calls == 4
    assert time.perf_counter() - start >= 0.01 + 0.02 + 0.04  # exponential backoff


@pytest.mark.parametrize(("plan", "match"), [(["500"] * 9, "HTTP 500"), (["403"] * 9, "HTTP 403")])
def test_persistent_errors_raise_network_error(server: Any, plan: list[str], match: str) -> None:
    server.plan = plan
    with pytest.raises(NetworkError, match=rf"failed 3 times .*{match}"):
        search_items(server.base, bbox=BBOX_24MVV, datetime=None, retries=2, backoff_s=0.001)
    assert server.landing_calls == 3


def test_timeouts_are_retried_then_network_error(server: Any) -> None:
    server.plan = ["timeout"] * 3
    with pytest.raises(NetworkError, match="failed 2 times"):
        search_items(
            server.base, bbox=BBOX_24MVV, datetime=None, retries=1, backoff_s=0.001, timeout_s=0.2
        )
    assert server.landing_calls == 2


def test_client_errors_are_not_retried(server: Any) -> None:
    server.plan = ["400"]
    with pytest.raises(NetworkError, match=r"HTTP 400.*not retried"):
        search_items(server.base, bbox=BBOX_24MVV, datetime=None, retries=3, backoff_s=0.001)
    assert server.landing_calls == 1


def test_connection_refused_is_network_error() -> None:
    import socket

    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError, match="failed 2 times"):
        search_items(
            f"http://127.0.0.1:{port}/v1", bbox=BBOX_24MVV, datetime=None, retries=1,
            backoff_s=0.001, timeout_s=1,
        )  # fmt: skip


def test_frozen_replayed_items_keep_real_structure(server: Any, tmp_path: Path) -> None:
    found = search_items(server.base, bbox=BBOX_24MVV, datetime="2025-07-31", backoff_s=0.01)
    path = freeze_items(found, tmp_path / "items.json")
    item = load_items(path).items[0]
    assert item.properties["s2:processing_baseline"] == "05.11"
    assert item.assets["red"].href.startswith("https://sentinel-cogs.s3.us-west-2.amazonaws.com")
    assert copy.deepcopy(item.to_dict())["id"] == "S2B_24MVV_20250731_0_L2A"


def test_a_throttled_page_is_retried_alone(server: Any) -> None:
    """Page 2 throttled twice: only that request is repeated, not the whole search."""
    server.post_plan = ["ok", "403", "503"]
    found = search_items(
        server.base, bbox=(-40.5, -5.3, -37.5, -3.5), datetime="2025-07-31",
        max_cloud_pct=40, backoff_s=0.001, retries=2,
    )  # fmt: skip
    assert len(found) == 3
    assert server.landing_calls == 1
    posts = [entry[2] for entry in server.log if entry[0] == "POST"]
    assert len(posts) == 4  # page 1 once, page 2 three times
    assert "next" not in posts[0] and all("next" in p for p in posts[1:])
    assert posts[1] == posts[2] == posts[3]


def test_a_page_that_stays_throttled_raises_network_error(server: Any) -> None:
    server.post_plan = ["ok", "429", "429", "429"]
    with pytest.raises(NetworkError, match=r"failed 3 times \(last error: HTTP 429"):
        search_items(
            server.base, bbox=(-40.5, -5.3, -37.5, -3.5), datetime="2025-07-31",
            backoff_s=0.001, retries=2,
        )  # fmt: skip
    assert server.landing_calls == 1


def test_backoff_first_wait_is_backoff_s_then_doubles() -> None:
    from vitseg.stac import _retrying_io

    io = _retrying_io(timeout_s=1.0, retries=5, backoff_s=0.5)
    retry = io.session.get_adapter("https://x").max_retries
    waits = []
    for _ in range(3):
        retry = retry.increment(method="POST", url="/search", error=ConnectionError("x"))
        waits.append(retry.get_backoff_time())
    assert waits == [0.5, 1.0, 2.0]
    assert retry.allowed_methods is None and 403 in retry.status_forcelist


def test_proj_code_shim_is_shared_with_cube() -> None:
    import vitseg.cube
    import vitseg.stac

    assert vitseg.cube._epsg_from_code is vitseg.stac._epsg_from_code
    fields: dict[str, Any] = {"proj:code": "EPSG:32724"}
    vitseg.stac._epsg_from_code(fields)
    assert fields == {"proj:code": "EPSG:32724", "proj:epsg": 32724}
    for kept in ({"proj:code": "IAU_2015:30100"}, {"proj:code": "EPSG:1", "proj:epsg": 2}, {}):
        before = dict(kept)
        vitseg.stac._epsg_from_code(kept)
        assert kept == before
    plain = vitseg.cube._plain_item(
        {"properties": {"proj:code": "EPSG:32630"}, "assets": {"red": {"proj:code": "EPSG:32631"}}}
    )
    assert plain["properties"]["proj:epsg"] == 32630
    assert plain["assets"]["red"]["proj:epsg"] == 32631
