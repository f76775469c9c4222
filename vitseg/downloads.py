"""Downloads of public data sets: cached, checksummed, retried, unpacked safely.

- :func:`download_file`: one URL to one file. The transfer is pooch's
  :class:`pooch.HTTPDownloader` (streamed, an optional tqdm progress bar, a body
  shorter than its ``Content-Length`` is an error) and the digest pooch's
  :func:`pooch.file_hash`. Around them, vitseg keeps what pooch's own
  ``retrieve``/``fetch`` do differently: a checksum mismatch is *not* retried (the
  server's file is not the expected one), waits between attempts are configurable,
  nothing half-written ever appears at the final path, and a download without a
  pinned checksum records its digest in ``<dest>.sha256``.
- :func:`fetch_smallminesds`, :func:`fetch_mining_polygons`: SmallMinesDS and the
  global mining-polygon layers, downloaded once into :func:`cache_dir`. Archives are
  unpacked atomically by :func:`_safe_extract`, which *refuses* a member whose path
  escapes the target folder (pooch's ``Unzip`` would unpack in place and silently
  rewrite such names).

URLs and checksums are module constants to verify when online; the tests run this
code against a local HTTP server.
"""

from __future__ import annotations

import math
import os
import re
import time
import zipfile
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

from vitseg.errors import DownloadError, ParamsError, VectorError
from vitseg.io import atomic_path, atomic_write_text

__all__ = [
    "MINING_POLYGONS",
    "SMALLMINESDS_FILES",
    "SMALLMINESDS_URL",
    "cache_dir",
    "download_file",
    "fetch_mining_polygons",
    "fetch_smallminesds",
]


