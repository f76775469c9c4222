import dataclasses

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from vitseg.constants import IGNORE_INDEX
from vitseg.datasets import (
    BandStats,
    PatchDataset,
    TileDataset,
    band_stats,
    download_file,
    load_chip_folder,
)
from vitseg.errors import (
    BandError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingFileError,
    ParamsError,
)

# ------------------------------------------------------------------------------ helpers


def write_tif(path, arr, *, transform=None, crs="EPSG:32630", nodata=None, descriptions=None):
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path, "w", driver="GTiff", height=arr.shape[1], width=arr.shape[2], count=arr.shape[0],
        dtype=arr.dtype, crs=crs, transform=transform or from_origin(600000, 700000, 10, 10),
        nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(arr)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


def coord_pair(n=48):
    """Image whose band 0 = row, band 1 = col; mask = (row + col) % 3."""
    rows, cols = np.mgrid[0:n, 0:n].astype("float32")
    return np.stack([rows, cols]), ((rows + cols) % 3).astype("uint8")


def make_folder(root, splits=("train", "train", "val"), value_by_split=None, size=16):
    """Chip folder with an index.csv; images are constant per split (train=1, val=100)."""
    value_by_split = value_by_split or {"train": 1.0, "val": 100.0, "test": 50.0}
    rows = []
    for i, split in enumerate(splits):
        img = np.full((2, size, size), value_by_split[split], "float32")
        img[1] *= 2
        if i == 0:
            img[:, 0, 0] = np.nan
        write_tif(
            root / "images" / f"t{i}.tif", img, nodata=float("nan"), descriptions=("B04", "B08")
        )
        write_tif(root / "masks" / f"t{i}.tif", np.full((size, size), i % 3, "uint8"), nodata=255)
        rows.append(f"t{i},{split}")
    (root / "index.csv").write_text("tile_id,split\n" + "\n".join(rows) + "\n")
    return root


# ------------------------------------------------------------------------- band stats


def test_band_stats_uses_training_tiles_only_and_ignores_nan(tmp_path):
    folder = load_chip_folder(make_folder(tmp_path))
    stats = band_stats(folder)  # split="train": the val chip (value 100) is left out
    assert stats.bands == ("B04", "B08")
    np.testing.assert_allclose(stats.mean, [1.0, 2.0])
    np.testing.assert_allclose(stats.std, [1.0, 1.0])  # zero spread -> 1
    everything = band_stats(tmp_path, split=None)
    assert everything.mean[0] > 1.0
    assert BandStats.from_dict(stats.to_dict()).bands == stats.bands


def test_band_stats_on_arrays_by_hand():
    a = np.array([[[1.0, 2.0], [3.0, np.nan]]])
    b = np.array([[[4.0, 5.0], [np.nan, np.nan]]])
    s = band_stats([a, b], bands=["B02"])
    vals = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(s.mean, [vals.mean()])
    np.testing.assert_allclose(s.std, [vals.std()])
    with pytest.raises(BandError, match="bands"):
        band_stats([a, np.zeros((2, 2, 2))])


# ----------------------------------------------------------------------- PatchDataset


def test_patch_dataset_shapes_and_joint_augmentation():
    img, msk = coord_pair()
    ds = PatchDataset([(img, msk)], patch_px=16, samples_per_epoch=40, seed=1)
    assert len(ds) == 40 and ds.in_channels == 2
    seen_rot, seen_flip = set(), set()
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (2, 16, 16) and x.dtype == torch.float32
        assert y.shape == (16, 16) and y.dtype == torch.int64
        # Image and mask were flipped/rotated together: the mask still equals
        # (row + col) % 3 of the image values at every pixel.
        torch.testing.assert_close(y, ((x[0] + x[1]) % 3).long())
        p = ds.sample_params(i)
        seen_rot.add(p["rot90"])
        seen_flip.add((p["flip_y"], p["flip_x"]))
        # The patch holds exactly the rows/cols of its crop.
        assert set(x[0].unique().tolist()) == set(range(p["row"], p["row"] + 16))
    assert seen_rot == {0, 1, 2, 3} and len(seen_flip) == 4


