"""Tests for vitseg.baselines: SAM, RF/MLP factories, rebalancing, pixel sampling, scene prediction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from sklearn.utils.estimator_checks import parametrize_with_checks

from vitseg.baselines import (
    SpectralAngleMapper,
    benchmark_table,
    make_mlp,
    make_random_forest,
    predict_scene,
    rebalance,
    sample_pixels,
    search_hyperparameters,
    spectral_angles,
    tile_scores,
)
from vitseg.errors import BandError, DimensionError, LabelError, ParamsError


def _expected_failed_checks(estimator: object) -> dict[str, str]:
    # scikit-learn marks these itself for RandomForestClassifier (bootstrap resampling
    # makes weights and repeated rows differ); they are not about vitseg's settings.
    if not type(estimator).__name__.startswith("RandomForest"):
        return {}
    return {
        name: "bootstrap: sample weights are not equivalent to repeated rows"
        for name in (
            "check_sample_weight_equivalence_on_dense_data",
            "check_sample_weight_equivalence_on_sparse_data",
        )
    }


@parametrize_with_checks(
    [SpectralAngleMapper(), make_random_forest(n_estimators=5, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([make_mlp(scale=False, random_state=0)])
def test_sklearn_compatible_mlp(estimator, check):
    # ~20 s: the MLP trains dozens of times. make_mlp's default adds a StandardScaler
    # in a Pipeline, which scikit-learn's parameter-overwrite checks do not apply to.
    check(estimator)


def test_sam_angles_on_constructed_spectra():
    refs = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    X = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, math.sqrt(2.0)]])
    ang = spectral_angles(X, refs)
    expected = np.radians(
        [
            [0.0, 45.0, 90.0],
            [90.0, 45.0, 90.0],
            [60.0, 45.0, 45.0],  # (1,1,sqrt2)/2: cos to x = 1/2, to (1,1,0) = 1/sqrt2
        ]
    )
    np.testing.assert_allclose(ang, expected, atol=1e-12)


def test_sam_against_independent_implementation():
    rng = np.random.default_rng(3)
    X = rng.random((200, 10))
    refs = rng.random((3, 10))
    # independent: per pair, arctan2(|x cross r| , x.r) via the Gram identity
    expected = np.empty((200, 3))
    for i in range(200):
        for j in range(3):
            a, b = X[i], refs[j]
            dot = float(np.dot(a, b))
            cross = math.sqrt(max(float(np.dot(a, a) * np.dot(b, b)) - dot * dot, 0.0))
            expected[i, j] = math.atan2(cross, dot)
    sam = SpectralAngleMapper(reference_spectra=refs).fit(X, rng.integers(0, 3, 200))
    np.testing.assert_allclose(sam.angles(X), expected, atol=1e-6)
    np.testing.assert_array_equal(sam.predict(X), np.argmin(expected, axis=1))


def test_sam_mean_reference_spectra_and_max_angle():
    X = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    sam = SpectralAngleMapper(max_angle=np.radians(30)).fit(X, ["a", "a", "b", "b"])
    np.testing.assert_allclose(sam.reference_spectra_, [[2.0, 0.0], [0.0, 3.0]])
    assert sam.classes_.tolist() == ["a", "b"]
    pred = SpectralAngleMapper(max_angle=np.radians(30), unclassified=9).fit(X, [0, 0, 1, 1])
    out = pred.predict(np.array([[1.0, 0.1], [1.0, 1.0], [0.2, 1.0]]))
    assert out.tolist() == [0, 9, 1]  # 45 degrees is beyond 30 from both


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reference_spectra": np.ones((3, 2))}, DimensionError, "shape"),
        ({"max_angle": 4.0}, ParamsError, "max_angle"),
    ],
)
def test_sam_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpectralAngleMapper(**kwargs).fit(np.eye(2), [0, 1])


def test_factories_have_paper_defaults():
    rf = make_random_forest(random_state=0)
    assert rf.n_estimators == 100
    pipe = make_mlp(random_state=0)
    mlp = pipe[-1]
    assert mlp.hidden_layer_sizes == (10, 5)
    assert (mlp.activation, mlp.solver, mlp.learning_rate) == ("relu", "adam", "adaptive")


@pytest.mark.parametrize("labels", ["codes", "names"])
def test_rebalance_ratio_holds(labels):
    y = np.array([0] * 7 + [1] * 50 + [2] * 100)
    if labels == "names":
        y = np.array(["mines", "built", "vegetation"])[y]
    X = np.arange(y.size, dtype=float)[:, None]
    Xb, yb = rebalance(X, y, random_state=0)
    veg = 2 if labels == "codes" else "vegetation"
    mine = 0 if labels == "codes" else "mines"
    assert np.sum(yb == veg) == 35 == 5 * np.sum(yb == mine)
    assert np.sum(yb == (1 if labels == "codes" else "built")) == 50  # untouched
    assert np.all(np.diff(Xb[:, 0]) > 0)  # order kept
    # same seed, same subsample; already balanced input is returned unchanged
    np.testing.assert_array_equal(rebalance(X, y, random_state=0)[0], Xb)
    _, ys = rebalance(Xb, yb, random_state=1)
    np.testing.assert_array_equal(ys, yb)


def test_rebalance_without_minority_is_an_error():
    with pytest.raises(LabelError, match="minority class 'mines' has no samples"):
        rebalance(np.zeros((3, 1)), np.array([1, 2, 2]))


def test_search_hyperparameters_4_fold():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (40, 3)), rng.normal(4, 1, (40, 3))])
    y = np.repeat([0, 2], 40)
    search = search_hyperparameters(
        make_random_forest(n_estimators=5, random_state=0),
        X,
        y,
        param_grid={"max_depth": [2, None]},
        random_state=0,
    )
    assert search.n_splits_ == 4
    assert search.best_score_ > 0.9


@pytest.fixture
def chips():
    rng = np.random.default_rng(1)
    img = rng.random((4, 6, 5)).astype("float32")
    img[:, 0, 0] = np.nan
    mask = np.array(
        [
            [0, 0, 0, 0, 255],
            [0, 0, 1, 1, 1],
            [1, 1, 1, 2, 2],
            [2, 2, 2, 2, 2],
            [2, 2, 2, 2, 2],
            [2, 2, 2, 2, 255],
        ],
        dtype="uint8",
    )
    return img, mask


@pytest.mark.parametrize("kind", ["numpy", "dataarray", "geotiff"])
def test_sample_pixels_drops_ignored_and_nan(chips, kind, tmp_path):
    img, mask = chips
    if kind == "dataarray":
        image = xr.DataArray(img, dims=("band", "y", "x"), coords={"band": list("abcd")})
        m = xr.DataArray(mask, dims=("y", "x"))
    elif kind == "geotiff":
        image = xr.DataArray(img, dims=("band", "y", "x"), coords={"band": [1, 2, 3, 4]})
        image = image.assign_coords(x=np.arange(5) * 10.0 + 5, y=600 - np.arange(6) * 10.0 - 5)
        image.rio.write_crs("EPSG:32630", inplace=True)
        image.rio.to_raster(tmp_path / "img.tif")
        mda = xr.DataArray(mask, dims=("y", "x"), coords={"x": image.x, "y": image.y})
        mda.rio.write_crs("EPSG:32630", inplace=True)
        mda.rio.to_raster(tmp_path / "mask.tif")
        image, m = tmp_path / "img.tif", tmp_path / "mask.tif"
    else:
        image, m = img, mask
    X, y = sample_pixels([image, image], [m, m])
    # 30 pixels - 2 ignored - 1 NaN (a mine pixel), twice
    assert X.shape == (54, 4)
    assert np.bincount(y).tolist() == [2 * 5, 2 * 6, 2 * 16]
    assert np.isfinite(X).all()
    _, ys = sample_pixels([image], [m], n_per_class=4, random_state=0)
    assert np.bincount(ys).tolist() == [4, 4, 4]
    Xm, _ = sample_pixels([image], [m], max_pixels=5, random_state=0)
    assert Xm.shape == (5, 4)


@pytest.mark.parametrize(
    ("images", "masks", "error", "match"),
    [
        ([np.zeros((2, 3, 3))], [], DimensionError, "1 images but 0 masks"),
        ([np.zeros((2, 3, 3))], [np.zeros((2, 2))], DimensionError, "mask is"),
        ([np.zeros((2, 3, 3))], [np.full((3, 3), 255)], LabelError, "no labelled pixel"),
    ],
)
def test_sample_pixels_errors(images, masks, error, match):
    with pytest.raises(error, match=match):
        sample_pixels(images, masks)


def _cube(crs: str, backing: str) -> xr.DataArray:
    rng = np.random.default_rng(5)
    data = rng.random((3, 4, 20, 24)).astype("float32")
    data[0, :, 2, 3] = np.nan
    data[1, 1, 5, 5] = np.nan
    x = np.arange(24) * 10.0 + 500_005 if crs != "EPSG:4326" else -2 + np.arange(24) * 1e-4
    y = 650_000 - np.arange(20) * 10.0 if crs != "EPSG:4326" else 6 - np.arange(20) * 1e-4
    cube = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={"band": ["B02", "B03", "B04", "B08"], "x": x, "y": y, "time": [0, 1, 2]},
    ).rio.write_crs(crs)
    if backing == "dask":
        cube = cube.chunk({"time": 1, "band": 2, "y": 7, "x": 10})
    return cube


@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:4326"])
def test_predict_scene_dask_equals_numpy(crs):
    rng = np.random.default_rng(0)
    X = rng.random((300, 4)).astype("float32")
    y = rng.integers(0, 3, 300)
    rf = make_random_forest(n_estimators=5, random_state=0).fit(X, y)
    eager = predict_scene(rf, _cube(crs, "numpy"), batch_pixels=97)
    lazy = predict_scene(rf, _cube(crs, "dask"))
    assert lazy.chunks is not None and eager.chunks is None
    assert lazy.dims == ("time", "y", "x") and lazy.dtype == np.uint8
    xr.testing.assert_identical(eager, lazy.compute())
    assert eager.rio.crs.to_string() == crs
    assert eager.values[0, 2, 3] == 255 and eager.values[1, 5, 5] == 255
    flat = _cube(crs, "numpy").isel(time=2).transpose("y", "x", "band").values.reshape(-1, 4)
    np.testing.assert_array_equal(eager.isel(time=2).values.reshape(-1), rf.predict(flat))


def test_predict_scene_band_checks():
    sam = SpectralAngleMapper().fit(np.eye(3), [0, 1, 2])
    cube = _cube("EPSG:32630", "numpy")
    with pytest.raises(BandError, match="fitted on 3 bands"):
        predict_scene(sam, cube)
    with pytest.raises(BandError, match=r"lacks bands \['B12'\]"):
        predict_scene(sam, cube, bands=["B02", "B03", "B12"])
    out = predict_scene(sam, cube, bands=["B02", "B03", "B04"])
    assert set(np.unique(out.values)) <= {0, 1, 2, 255}
    with pytest.raises(DimensionError, match="'band' dimension"):
        predict_scene(sam, cube.isel(band=0))


def test_tile_scores_hand_computed():
    truth = np.array([[0, 0, 0, 1], [1, 2, 2, 255]])
    pred = np.array([[0, 0, 1, 1], [2, 2, 0, 0]])
    s = tile_scores(truth, pred)
    # mines: TP 2, FN 1, FP 1 -> acc 2/3, IoU 2/4; built: TP 1, FN 1, FP 1 -> 1/2, 1/3
    # vegetation: TP 1, FN 1, FP 1 -> 1/2, 1/3
    assert s["mine_class_accuracy"] == pytest.approx(2 / 3)
    assert s["mine_iou"] == pytest.approx(0.5)
    assert s["mean_class_accuracy"] == pytest.approx((2 / 3 + 0.5 + 0.5) / 3)
    assert s["mean_iou"] == pytest.approx((0.5 + 1 / 3 + 1 / 3) / 3)


def test_benchmark_table_one_row_per_classifier_and_tile():
    rng = np.random.default_rng(2)
    tiles = {f"T{i}": rng.integers(0, 3, (8, 8)) for i in range(3)}
    results = {
        clf: {name: (t, np.where(rng.random(t.shape) < noise, 2, t)) for name, t in tiles.items()}
        for clf, noise in [("SAM", 0.5), ("RF", 0.2), ("MLP", 0.2), ("CNN", 0.05)]
    }
    table = benchmark_table(results)
    per_tile = table[table["tile"] != "Average"]
    assert len(per_tile) == 12
    assert not per_tile.duplicated(["classifier", "tile"]).any()
    assert (table["tile"] == "Average").sum() == 4
    values = table.iloc[:, 2:].to_numpy()
    assert np.all((values >= 0) & (values <= 1))
    rf = table[table["classifier"] == "RF"]
    assert rf.iloc[-1, 2] == pytest.approx(rf.iloc[:-1, 2].mean())