def cache_dir() -> Path:
    """Return the download cache: ``$VITSEG_CACHE`` or ``~/.cache/vitseg``.

    Returns
    -------
    pathlib.Path
        The folder (not created here).

    Examples
    --------
    >>> cache_dir().is_absolute() or "VITSEG_CACHE" in __import__("os").environ
    True
    """
    return Path(os.environ.get("VITSEG_CACHE", Path.home() / ".cache" / "vitseg"))


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    retries: int = 3,
    timeout_s: float = 60.0,
    backoff_s: float = 2.0,
    chunk_bytes: int = 1 << 20,
    progressbar: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` (streamed, checksummed, atomic, cached).

    If ``dest`` already exists and matches ``sha256`` (or no checksum is given) it is
    returned without network access. The body is streamed by pooch's HTTP downloader to
    a temporary file beside ``dest``; an HTTP error, a connection error or a body
    shorter than its ``Content-Length`` is retried up to ``retries`` attempts in all with
    exponential backoff; only a complete file with the expected SHA-256 is renamed to
    ``dest``.

    Parameters
    ----------
    url
        HTTP(S) URL.
    dest
        Final path (a file, not a folder).
    sha256
        Expected hex digest (``"sha256:"`` prefix, pooch's notation, allowed); None skips
        the check (the digest is then written to ``<dest>.sha256`` so a later run can
        pin it).
    retries
        Attempts in all (>= 1).
    timeout_s
        Connect/read timeout per attempt.
    backoff_s
        First wait between attempts (doubled each time).
    chunk_bytes
        Stream chunk size.
    progressbar
        Show a tqdm progress bar on stderr.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        Every attempt failed (HTTP error, truncated body, connection error), or the
        checksum differs (not retried: the file on the server is not the expected one).
    ParamsError
        ``url`` is not an http(s) URL, ``dest`` is a folder or lies under a file,
        ``sha256`` is not 64 hexadecimal digits, or an option is out of range or of the
        wrong type (``retries`` and ``chunk_bytes`` are whole numbers, ``timeout_s`` and
        ``backoff_s`` finite).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> dest = pathlib.Path(tempfile.mkdtemp()) / "f.bin"
    >>> _ = dest.write_bytes(b"abc")  # already there: no network access
    >>> download_file("https://example.org/f.bin", dest) == dest
    True
    """
    import pooch  # type: ignore[import-untyped]
    import requests

    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ParamsError(
            f"url must be an http:// or https:// URL; got {url!r}. Copy a local file by hand "
            "instead of downloading it."
        )
    final = Path(dest)
    if final.is_dir():
        raise ParamsError(
            f"dest {final} is a folder; download_file needs a file path, e.g. "
            f"{final / Path(url.split('?')[0]).name}"
        )
    blocked = next((q for q in final.parents if q.exists() and not q.is_dir()), None)
    if blocked is not None:
        raise ParamsError(
            f"dest {final} lies under {blocked}, which is a file, not a folder; choose another dest"
        )
    expected = None if sha256 is None else str(sha256).lower().removeprefix("sha256:")
    if expected is not None and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ParamsError(
            f"sha256 must be 64 hexadecimal digits (optionally 'sha256:'-prefixed); got "
            f"{sha256!r}. Pass None to record the digest of a first download instead."
        )
    if isinstance(retries, bool) or not isinstance(retries, Integral):
        raise ParamsError(f"'retries' must be a whole number >= 1; got {retries!r}")
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, Integral):
        raise ParamsError(f"chunk_bytes must be a whole number >= 1; got {chunk_bytes!r}")
    if retries < 1:
        raise ParamsError(f"'retries' must be >= 1; got {retries}")
    finite = all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)
        for v in (timeout_s, backoff_s)
    )
    if not (finite and timeout_s > 0 and backoff_s >= 0 and chunk_bytes >= 1):  # NaN fails too
        raise ParamsError(
            f"timeout_s must be > 0, backoff_s >= 0 (both finite seconds) and chunk_bytes >= 1; "
            f"got {timeout_s}, {backoff_s}, {chunk_bytes}"
        )
    if final.exists() and (expected is None or _sha256(final) == expected):
        return final
    fetch = pooch.HTTPDownloader(progressbar=progressbar, chunk_size=chunk_bytes, timeout=timeout_s)
    last: Exception | None = None
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            with atomic_path(final) as tmp:
                fetch(url, str(tmp), None)
                digest = str(pooch.file_hash(str(tmp), alg="sha256"))
                if expected is not None and digest != expected:
                    raise _Checksum(digest)
            if expected is None:
                atomic_write_text(final.parent / (final.name + ".sha256"), digest + "\n")
            return final
        except _Checksum as exc:
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {exc.args[0]}. "
                "The file on the server changed or is corrupt; verify the URL and update the "
                "checksum constant if the new file is the right one."
            ) from None
        except (requests.RequestException, OSError) as exc:
            last = exc
    raise DownloadError(
        f"download of {url} failed after {retries} attempt(s): {last}. Check the network "
        f"(or a proxy), or download it by hand to {final}."
    ) from last


class _Checksum(Exception):
    pass


def _sha256(path: Path) -> str:
    from vitseg.io import sha256_file

    return sha256_file(path)


def _safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a zip into ``dest`` (atomically), refusing paths that escape it.

    An existing ``dest`` is returned as it is (an earlier extraction completed).

    Examples
    --------
    >>> import pathlib, tempfile, zipfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(d / "a.zip", "w") as zf:
    ...     zf.writestr("sub/x.txt", "x")
    >>> sorted(p.name for p in _safe_extract(d / "a.zip", d / "out").rglob("*"))
    ['sub', 'x.txt']
    """
    if dest.exists():
        return dest
    try:
        with zipfile.ZipFile(archive) as zf, atomic_path(dest, suffix="") as tmp:
            tmp.mkdir()
            for name in zf.namelist():
                target = (tmp / name).resolve()
                if not target.is_relative_to(tmp.resolve()):
                    raise DownloadError(f"archive {archive} holds an unsafe path {name!r}")
            zf.extractall(tmp)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} is not a valid zip ({exc}); delete it and retry") from exc
    return dest


# SmallMinesDS (Ofori-Ampofo et al. 2025), Hugging Face dataset ``ellaampy/SmallMinesDS``,
# CC BY-SA 4.0. Layout per its dataset card: <year>/IMAGE/IMG_<id>_<year>.tif (13 bands,
# 128 x 128: S2 L2A B02 B03 B04 B05 B06 B07 B08 B8A B11 B12, S1 VV VH, DEM) and
# <year>/MASK/MASK_<id>_<year>.tif (1 band, 0 = not mine, 1 = mine); years 2016 and 2022.
# ASSUMPTION (verify when online): each year is published as one zip archive named below
# at the repository root; checksums are None until pinned from a real download (the
# computed digest is written beside the file).
SMALLMINESDS_URL = "https://huggingface.co/datasets/ellaampy/SmallMinesDS/resolve/main"
SMALLMINESDS_FILES: dict[int, tuple[str, str | None]] = {
    2016: ("2016.zip", None),
    2022: ("2022.zip", None),
}


def fetch_smallminesds(
    root: str | os.PathLike[str] | None = None,
    *,
    years: Sequence[int] = (2016, 2022),
    base_url: str = SMALLMINESDS_URL,
    files: Mapping[int, tuple[str, str | None]] = SMALLMINESDS_FILES,
    retries: int = 3,
    backoff_s: float = 2.0,
    progressbar: bool = False,
) -> Path:
    """Download and unpack SmallMinesDS into ``root`` (default ``cache_dir()/smallminesds``).

    Parameters
    ----------
    root
        Cache folder; archives go to ``root/archives``, their contents to
        ``root/extracted/<year>``.
    years
        Years to fetch (keys of ``files``).
    base_url, files
        Where the archives are and their ``(file name, sha256 or None)`` per year.
    retries, backoff_s, progressbar
        Passed to :func:`download_file`.

    Returns
    -------
    pathlib.Path
        ``root``; pass it to :func:`vitseg.datasets.load_smallminesds`.

    Raises
    ------
    DownloadError
        A failed or corrupt download, or an archive with an unsafe member path.
    ParamsError
        A year without an entry in ``files``, or ``years`` that is not a non-empty list
        of whole numbers (``2016``, not ``"2016"`` or ``2016.0``).

    Examples
    --------
    >>> fetch_smallminesds("/tmp/sm", years=[2019])
    Traceback (most recent call last):
    ...
    vitseg.errors.ParamsError: SmallMinesDS has no year 2019; known: [2016, 2022]
    """
    base = Path(root) if root is not None else cache_dir() / "smallminesds"
    if isinstance(years, (str, bytes)) or not isinstance(years, Sequence) or not years:
        raise ParamsError(f"years must be a non-empty list of years, e.g. [2016]; got {years!r}")
    bad = [y for y in years if isinstance(y, bool) or not isinstance(y, Integral)]
    if bad:
        raise ParamsError(
            f"years must be whole numbers such as 2016; got {bad!r} (a float or text would "
            "name the wrong folder)"
        )
    for year in years:
        if year not in files:
            raise ParamsError(f"SmallMinesDS has no year {year}; known: {sorted(files)}")
    for year in years:
        name, digest = files[year]
        archive = download_file(
            f"{base_url.rstrip('/')}/{name}", base / "archives" / name, sha256=digest,
            retries=retries, backoff_s=backoff_s, progressbar=progressbar,
        )  # fmt: skip
        _safe_extract(archive, base / "extracted" / str(year))
    return base


# Global mining polygons. Verify when online; checksums None until pinned.
# - maus2022: Maus et al. 2022, "An update on global mining land use", PANGAEA
#   doi:10.1594/PANGAEA.942325, GeoPackage global_mining_polygons_v2.gpkg (EPSG:4326).
# - tang2023: Tang & Werner 2023, "Global mining footprint mapped from high-resolution
#   satellite imagery", Communications Earth & Environment, doi:10.1038/s43247-023-00805-6;
#   data on Zenodo (ASSUMPTION: record 7894216, a zip with a GeoPackage/shapefile inside).
MINING_POLYGONS: dict[str, dict[str, str | None]] = {
    "maus2022": {
        "url": "https://download.pangaea.de/dataset/942325/files/global_mining_polygons_v2.gpkg",
        "file": "global_mining_polygons_v2.gpkg",
        "sha256": None,
        "licence": "CC BY-SA 4.0",
    },
    "tang2023": {
        "url": "https://zenodo.org/records/7894216/files/74548_projected.zip",
        "file": "tang_werner_2023.zip",
        "sha256": None,
        "licence": "CC BY 4.0",
    },
}


def fetch_mining_polygons(
    source: Literal["maus2022", "tang2023"] = "maus2022",
    *,
    bbox: tuple[float, float, float, float] | None = None,
    root: str | os.PathLike[str] | None = None,
    url: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    backoff_s: float = 2.0,
    progressbar: bool = False,
) -> Any:
    """Download (once) and read a global mining-polygon layer, optionally clipped to ``bbox``.

    Parameters
    ----------
    source
        ``"maus2022"`` (PANGAEA GeoPackage) or ``"tang2023"`` (Zenodo archive).
    bbox
        ``(minx, miny, maxx, maxy)`` in the layer's CRS (EPSG:4326 degrees), read with
        a spatial filter so the global file is never fully loaded.
    root
        Cache folder (default ``cache_dir()/mining_polygons``).
    url, sha256
        Override the module constants (mirrors, pinned checksums).
    retries, backoff_s, progressbar
        Passed to :func:`download_file`.

    Returns
    -------
    geopandas.GeoDataFrame
        The polygons with a ``class`` column set to ``"mines"`` (ready for
        :func:`vitseg.labels.rasterize_labels`) and ``source``.

    Raises
    ------
    DownloadError
        Failed or corrupt download.
    ParamsError
        An unknown ``source``, or a ``bbox`` that is not 4 finite numbers with
        min < max (checked before any download).
    VectorError
        No vector layer in the download, or no polygon in ``bbox``.

    Examples
    --------
    >>> fetch_mining_polygons("usgs")  # type: ignore[arg-type]
    Traceback (most recent call last):
    ...
    vitseg.errors.ParamsError: 'source' must be one of ['maus2022', 'tang2023']; got 'usgs'
    """
    import geopandas as gpd

    if source not in MINING_POLYGONS:
        raise ParamsError(f"'source' must be one of {sorted(MINING_POLYGONS)}; got {source!r}")
    if bbox is not None:
        ok = not isinstance(bbox, str) and len(bbox) == 4
        ok = ok and all(isinstance(v, Real) and math.isfinite(v) for v in bbox)
        if not (ok and bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise ParamsError(
                f"bbox must be 4 finite numbers (minx, miny, maxx, maxy) in EPSG:4326 degrees "
                f"with min < max; got {bbox!r}. Write e.g. (-1.82, 6.14, -1.69, 6.27)."
            )
        bbox = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
    meta = MINING_POLYGONS[source]
    base = Path(root) if root is not None else cache_dir() / "mining_polygons"
    path = download_file(
        url or str(meta["url"]), base / str(meta["file"]), sha256=sha256 or meta["sha256"],
        retries=retries, backoff_s=backoff_s, progressbar=progressbar,
    )  # fmt: skip
    if path.suffix == ".zip":
        folder = _safe_extract(path, base / f"{source}_extracted")
        layers = sorted([*folder.rglob("*.gpkg"), *folder.rglob("*.shp")])
        if not layers:
            raise VectorError(f"no .gpkg or .shp inside {path}; check the archive")
        path = layers[0]
    gdf = gpd.read_file(path, bbox=bbox)
    if len(gdf) == 0:
        raise VectorError(
            f"no {source} polygons in bbox {bbox}; check the bbox is (minx, miny, maxx, maxy) "
            "in EPSG:4326 degrees"
        )
    gdf["class"] = "mines"
    gdf["source"] = source
    return gdf