def test_patch_dataset_is_deterministic_per_seed_epoch_index():
    img, msk = coord_pair()
    a = PatchDataset([(img, msk)], patch_px=16, samples_per_epoch=8, seed=5)
    b = PatchDataset([(img, msk)], patch_px=16, samples_per_epoch=8, seed=5)
    for i in (7, 0, 3):  # any access order
        torch.testing.assert_close(a[i][0], b[i][0])
    first = [a[i][0] for i in range(8)]
    a.set_epoch(1)
    assert any(not torch.equal(f, a[i][0]) for i, f in enumerate(first))
    a.set_epoch(0)
    torch.testing.assert_close(a[2][0], first[2])
    resumed = PatchDataset([(img, msk)], patch_px=16, samples_per_epoch=8, seed=5, epoch=1)
    b.set_epoch(1)
    torch.testing.assert_close(resumed[4][1], b[4][1])
    other_seed = PatchDataset([(img, msk)], patch_px=16, samples_per_epoch=8, seed=6)
    assert any(not torch.equal(other_seed[i][0], first[i]) for i in range(8))


def test_patch_dataset_normalisation_nan_and_padding():
    img = np.stack([np.full((20, 20), 3.0, "float32"), np.full((20, 20), 10.0, "float32")])
    img[:, 0, :] = np.nan
    msk = np.ones((20, 20), "uint8")
    stats = BandStats(("B04", "B08"), np.array([1.0, 10.0]), np.array([2.0, 5.0]))
    ds = PatchDataset([(img, msk)], patch_px=32, samples_per_epoch=3, stats=stats, augment=False)
    x, y = ds[0]  # 20 x 20 chip padded to 32 x 32 with no-data
    assert x.shape == (2, 32, 32)
    assert torch.all(x[0, 1:20, :20] == 1.0) and torch.all(x[1, 1:20, :20] == 0.0)
    assert torch.all(x[:, 0, :] == 0.0)  # NaN -> 0 ...
    assert torch.all(y[0, :] == IGNORE_INDEX)  # ... and ignored in the loss
    assert torch.all(y[20:, :] == IGNORE_INDEX) and torch.all(y[:, 20:] == IGNORE_INDEX)
    assert int((y == 1).sum()) == 19 * 20
    with pytest.raises(BandError, match="band statistics"):
        PatchDataset([(np.zeros((3, 8, 8), "float32"), msk[:8, :8])], patch_px=8, stats=stats)


def test_patch_dataset_min_labelled_frac_and_dataloader():
    img, _ = coord_pair(64)
    msk = np.full((64, 64), IGNORE_INDEX, "uint8")
    msk[:32, :32] = 1
    ds = PatchDataset([(img, msk)], patch_px=16, samples_per_epoch=16, min_labelled_frac=0.5)
    fracs = [float((ds[i][1] != IGNORE_INDEX).float().mean()) for i in range(16)]
    assert np.mean(np.array(fracs) >= 0.5) >= 15 / 16
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 2, 16, 16) and batch[1].shape == (4, 16, 16)


def test_tile_dataset_whole_tiles_by_split(tmp_path):
    make_folder(tmp_path, splits=("train", "val", "val", "test"))
    stats = band_stats(tmp_path)
    val = TileDataset(tmp_path, stats=stats, split="val")
    assert len(val) == 2 and val.ids == ("t1", "t2")
    x, y = val[0]
    assert x.shape == (2, 16, 16)
    torch.testing.assert_close(x[0], torch.full((16, 16), 99.0))  # (100 - 1) / 1
    assert y.unique().tolist() == [1]


# ------------------------------------------------------------------------ chip folders


