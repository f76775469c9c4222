import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401
import shapely
import xarray as xr

from vitseg.constants import IGNORE_INDEX
from vitseg.datasets import load_chip_folder
from vitseg.errors import (
    CRSMismatchError,
    DimensionError,
    GridMismatchError,
    NoValidDataError,
    ParamsError,
)
from vitseg.tiles import make_tiles, split_tiles, write_tiles

X0, Y0, RES = 600000.0, 700000.0, 10.0


def make_scene(n=96, *, dask=False, crs="EPSG:32630", x0=X0, y0=Y0, res=RES, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.random((3, n, n), dtype="float32") + 0.01
    if dask:
        data = dsa.from_array(data, chunks=(3, 32, 32))
    return xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": ["B02", "B03", "B04"],
            "y": y0 - res * (np.arange(n) + 0.5),
            "x": x0 + res * (np.arange(n) + 0.5),
        },
    ).rio.write_crs(crs)


def make_labels(scene, value=2):
    lab = xr.full_like(scene.isel(band=0, drop=True), value, dtype="uint8")
    lab.attrs = {"classes": ["mines", "built", "vegetation"]}
    return lab


@pytest.mark.parametrize("dask", [False, True])
def test_make_tiles_offsets_bounds_and_blank_removal(dask):
    scene = make_scene(64, dask=dask)
    data = scene.values.copy()
    data[:, :16, :16] = np.nan  # top-left tile fully no-data: dropped
    data[:, 16:28, 32:48] = np.nan  # 12/16 rows no-data in tile (r16, c32): 75%
    data[:, 48:, 48:] = 0.0  # all-zero (blank) bottom-right tile: dropped
    scene = scene.copy(data=dsa.from_array(data, chunks=32) if dask else data)
    idx = make_tiles(scene, make_labels(scene), tile_px=16, max_nodata_frac=0.5)
    assert idx.attrs["n_candidates"] == 16
    ids = set(idx["tile_id"])
    assert "r00000_c00000" not in ids and "r00048_c00048" not in ids
    assert "r00016_c00032" not in ids  # 75% > 50%
    assert len(idx) == 13
    row = idx.set_index("tile_id").loc["r00016_c00000"]
    assert (row.minx, row.maxx) == (X0, X0 + 160)
    assert (row.miny, row.maxy) == (Y0 - 320, Y0 - 160)
    assert row.crs == "EPSG:32630"
    loose = make_tiles(scene, make_labels(scene), tile_px=16, max_nodata_frac=0.8)
    assert "r00016_c00032" in set(loose["tile_id"])
    assert len(loose) == 14  # fully blank tiles are dropped whatever the threshold
    assert idx.crs == scene.rio.crs
    assert shapely.equals(
        idx.geometry.iloc[0], shapely.box(*idx.total_bounds) & idx.geometry.iloc[0]
    )


def test_make_tiles_stride_ignore_and_min_labelled():
    scene = make_scene(64)
    lab = make_labels(scene)
    lab[:8, :8] = 0  # mines in the first tile: 64 / 256 = 25%
    lab[40:, :] = IGNORE_INDEX  # unlabelled rows count as no-data
    idx = make_tiles(scene, lab, tile_px=16, stride_px=8, max_nodata_frac=0.0)
    assert idx.attrs["n_candidates"] == 7 * 7
    assert idx["row_off"].max() == 24  # tiles from row 32 on touch rows >= 40
    assert idx.set_index("tile_id").loc["r00000_c00000", "target_frac"] == 0.25
    sel = make_tiles(scene, lab, tile_px=16, stride_px=8, min_labelled_frac=0.2)
    assert sel["tile_id"].tolist() == ["r00000_c00000"]
    prefixed = make_tiles(scene, lab, tile_px=32, id_prefix="obuasi_2020-12-15_",
                          columns={"box": "obuasi", "date": "2020-12-15"})  # fmt: skip
    assert prefixed["tile_id"].iloc[0] == "obuasi_2020-12-15_r00000_c00000"
    assert set(prefixed["box"]) == {"obuasi"}


