"""Tests for vitseg.estimators: Olofsson et al. (2014) accuracy and area estimators."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401

from vitseg.errors import (
    DimensionError,
    ParamsError,
    SampleError,
)
from vitseg.estimators import (
    accuracy_table,
    area_proportions,
    count_ratios,
    error_matrix,
    estimate_area,
    estimate_zone_areas,
    overall_accuracy,
    overall_count_ratio,
    producers_accuracy,
    users_accuracy,
)

# Olofsson et al. (2014) worked example: strata = map classes, 30 m pixels (0.09 ha).
OLOFSSON_CLASSES = ["deforestation", "forest_gain", "stable_forest", "stable_non_forest"]
OLOFSSON_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
OLOFSSON_MAPPED_PX = [200_000, 150_000, 3_200_000, 6_450_000]


@pytest.fixture
def olofsson():
    return pd.DataFrame(OLOFSSON_COUNTS, index=OLOFSSON_CLASSES, columns=OLOFSSON_CLASSES)


# ------------------------------------------------------------------- estimators
def test_error_matrix_rows_map_columns_reference():
    s = pd.DataFrame(
        {
            "map_class": ["mines", "mines", "mines", "built", "vegetation"],
            "reference_class": ["mines", "built", "built", "built", "mines"],
        }
    )
    m = error_matrix(s)
    assert m.index.name == "map" and m.columns.name == "reference"
    assert m.to_numpy().tolist() == [[1, 2, 0], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(SampleError, match="not classes"):
        error_matrix(s.assign(reference_class=["mines", "water", "x", "built", "built"]))


def test_two_classes_hand_computed():
    # strata: A 25 px mapped, 10 points (8 A, 2 B); B 75 px, 10 points (all B)
    m = pd.DataFrame([[8, 2], [0, 10]], index=["A", "B"], columns=["A", "B"])
    area = {"A": 25, "B": 75}
    p = area_proportions(m, area).to_numpy()
    np.testing.assert_allclose(p, [[0.2, 0.05], [0.0, 0.75]])
    oa = overall_accuracy(m, area)
    assert oa["estimate"] == pytest.approx(0.95)
    # V = 0.25^2 * 0.8 * 0.2 / 9 + 0 = 0.00111...
    assert oa["se"] == pytest.approx(math.sqrt(0.0625 * 0.16 / 9))
    assert oa["ci95"] == pytest.approx(1.96 * oa["se"])
    ua = users_accuracy(m, area)
    assert ua["estimate"].tolist() == pytest.approx([0.8, 1.0])
    assert ua.loc["A", "se"] == pytest.approx(math.sqrt(0.16 / 9))
    pa = producers_accuracy(m, area)
    # P_A = 0.2 / 0.2 = 1; P_B = 0.75 / 0.8 = 0.9375
    assert pa["estimate"].tolist() == pytest.approx([1.0, 0.9375])
    # V(P_B) = 1/N_.B^2 [N_B^2 (1-P_B)^2 * 0 + P_B^2 * N_A^2 * 0.2*0.8/9], N_.B = 80
    assert pa.loc["B", "se"] == pytest.approx(math.sqrt(0.9375**2 * 625 * 0.16 / 9) / 80)
    assert pa.loc["A", "se"] == pytest.approx(0.0)
    area_est = estimate_area(m, area, pixel_area_m2=10_000)
    assert area_est["area_px"].tolist() == pytest.approx([20.0, 80.0])
    assert area_est["area_ha"].tolist() == pytest.approx([20.0, 80.0])
    se = math.sqrt(0.0625 * 0.16 / 9) * 100
    assert area_est["area_px_se"].tolist() == pytest.approx([se, se])
    table = accuracy_table(m, area)
    assert table["commission_error"].tolist() == pytest.approx([0.2, 0.0])
    assert table["omission_error"].tolist() == pytest.approx([0.0, 0.0625])
    assert table["n_points"].tolist() == [10, 10]


def test_three_classes_unequal_strata_plain_vs_weighted():
    # rows map, cols reference; strata 10 %, 30 %, 60 % of 1000 px
    m = pd.DataFrame(
        [[18, 2, 0], [3, 24, 3], [0, 6, 44]],
        index=["mines", "built", "vegetation"],
        columns=["mines", "built", "vegetation"],
    )
    area = [100, 300, 600]
    est = estimate_area(m, area)
    # p_.mines = 0.1*18/20 + 0.3*3/30 + 0 = 0.09 + 0.03 = 0.12 -> 120 px
    # p_.built = 0.1*2/20 + 0.3*24/30 + 0.6*6/50 = 0.01 + 0.24 + 0.072 = 0.322
    # p_.veg = 0 + 0.3*3/30 + 0.6*44/50 = 0.03 + 0.528 = 0.558
    assert est["area_px"].tolist() == pytest.approx([120, 322, 558])
    assert est["area_px"].sum() == pytest.approx(1000)
    assert est["mapped_ha"].tolist() == pytest.approx([1, 3, 6])  # 10 m pixels
    oa = overall_accuracy(m, area)["estimate"]
    assert oa == pytest.approx(0.09 + 0.24 + 0.528)
    plain = count_ratios(m)
    assert overall_count_ratio(m) == pytest.approx(86 / 100)
    assert plain.loc["mines", "producers_accuracy"] == pytest.approx(18 / 21)
    weighted = producers_accuracy(m, area)
    assert weighted.loc["mines", "estimate"] == pytest.approx(0.09 / 0.12)
    assert weighted.loc["vegetation", "estimate"] == pytest.approx(0.528 / 0.558)


def test_olofsson_2014_example(olofsson):
    area = dict(zip(OLOFSSON_CLASSES, OLOFSSON_MAPPED_PX, strict=True))
    # their Table of estimated area proportions (4 decimals)
    p = area_proportions(olofsson, area).to_numpy()
    expected_p = [
        [0.0176, 0.0000, 0.0013, 0.0011],
        [0.0000, 0.0110, 0.0016, 0.0024],
        [0.0019, 0.0000, 0.2967, 0.0213],
        [0.0040, 0.0020, 0.0179, 0.6212],
    ]
    np.testing.assert_allclose(p, expected_p, atol=5e-5)
    oa = overall_accuracy(olofsson, area)
    assert round(oa["estimate"], 2) == 0.95 and round(oa["ci95"], 2) == 0.02
    table = accuracy_table(olofsson, area)
    assert table["users_accuracy"].round(2).tolist() == [0.88, 0.73, 0.93, 0.96]
    assert table["users_ci95"].round(2).tolist() == [0.07, 0.10, 0.04, 0.02]
    assert table["producers_accuracy"].round(2).tolist() == [0.75, 0.85, 0.93, 0.96]
    # the paper prints 0.21 and 0.03 for these two intervals (others differ by rounding)
    assert table["producers_ci95"].round(2).tolist()[0] == 0.21
    assert table["producers_ci95"].round(2).tolist()[2] == 0.03
    # areas in ha with 95 % half-widths: 30 m pixels are 0.09 ha
    est = estimate_area(olofsson, area, pixel_area_m2=900)
    assert est["area_ha"].round().tolist() == [21158, 11686, 285770, 581386]
    assert est["area_ha_ci95"].round().tolist() == [6158, 3756, 15510, 16282]
    assert est["mapped_ha"].tolist() == [18_000, 13_500, 288_000, 580_500]
    assert est["area_px"].round().iloc[0] == 235_086


def test_perfect_map_estimates_equal_mapped_areas():
    m = pd.DataFrame(np.diag([30, 40, 50]), index=list("abc"), columns=list("abc"))
    area = [1234, 5678, 91011]
    est = estimate_area(m, area)
    np.testing.assert_allclose(est["area_px"], area)
    np.testing.assert_allclose(est["area_px_se"], 0)
    assert overall_accuracy(m, area)["estimate"] == 1.0
    np.testing.assert_allclose(producers_accuracy(m, area)["estimate"], 1.0)


def test_zone_estimates_add_up_and_match_single_zone(olofsson):
    rows = []
    for i, map_c in enumerate(OLOFSSON_CLASSES):
        for j, ref_c in enumerate(OLOFSSON_CLASSES):
            rows += [(map_c, ref_c)] * OLOFSSON_COUNTS[i][j]
    sample = pd.DataFrame(rows, columns=["map_class", "reference_class"])
    sample["zone"] = np.where(np.arange(len(sample)) % 3 == 0, "north", "south")
    kw = {"classes": OLOFSSON_CLASSES}
    total = estimate_area(olofsson, OLOFSSON_MAPPED_PX)
    by_zone = estimate_zone_areas(sample, OLOFSSON_MAPPED_PX, **kw)
    summed = by_zone.groupby("class")["area_px"].sum().reindex(OLOFSSON_CLASSES)
    np.testing.assert_allclose(summed.to_numpy(), total["area_px"].to_numpy())
    one = estimate_zone_areas(sample.assign(zone="all"), OLOFSSON_MAPPED_PX, **kw)
    np.testing.assert_allclose(one["area_px"], total["area_px"])
    np.testing.assert_allclose(one["area_px_se"], total["area_px_se"])
    with pytest.raises(SampleError, match="no zone column 'district'"):
        estimate_zone_areas(sample, OLOFSSON_MAPPED_PX, zone_col="district", **kw)


@pytest.mark.parametrize(
    ("matrix", "area", "match"),
    [
        ([[5, 1], [0, 0]], [10, 10], r"map classes \['1'\] have mapped area but no sample"),
        ([[5, 1], [0, 3]], [10], "needs 2 values"),
        ([[5, 1], [0, 3]], [0, 0], "not all 0"),
        ([[5, 1, 0], [0, 3, 1]], [1, 1], "square"),
    ],
)
def test_estimator_errors(matrix, area, match):
    with pytest.raises((SampleError, DimensionError), match=match):
        estimate_area(np.array(matrix), area)


def test_single_point_stratum_warns_and_gives_nan_se():
    with pytest.warns(UserWarning, match="single sample point"):
        est = estimate_area([[1, 0], [1, 9]], [10, 90])
    assert np.isnan(est["area_px_se"]).all()


# ------------------------------------------------- bad input, round 2 (issue 22)

CLS3 = ["mines", "built", "vegetation"]


def _m3(cell=None):
    m = pd.DataFrame([[8, 1, 1], [1, 8, 1], [1, 1, 8]], index=CLS3, columns=CLS3, dtype=float)
    if cell is not None:
        m.loc["built", "built"] = cell
    return m


@pytest.mark.parametrize("fn", [estimate_area, accuracy_table, overall_accuracy])
@pytest.mark.parametrize(
    ("cell", "area", "match"),
    [
        # a NaN count dropped the whole 'built' stratum (proportions summed to 0.9)
        (np.nan, [10, 10, 80], r"finite and >= 0.*'built' / reference 'built': nan"),
        (np.inf, [10, 10, 80], r"'built' / reference 'built': inf"),
        (-1, [10, 10, 80], r"'built' / reference 'built': -1"),
        # NaN / inf mapped areas gave all-NaN tables
        (None, [10, np.nan, 80], r"mapped_area' must be finite and >= 0.*'built': nan"),
        (None, {"mines": np.inf, "built": 10, "vegetation": 80}, r"'mines': inf"),
        (None, [10, -5, 80], r"'built': -5"),
    ],
)
def test_nan_inf_negative_counts_and_areas_name_the_class(fn, cell, area, match):
    with pytest.raises(SampleError, match=match):
        fn(_m3(cell), area)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pixel_area_m2": -100.0}, r"'pixel_area_m2' must be a finite number > 0; got -100"),
        ({"pixel_area_m2": 0}, "'pixel_area_m2' must be"),
        ({"pixel_area_m2": np.nan}, "'pixel_area_m2' must be"),
        ({"z": -1.96}, r"'z' must be a finite number > 0; got -1\.96.*1\.96"),
        ({"z": np.nan}, "'z' must be"),
    ],
)
def test_pixel_area_and_z_must_be_positive(kwargs, match):
    with pytest.raises(ParamsError, match=match):
        estimate_area(_m3(), [10, 10, 80], **kwargs)
    if "z" in kwargs:
        for fn in (accuracy_table, overall_accuracy, users_accuracy, producers_accuracy):
            with pytest.raises(ParamsError, match=match):
                fn(_m3(), [10, 10, 80], **kwargs)


def test_valid_matrix_still_sums_to_one_and_bad_shapes():
    est = estimate_area(_m3(), [10, 10, 80], pixel_area_m2=100)
    assert est["proportion"].sum() == pytest.approx(1.0)
    assert est["area_px"].sum() == pytest.approx(100.0)
    with pytest.raises(DimensionError, match="2-D"):
        estimate_area(np.array([1, 2]), [1, 1])
    with pytest.raises(DimensionError, match="empty"):
        estimate_area(np.zeros((0, 0)), [])
    with pytest.raises(SampleError, match="numeric counts"):
        estimate_area(pd.DataFrame([["a", 1], [0, 1]]), [1, 1])