def test_chip_folder_any_band_count_and_mask_recoding(tmp_path):
    img = np.random.default_rng(0).random((7, 12, 12), dtype="float32")
    write_tif(tmp_path / "images" / "field_a.tif", img)
    write_tif(tmp_path / "labels" / "field_a_mask.tif", np.array([[10, 20] * 6] * 12, "uint8"))
    folder = load_chip_folder(
        tmp_path, masks="labels", mask_name=lambda s: s + "_mask", mask_values={10: 0, 20: 1}
    )
    assert folder.bands == tuple(f"band_{i}" for i in range(1, 8))
    x, y = folder.read(0)
    assert x.shape == (7, 12, 12) and set(np.unique(y)) == {0, 1}
    ds = PatchDataset(folder, patch_px=8, samples_per_epoch=2)
    assert ds[0][0].shape == (7, 8, 8) and ds.bands == folder.bands


@pytest.mark.parametrize(
    ("case", "error", "match"),
    [
        ("shape", GridMismatchError, r"a\.tif.*a\.tif.*shape"),
        ("transform", GridMismatchError, "transform"),
        ("crs", GridMismatchError, "CRS"),
        ("bands", BandError, r"b\.tif has 4 bands but .*a\.tif has 3"),
        ("mask_bands", BandError, "exactly 1"),
        ("missing_mask", LabelError, r"no matching mask.*b\.tif"),
        ("empty", LabelError, "no image files"),
    ],
)
def test_chip_folder_errors_name_the_files(tmp_path, case, error, match):
    tr = from_origin(600000, 700000, 10, 10)
    if case != "empty":
        write_tif(tmp_path / "images" / "a.tif", np.zeros((3, 8, 8), "float32"))
        mask_kw = {
            "shape": {"arr": np.zeros((9, 8), "uint8")},
            "transform": {"transform": from_origin(600010, 700000, 10, 10)},
            "crs": {"crs": "EPSG:32631"},
            "mask_bands": {"arr": np.zeros((2, 8, 8), "uint8")},
        }.get(case, {})
        arr = mask_kw.pop("arr", np.zeros((8, 8), "uint8"))
        write_tif(tmp_path / "masks" / "a.tif", arr, **{"transform": tr, **mask_kw})
    if case in ("bands", "missing_mask"):
        write_tif(
            tmp_path / "images" / "b.tif", np.zeros((4 if case == "bands" else 3, 8, 8), "float32")
        )
        if case == "bands":
            write_tif(tmp_path / "masks" / "b.tif", np.zeros((8, 8), "uint8"))
    (tmp_path / "images").mkdir(exist_ok=True)
    with pytest.raises(error, match=match):
        load_chip_folder(tmp_path)


# ------------------------------------------------------------- re-exported downloaders


def test_downloaders_are_reexported_from_vitseg_downloads():
    import vitseg.chips
    import vitseg.datasets
    import vitseg.downloads

    for name in vitseg.downloads.__all__:
        assert getattr(vitseg.datasets, name) is getattr(vitseg.downloads, name)
        assert name in vitseg.datasets.__all__
    for name in vitseg.chips.__all__:
        assert getattr(vitseg.datasets, name) is getattr(vitseg.chips, name)


# ------------------------------------------------------------- PatchDataset.load_batch


def two_sources():
    a_img, a_msk = coord_pair(40)
    b_img, b_msk = coord_pair(24)
    b_img = b_img + 1000.0  # tell the sources apart
    b_msk[:2] = IGNORE_INDEX
    return [(a_img, a_msk), (b_img, b_msk)]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("min_frac", [0.0, 0.5])
def test_load_batch_equals_stacked_items(channels_last, min_frac):
    ds = PatchDataset(two_sources(), patch_px=16, samples_per_epoch=12, seed=2,
                      min_labelled_frac=min_frac)  # fmt: skip
    idx = [11, 0, 5, 5, 3, 7]
    ds.set_epoch(3)
    x, y = ds.load_batch(idx, channels_last=channels_last)
    assert x.shape == (6, 2, 16, 16) and y.shape == (6, 16, 16) and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last) == channels_last
    torch.testing.assert_close(x, torch.stack([ds[i][0] for i in idx]), rtol=0, atol=0)
    assert torch.equal(y, torch.stack([ds[i][1] for i in idx]))
    ds.set_epoch(0)  # an explicit epoch wins over the one set (workers get it per batch)
    x3, _ = ds.load_batch(idx, epoch=3)
    assert torch.equal(x3, x)
    assert not torch.equal(ds.load_batch(idx)[0], x)
    with pytest.raises(IndexError, match="out of range"):
        ds.load_batch([12])