def test_make_tiles_errors():
    scene = make_scene(32)
    with pytest.raises(DimensionError, match="smaller than one"):
        make_tiles(scene, make_labels(scene), tile_px=64)
    with pytest.raises(GridMismatchError, match="shape"):
        make_tiles(scene, make_labels(make_scene(16)), tile_px=8)
    shifted = make_labels(make_scene(32, x0=X0 + 10))
    with pytest.raises(GridMismatchError, match="coordinates"):
        make_tiles(scene, shifted, tile_px=8)
    with pytest.raises(CRSMismatchError, match="CRS"):
        make_tiles(scene, make_labels(make_scene(32, crs="EPSG:32631")), tile_px=8)
    with pytest.raises(ParamsError, match="max_nodata_frac"):
        make_tiles(scene, make_labels(scene), tile_px=8, max_nodata_frac=1.5)
    cube = xr.concat([scene, scene], dim="time")
    with pytest.raises(DimensionError, match="one date at a time"):
        make_tiles(cube, make_labels(scene), tile_px=8)


def overlapping_pairs(a, b):
    """Pairs of tiles of ``a`` and ``b`` sharing a positive area (at least one pixel)."""
    ba, bb = (t[["minx", "miny", "maxx", "maxy"]].to_numpy()[:, None, :] for t in (a, b))
    bb = bb.transpose(1, 0, 2)
    w = np.minimum(ba[..., 2], bb[..., 2]) - np.maximum(ba[..., 0], bb[..., 0])
    h = np.minimum(ba[..., 3], bb[..., 3]) - np.maximum(ba[..., 1], bb[..., 1])
    ia, ib = np.nonzero((w > 0) & (h > 0))
    return list(zip(a["tile_id"].to_numpy()[ia], b["tile_id"].to_numpy()[ib], strict=True))


def test_overlapping_pairs_helper():
    t = pd.DataFrame(
        {
            "tile_id": ["a", "b", "c"],
            "minx": [0, 10, 5],
            "maxx": [10, 20, 15],
            "miny": 0,
            "maxy": 10,
        }
    )
    assert overlapping_pairs(t.iloc[[0]], t.iloc[[1]]) == []  # edges touch only
    assert overlapping_pairs(t.iloc[[0, 1]], t.iloc[[2]]) == [("a", "c"), ("b", "c")]


