"""Tests for vitseg.downloads, run against a local HTTP server (no network)."""

import hashlib
import http.server
import threading
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from vitseg.datasets import SMALLMINESDS_BANDS, PatchDataset, load_smallminesds
from vitseg.downloads import (
    _safe_extract,
    cache_dir,
    download_file,
    fetch_mining_polygons,
    fetch_smallminesds,
)
from vitseg.errors import DownloadError, LabelError, ParamsError, VectorError


def write_tif(path, arr, *, crs="EPSG:32630"):
    arr = np.asarray(arr)
    arr = arr[None] if arr.ndim == 2 else arr
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path, "w", driver="GTiff", height=arr.shape[1], width=arr.shape[2], count=arr.shape[0],
        dtype=arr.dtype, crs=crs, transform=from_origin(600000, 700000, 10, 10),
    ) as dst:  # fmt: skip
        dst.write(arr)
    return path


class _Server:
    """A local HTTP server with fixed routes, counting the requests it gets."""

    def __init__(self):
        self.routes = {}
        self.hits = {}
        self.fail_first = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                if server.fail_first.get(path, 0) >= server.hits[path]:
                    self.send_error(503)
                    return
                if path not in server.routes:
                    self.send_error(404)
                    return
                body, declared = server.routes[path]
                self.send_response(200)
                self.send_header("Content-Length", str(declared))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path, body, *, declared=None):
        self.routes[path] = (body, len(body) if declared is None else declared)
        return self.url + path


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_download_checksum_cache_and_retry(server, tmp_path):
    body = b"vitseg" * 1000
    url = server.add("/f.bin", body)
    dest = tmp_path / "cache" / "f.bin"
    assert download_file(url, dest, sha256=sha(body), backoff_s=0) == dest
    assert dest.read_bytes() == body
    download_file(url, dest, sha256=sha(body), backoff_s=0)  # cached: no second request
    assert server.hits["/f.bin"] == 1
    # Without a checksum the digest is recorded beside the file, to pin it later.
    download_file(server.add("/g.bin", body), tmp_path / "g.bin", backoff_s=0)
    assert (tmp_path / "g.bin.sha256").read_text().strip() == sha(body)
    # A transient 503 is retried.
    server.fail_first["/flaky.bin"] = 2
    download_file(server.add("/flaky.bin", body), tmp_path / "flaky.bin", retries=3, backoff_s=0)
    assert server.hits["/flaky.bin"] == 3


def test_download_checksum_mismatch_leaves_nothing(server, tmp_path):
    url = server.add("/f.bin", b"not the expected file")
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=r"checksum mismatch.*expected sha256 0000"):
        download_file(url, dest, sha256="0" * 64, backoff_s=0)
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    assert server.hits["/f.bin"] == 1  # a wrong checksum is not retried


def test_download_truncated_is_retried_then_fails(server, tmp_path):
    body = b"x" * 5000
    url = server.add("/cut.bin", body[:3000], declared=len(body))
    dest = tmp_path / "cut.bin"
    with pytest.raises(DownloadError, match="failed after 2 attempt"):
        download_file(url, dest, sha256=sha(body), retries=2, backoff_s=0)
    assert server.hits["/cut.bin"] == 2
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError, match="404"):
        download_file(server.url + "/missing", dest, retries=1)


def smallmines_zip(tmp_path, year=2016, n=2):
    """A SmallMinesDS stand-in: <year>/IMAGE/IMG_XXXX_<year>.tif (13 bands, 128 px) + MASK."""
    src = tmp_path / "standin"
    rng = np.random.default_rng(0)
    for k in range(1, n + 1):
        img = rng.random((13, 128, 128), dtype="float32")
        mask = (rng.random((128, 128)) > 0.8).astype("uint8")
        write_tif(src / str(year) / "IMAGE" / f"IMG_{k:04d}_{year}.tif", img, crs="EPSG:32630")
        write_tif(src / str(year) / "MASK" / f"MASK_{k:04d}_{year}.tif", mask, crs="EPSG:32630")
    archive = tmp_path / f"{year}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(src.rglob("*.tif")):
            zf.write(p, p.relative_to(src))
    return archive.read_bytes()


def test_fetch_and_load_smallminesds_standin(server, tmp_path):
    data = smallmines_zip(tmp_path)
    server.add("/ds/2016.zip", data)
    root = fetch_smallminesds(
        tmp_path / "cache", years=[2016], base_url=server.url + "/ds",
        files={2016: ("2016.zip", sha(data))}, backoff_s=0,
    )  # fmt: skip
    folder = load_smallminesds(root, year=2016)
    assert len(folder) == 2 and folder.bands == SMALLMINESDS_BANDS
    assert folder.mask_paths[0].name == "MASK_0001_2016.tif"
    x, y = folder.read(1)
    assert x.shape == (13, 128, 128) and set(np.unique(y)) <= {0, 1}
    ds = PatchDataset(folder, patch_px=256, samples_per_epoch=2)  # padded 128 -> 256
    assert ds[0][0].shape == (13, 256, 256)
    fetch_smallminesds(
        tmp_path / "cache", years=[2016], base_url=server.url + "/ds",
        files={2016: ("2016.zip", sha(data))},
    )  # fmt: skip
    assert server.hits["/ds/2016.zip"] == 1  # cached
    with pytest.raises(LabelError, match="no SmallMinesDS IMAGE folder for 2022"):
        load_smallminesds(tmp_path / "cache", year=2022)