@pytest.mark.parametrize("channels_last", [False, True])
def test_gather_by_index_arithmetic_matches_numpy_views(channels_last):
    """The GPU path (run here on CPU tensors) cuts what the numpy views cut, for all 8
    flip/rotation combinations, in both sources."""
    ds = PatchDataset(two_sources(), patch_px=8, samples_per_epoch=4)
    plan = np.array([(s, r, c, fy, fx, rot) for s, r, c in ((0, 3, 30), (1, 16, 5))
                     for fy in (0, 1) for fx in (0, 1) for rot in range(4)])  # fmt: skip
    x, y = ds._gather(plan, torch.device("cpu"), channels_last=channels_last)
    assert x.shape == (32, 2, 8, 8) and y.dtype == torch.int64
    srcs = two_sources()
    for k, s in enumerate(plan):
        xe, ye = np.empty((2, 8, 8), "float32"), np.empty((8, 8), "int64")
        ds._cut(s, xe, ye, False)  # odd rotations read the transposed store
        assert torch.equal(x[k], torch.from_numpy(xe)), s
        assert torch.equal(y[k], torch.from_numpy(ye)), s
        # both equal plain numpy: crop, flip rows, flip columns, then np.rot90
        src, r, c, fy, fx, rot = s
        img, msk = srcs[src][0][:, r : r + 8, c : c + 8], srcs[src][1][r : r + 8, c : c + 8]
        if fy:
            img, msk = img[:, ::-1], msk[::-1]
        if fx:
            img, msk = img[:, :, ::-1], msk[:, ::-1]
        np.testing.assert_array_equal(xe, np.rot90(img, rot, axes=(1, 2)), err_msg=str(s))
        np.testing.assert_array_equal(ye, np.rot90(msk, rot), err_msg=str(s))
    # the device copy is never pickled (data-loader workers get the CPU store only)
    import pickle

    ds._device_store = ("cpu", x)
    assert pickle.loads(pickle.dumps(ds))._device_store is None