def two_date_index():
    # Two dates of the same place (same grid) with overlapping tiles (stride < tile).
    scene = make_scene(128)
    parts = [
        make_tiles(
            scene,
            make_labels(scene),
            tile_px=16,
            stride_px=8,
            id_prefix=f"{d}_",
            columns={"date": d},
        )
        for d in ("2020-12-01", "2021-01-15")
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("how", ["block_px", "block_m", "cells"])
def test_no_test_pixel_in_a_training_tile(how):
    index = two_date_index()
    if how == "block_px":
        out = split_tiles(index, block_px=32, seed=3)
    elif how == "block_m":
        out = split_tiles(index, block_m=250.0, seed=3)  # not a multiple of the tile size
    else:
        cells = gpd.GeoDataFrame(
            geometry=[
                shapely.box(X0 + i * 320, Y0 - (j + 1) * 320, X0 + (i + 1) * 320, Y0 - j * 320)
                for i in range(4)
                for j in range(4)
            ],
            crs="EPSG:32630",
        ).to_crs("EPSG:4326")  # grid cells may come in another CRS
        out = split_tiles(index, blocks=cells, seed=3)
    assert set(out["split"]) == {"train", "val", "test"}
    train, val, test = (out[out["split"] == s] for s in ("train", "val", "test"))
    assert overlapping_pairs(test, train) == []
    assert overlapping_pairs(val, train) == []
    assert overlapping_pairs(test, val) == []
    # Straddling tiles were dropped, the others kept; shares near 60/20/20.
    assert out.attrs["n_dropped_straddling"] + len(out) == len(index)
    assert 0.35 < len(train) / len(out) < 0.85
    # Same place on two dates -> same split.
    by_place = out.groupby(["row_off", "col_off"])["split"].nunique()
    assert (by_place == 1).all()


def test_split_is_reproducible_from_seed():
    index = two_date_index()
    a = split_tiles(index, block_px=32, seed=7)
    b = split_tiles(index.sample(frac=1.0, random_state=1), block_px=32, seed=7)
    pd.testing.assert_series_equal(
        a.set_index("tile_id")["split"].sort_index(), b.set_index("tile_id")["split"].sort_index()
    )
    others = [split_tiles(index, block_px=32, seed=s)["split"].tolist() for s in range(4)]
    assert any(o != others[0] for o in others[1:])


def test_split_errors():
    index = two_date_index()
    with pytest.raises(ParamsError, match="exactly one"):
        split_tiles(index, block_px=32, block_m=100.0)
    with pytest.raises(ParamsError, match="summing to 1"):
        split_tiles(index, block_px=32, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ParamsError, match="spatial block"):
        split_tiles(index, block_px=1000)
    with pytest.raises(NoValidDataError, match="empty"):
        split_tiles(index.iloc[:0], block_px=32)
    mixed = index.copy()
    mixed.loc[0, "crs"] = "EPSG:32631"
    with pytest.raises(CRSMismatchError, match="several CRSs"):
        split_tiles(mixed, block_px=32)


def test_write_tiles_chip_folder(tmp_path):
    scene = make_scene(64)
    data = scene.values.copy()
    data[:, 0, :] = np.nan  # a cloud-masked row in the first tiles
    scene = scene.copy(data=data)
    lab = make_labels(scene)
    lab[20:24, 20:24] = 0
    index = split_tiles(
        make_tiles(scene, lab, tile_px=32, id_prefix="a_", columns={"box": "a"}),
        block_px=32,
        seed=0,
    )
    out = write_tiles(scene, lab, index, tmp_path / "tiles")
    assert out == tmp_path / "tiles"
    with rasterio.open(out / "images" / "a_r00000_c00000.tif") as src:
        assert src.dtypes[0] == "float32" and src.count == 3
        assert src.descriptions == ("B02", "B03", "B04")
        assert src.crs.to_epsg() == 32630
        assert (src.transform.c, src.transform.f) == (X0, Y0)
        np.testing.assert_array_equal(src.read(), data[:, :32, :32])
    with rasterio.open(out / "masks" / "a_r00000_c00000.tif") as src:
        mask = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == IGNORE_INDEX
    assert (mask[0] == IGNORE_INDEX).all()  # NaN pixels are ignored in the mask
    assert int((mask == 0).sum()) == 16
    table = pd.read_csv(out / "index.csv")
    for col in (
        "tile_id",
        "box",
        "split",
        "row_off",
        "col_off",
        "minx",
        "miny",
        "maxx",
        "maxy",
        "crs",
    ):
        assert col in table.columns
    # A second scene merges into the same folder and index; rewriting replaces rows.
    other = split_tiles(make_tiles(scene, lab, tile_px=32, id_prefix="b_"), block_px=32, seed=0)
    write_tiles(scene, lab, other, out)
    write_tiles(scene, lab, other, out)
    table = pd.read_csv(out / "index.csv")
    assert len(table) == len(index) + len(other)
    assert table["tile_id"].is_unique
    folder = load_chip_folder(out)
    assert len(folder) == len(table) and folder.bands == ("B02", "B03", "B04")
    assert len(folder.subset("train")) == int((table["split"] == "train").sum())
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*.tif"))


def test_split_map_figure(tmp_path):
    from vitseg.plotting import plot_split_map, savefig

    scene = make_scene(64)
    lab = make_labels(scene)
    out = split_tiles(make_tiles(scene, lab, tile_px=16), block_px=16, seed=0)
    ax = plot_split_map(out, background=lab)
    assert len(ax.patches) == len(out)
    assert savefig(ax.figure, tmp_path / "split.png", simulated=True).exists()


def test_split_groups_one_grid_per_box_drops_nothing():
    a = make_scene(64)
    b = make_scene(64, x0=X0 + 1234.0, y0=Y0 - 5670.0)  # grid not aligned with box a
    index = pd.concat(
        [
            make_tiles(a, make_labels(a), tile_px=16, id_prefix="a_", columns={"box": "a"}),
            make_tiles(b, make_labels(b), tile_px=16, id_prefix="b_", columns={"box": "b"}),
        ],
        ignore_index=True,
    )
    out = split_tiles(index, block_px=32, groups="box", seed=0)
    assert len(out) == len(index) == 32 and out.attrs["n_dropped_straddling"] == 0
    assert out.groupby("block").size().eq(4).all()  # 2 x 2 tiles per block
    assert overlapping_pairs(out[out.split == "test"], out[out.split == "train"]) == []
    # Without groups, box b's tiles straddle the blocks of a grid anchored on box a.
    assert split_tiles(index, block_px=32, seed=0).attrs["n_dropped_straddling"] > 0
    overlapping = index.copy()
    overlapping.loc[overlapping["box"] == "b", ["minx", "maxx"]] -= 1234.0
    overlapping.loc[overlapping["box"] == "b", ["miny", "maxy"]] += 5670.0 - 5.0
    with pytest.raises(ParamsError, match="overlap in space"):
        split_tiles(overlapping, block_px=32, groups="box")