def polygons_gpkg(path):
    gdf = gpd.GeoDataFrame(
        {"ISO3_CODE": ["GHA", "GHA", "PER"], "AREA": [0.1, 0.2, 0.3]},
        geometry=[
            shapely.box(-1.80, 6.15, -1.79, 6.16),
            shapely.box(-0.60, 6.20, -0.59, 6.21),
            shapely.box(-70.4, -12.6, -70.3, -12.5),
        ],
        crs="EPSG:4326",
    )
    gdf.to_file(path, driver="GPKG")
    return path


def test_fetch_mining_polygons_standins(server, tmp_path):
    gpkg = polygons_gpkg(tmp_path / "global_mining_polygons_v2.gpkg").read_bytes()
    url = server.add("/pangaea/global_mining_polygons_v2.gpkg", gpkg)
    ghana = (-3.3, 4.7, 1.2, 11.2)
    gdf = fetch_mining_polygons(
        "maus2022", bbox=ghana, root=tmp_path / "cache", url=url, sha256=sha(gpkg)
    )
    assert len(gdf) == 2 and set(gdf["class"]) == {"mines"} and gdf.crs.to_epsg() == 4326
    # Tang & Werner: a zip archive holding the vector layer.
    archive = tmp_path / "tw.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(tmp_path / "global_mining_polygons_v2.gpkg", "data/tang_werner.gpkg")
    zurl = server.add("/zenodo/tw.zip", archive.read_bytes())
    tw = fetch_mining_polygons("tang2023", root=tmp_path / "cache", url=zurl)
    assert len(tw) == 3 and set(tw["source"]) == {"tang2023"}
    with pytest.raises(VectorError, match="no maus2022 polygons in bbox"):
        fetch_mining_polygons("maus2022", bbox=(10, 50, 11, 51), root=tmp_path / "cache", url=url)


def test_zip_with_escaping_path_is_refused(server, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.txt", "x")
    data = archive.read_bytes()
    server.add("/ds/2016.zip", data)
    with pytest.raises(DownloadError, match="unsafe path"):
        fetch_smallminesds(
            tmp_path / "cache", years=[2016], base_url=server.url + "/ds",
            files={2016: ("2016.zip", sha(data))},
        )  # fmt: skip
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "cache" / "extracted" / "2016").exists()


# ------------------------------------------------------------------ pooch-era additions


def test_pooch_style_checksum_stale_cache_and_progressbar(server, tmp_path, capsys):
    body = b"0123456789" * 300
    url = server.add("/p.bin", body)
    dest = tmp_path / "p.bin"
    # pooch's "sha256:<hex>" notation is accepted, upper-case hex too
    download_file(url, dest, sha256="sha256:" + sha(body).upper(), backoff_s=0, progressbar=True)
    assert dest.read_bytes() == body and server.hits["/p.bin"] == 1
    assert "3.00k" in capsys.readouterr().err  # tqdm's bar: 3000 bytes
    # a cached file that does not match the pinned checksum is downloaded again
    dest.write_bytes(b"stale")
    download_file(url, dest, sha256=sha(body), backoff_s=0)
    assert dest.read_bytes() == body and server.hits["/p.bin"] == 2
    # small chunks stream the same bytes
    download_file(url, tmp_path / "q.bin", sha256=sha(body), chunk_bytes=7, backoff_s=0)
    assert (tmp_path / "q.bin").read_bytes() == body


def test_backoff_doubles_between_attempts(server, tmp_path, monkeypatch):
    import vitseg.downloads

    waits = []
    monkeypatch.setattr(vitseg.downloads.time, "sleep", waits.append)
    server.fail_first["/slow.bin"] = 3
    download_file(server.add("/slow.bin", b"ok"), tmp_path / "s.bin", retries=4, backoff_s=0.5)
    assert waits == [0.5, 1.0, 2.0] and server.hits["/slow.bin"] == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"retries": 0}, "'retries' must be >= 1; got 0"),
        ({"backoff_s": -1.0}, "backoff_s >= 0"),
        ({"chunk_bytes": 0}, "chunk_bytes >= 1"),
        ({"timeout_s": float("nan")}, "timeout_s must be > 0"),
    ],
)
def test_download_options_are_checked(tmp_path, kwargs, match):
    with pytest.raises(ParamsError, match=match):
        download_file("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", **kwargs)


def test_unknown_year_is_refused_before_any_download(server, tmp_path):
    with pytest.raises(ParamsError, match=r"no year 2019; known: \[2016\]"):
        fetch_smallminesds(
            tmp_path, years=[2016, 2019], base_url=server.url, files={2016: ("2016.zip", None)}
        )
    assert server.hits == {} and not tmp_path.joinpath("archives").exists()


def test_unknown_source_and_bad_zip(tmp_path):
    with pytest.raises(ParamsError, match=r"'source' must be one of \['maus2022', 'tang2023'\]"):
        fetch_mining_polygons("usgs", root=tmp_path)  # type: ignore[arg-type]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="is not a valid zip"):
        _safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VITSEG_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VITSEG_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "vitseg")