def test_training_modules_import_without_rasterio():
    import subprocess
    import sys

    code = ("import sys; sys.modules['rasterio'] = None\n"
            "import vitseg.datasets, vitseg.train\n"
            "import numpy as np\n"
            "ds = vitseg.datasets.PatchDataset([(np.ones((2, 8, 8), 'float32'),"
            " np.zeros((8, 8), 'uint8'))], patch_px=4, samples_per_epoch=2)\n"
            "print(tuple(ds.load_batch([0, 1])[0].shape))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(2, 2, 4, 4)"


# ------------------------------------------------- bad input, round 2 (issue 22)


def _chip(root, name, mask, *, nodata=None, mask_dtype=None):
    """One 2-band chip with the given mask (written with its own dtype)."""
    mask = np.asarray(mask, dtype=mask_dtype) if mask_dtype else np.asarray(mask)
    write_tif(root / "images" / f"{name}.tif", np.ones((2, *mask.shape), "float32"))
    write_tif(root / "masks" / f"{name}.tif", mask, nodata=nodata)


def _zero_255(n=8):
    m = np.zeros((n, n), "uint8")
    m[: n // 2, : n // 2] = 255  # a quarter "mines" in a 0/255 export
    return m


@pytest.mark.parametrize("nodata", [None, 255], ids=["untagged", "tagged_255"])
def test_zero_255_export_needs_mask_values(tmp_path, nodata):
    _chip(tmp_path, "a", _zero_255(), nodata=nodata)
    _chip(tmp_path, "b", np.zeros((8, 8), "uint8"), nodata=nodata)
    # the old code read 0 as class 0 (mines) everywhere and 255 as no data
    with pytest.raises(
        LabelError, match=r"\{0: 112 px, 255: 16 px\}.*ambiguous.*mask_values=\{0: 2, 255: 0\}"
    ):
        load_chip_folder(tmp_path)
    folder = load_chip_folder(tmp_path, mask_values={0: 2, 255: 0})
    y = folder.read_mask(0)
    assert (y == 0).sum() == 16 and (y == 2).sum() == 48  # an explicit mapping wins over nodata
    assert folder.mask_counts == ({0: 112, 255: 16} if nodata is None else {0: 112})
    # "255 really is no data" is said with a mapping of the other value
    assert set(np.unique(load_chip_folder(tmp_path, mask_values={0: 0}).read_mask(0))) == {0, 255}


def test_vitseg_tiles_with_only_mines_and_nodata_are_accepted(tmp_path):
    import xarray as xr

    from vitseg.tiles import make_tiles, write_tiles

    ys, xs = 700000 - 5 - 10 * np.arange(8.0), 600000 + 5 + 10 * np.arange(8.0)
    scene = xr.DataArray(
        np.ones((2, 8, 8), "float32"), dims=("band", "y", "x"),
        coords={"band": ["B04", "B08"], "y": ys, "x": xs},
    ).rio.write_crs("EPSG:32630")  # fmt: skip
    scene[:, :2, :2] = np.nan  # no data in one corner -> 255 in the mask
    labels = xr.zeros_like(scene.isel(band=0, drop=True), dtype="uint8")
    idx = make_tiles(scene, labels, tile_px=4)
    idx["split"] = "train"
    write_tiles(scene, labels, idx, tmp_path)
    folder = load_chip_folder(tmp_path)
    assert folder.mask_counts == {0: 60}  # 255 is the masks' declared no data
    assert (folder.read_mask(0) == IGNORE_INDEX).sum() == 4


@pytest.mark.parametrize(
    ("masks", "match"),
    [
        ([np.full((4, 4), 3, "uint8")], r"values \{3: 16 px\} outside vitseg's class codes"),
        ([np.array([[1, 2], [3, 3]], "uint8")], r"\{3: 2 px\}.*1-based"),
        ([np.full((4, 4), 1, "uint8"), _zero_255(4) // 255], None),  # {0, 1}: binary codes
        ([np.full((4, 4), 7, "uint16")], r"\{7: 16 px\}"),
    ],
)
def test_foreign_mask_values_are_checked_at_load(tmp_path, masks, match):
    for i, m in enumerate(masks):
        _chip(tmp_path, f"c{i}", m)
    if match is None:
        assert load_chip_folder(tmp_path).mask_counts == {0: 12, 1: 20}
        return
    with pytest.raises(LabelError, match=match):
        load_chip_folder(tmp_path)


def test_float_masks_are_never_truncated(tmp_path):
    m = np.array([[0.0, 1.0], [2.0, np.nan]], "float32")
    _chip(tmp_path / "ok", "a", m)
    y = load_chip_folder(tmp_path / "ok").read_mask(0)
    assert y.tolist() == [[0, 1], [2, 255]]  # NaN is no data
    _chip(tmp_path / "frac", "a", np.array([[0.6, 1.0], [0.6, 2.0]], "float32"))
    with pytest.raises(LabelError, match=r"2 pixels that are not whole.*0\.6.*never rounded"):
        load_chip_folder(tmp_path / "frac")  # the old code read 0.6 as class 0 (mines)
    _chip(tmp_path / "inf", "a", np.array([[np.inf, 1.0], [0.0, 2.0]], "float32"))
    with pytest.raises(LabelError, match=r"not whole class codes.*inf"):
        load_chip_folder(tmp_path / "inf")


@pytest.mark.parametrize(
    ("mask_values", "match"),
    [
        ({0: 2, 1: 0}, r"maps values \[1\] that no mask.*\{255: 16 px\}"),
        ({0.5: 1}, "keys are whole file values"),
        ({0: 256}, "class codes 0..255"),
        ({0: -1}, "class codes 0..255"),
    ],
)
def test_mask_values_that_do_not_fit_the_masks(tmp_path, mask_values, match):
    _chip(tmp_path, "a", _zero_255())
    with pytest.raises(LabelError, match=match):
        load_chip_folder(tmp_path, mask_values=mask_values)


def test_array_masks_do_not_wrap_or_truncate():
    img = np.ones((1, 2, 2), "float32")
    _, y = TileDataset([(img, np.array([[0, 1], [2, np.nan]]))])[0]
    assert y.tolist() == [[0, 1], [2, 255]]
    # 256 wrapped to 0 (mines), -1 to 255, 0.6 was truncated to 0
    for bad, match in ((256, "outside 0..255"), (-1, "outside 0..255"), (0.6, "not whole")):
        with pytest.raises(LabelError, match=match):
            PatchDataset([(img, np.array([[0, 1], [2, bad]]))], patch_px=2)
    with pytest.raises(DimensionError, match=">= 1 band"):
        TileDataset([(np.ones((0, 2, 2), "float32"), np.zeros((2, 2), "uint8"))])
    with pytest.raises(DimensionError, match="real numbers"):
        TileDataset([(np.ones((1, 2, 2), "complex64"), np.zeros((2, 2), "uint8"))])
    with pytest.raises(ParamsError, match=r"min_labelled_frac must be in \[0, 1\]; got nan"):
        PatchDataset([(img, np.zeros((2, 2), "uint8"))], patch_px=2, min_labelled_frac=np.nan)


def test_unknown_split_and_empty_folders_are_errors(tmp_path):
    make_folder(tmp_path, splits=("train", "val"))
    with pytest.raises(ParamsError, match=r"no chip of split \['vall'\].*\['train', 'val'\]"):
        TileDataset(tmp_path, split="vall")  # was an empty dataset
    with pytest.raises(ParamsError, match="holds no chips"):
        PatchDataset(dataclasses.replace(load_chip_folder(tmp_path), ids=()), patch_px=4)


def test_index_csv_problems(tmp_path):
    _chip(tmp_path, "007", np.zeros((4, 4), "uint8"))
    (tmp_path / "index.csv").write_text("tile_id,split\n007,train\n")
    assert load_chip_folder(tmp_path).index["tile_id"].tolist() == ["007"]  # not read as 7
    (tmp_path / "index.csv").write_text("tile_id,split\n007,train\n007,val\n")
    with pytest.raises(LabelError, match=r"lists chips \['007'\] more than once"):
        load_chip_folder(tmp_path)
    (tmp_path / "index.csv").write_text("id,split\n007,train\n")
    with pytest.raises(LabelError, match="no 'tile_id' column"):
        load_chip_folder(tmp_path)


def test_paths_escaping_or_of_the_wrong_kind(tmp_path):
    _chip(tmp_path / "f", "a", np.zeros((4, 4), "uint8"))
    _chip(tmp_path, "a", np.zeros((4, 4), "uint8"))  # a mask outside the folder
    with pytest.raises(LabelError, match="outside the mask folder"):
        load_chip_folder(tmp_path / "f", mask_name=lambda s: "../../masks/" + s)
    with pytest.raises(LabelError, match="points outside the chip folder"):
        load_chip_folder(tmp_path / "f", masks="../masks")
    with pytest.raises(MissingFileError, match="is a file"):
        load_chip_folder(tmp_path / "f" / "images" / "a.tif")
    with pytest.raises(MissingFileError, match="does not exist"):
        load_chip_folder(tmp_path / "nope")
    with pytest.raises(ParamsError, match="is a folder"):
        download_file("http://127.0.0.1:9/x.zip", tmp_path)  # was returned as "cached"
    with pytest.raises(ParamsError, match="timeout_s must be > 0"):
        download_file("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", timeout_s=0)
