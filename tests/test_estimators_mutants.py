"""Tests for vitseg.estimators (and vitseg.accuracy) added from mutation testing (issue 20).

Every expected value is worked out by hand in the test from the formulas of Olofsson et al.
(2014): ``W_i = N_i / N``, ``p_ij = W_i n_ij / n_i.``, ``U_i = n_ii / n_i.``,
``V(O) = sum W_i^2 U_i (1 - U_i) / (n_i. - 1)``, the producer's accuracy variance of
their eq. 7 and the area variance ``sum W_i^2 p_ik (1 - p_ik) / (n_i. - 1)``.
"""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from pyproj import Transformer
from shapely.geometry import box

from vitseg import accuracy
from vitseg.errors import DimensionError, ParamsError, SampleError
from vitseg.estimators import (
    Z95,
    accuracy_table,
    area_proportions,
    count_ratios,
    estimate_area,
    estimate_zone_areas,
    overall_accuracy,
    overall_count_ratio,
    producers_accuracy,
    users_accuracy,
)

CLS = ["mines", "built", "vegetation"]
# 3 x 3 error matrix (rows map, columns reference): strata of 100, 300 and 600 pixels
# sampled with 20, 30 and 50 points, so W = (0.1, 0.3, 0.6) and the row proportions are
# (0.9, 0.1, 0), (0.1, 0.8, 0.1), (0, 0.12, 0.88).
M3 = pd.DataFrame([[18, 2, 0], [3, 24, 3], [0, 6, 44]], index=CLS, columns=CLS)
AREA3 = [100, 300, 600]
W = (0.1, 0.3, 0.6)
ROWS = ((0.9, 0.1, 0.0), (0.1, 0.8, 0.1), (0.0, 0.12, 0.88))
N_I = (20, 30, 50)


def test_z95_is_the_normal_quantile():
    assert Z95 == 1.96


def test_area_proportions_3x3_by_hand():
    p = area_proportions(M3, AREA3)
    want = [[0.09, 0.01, 0.0], [0.03, 0.24, 0.03], [0.0, 0.072, 0.528]]
    np.testing.assert_allclose(p.to_numpy(), want, rtol=1e-12, atol=1e-15)
    assert list(p.index) == CLS and list(p.columns) == CLS


def test_overall_accuracy_3x3_by_hand():
    oa = overall_accuracy(M3, AREA3)
    est = 0.09 + 0.24 + 0.528
    var = 0.1**2 * 0.9 * 0.1 / 19 + 0.3**2 * 0.8 * 0.2 / 29 + 0.6**2 * 0.88 * 0.12 / 49
    se = math.sqrt(var)
    assert oa["estimate"] == pytest.approx(est, rel=1e-12)
    assert oa["se"] == pytest.approx(se, rel=1e-12)
    assert oa["ci95"] == pytest.approx(1.96 * se, rel=1e-12)
    assert oa["lower"] == pytest.approx(est - 1.96 * se, rel=1e-12)
    assert oa["upper"] == pytest.approx(est + 1.96 * se, rel=1e-12)
    assert oa.name == "overall"
    assert overall_accuracy(M3, AREA3, z=1.0)["ci95"] == pytest.approx(se, rel=1e-12)


def test_users_accuracy_3x3_by_hand_with_and_without_mapped_area():
    u = [0.9, 0.8, 0.88]
    se = [math.sqrt(0.9 * 0.1 / 19), math.sqrt(0.8 * 0.2 / 29), math.sqrt(0.88 * 0.12 / 49)]
    for ua in (users_accuracy(M3, AREA3), users_accuracy(M3)):
        assert ua["estimate"].tolist() == pytest.approx(u, rel=1e-12)
        assert ua["se"].tolist() == pytest.approx(se, rel=1e-12)
        assert ua["lower"].tolist() == pytest.approx(
            [a - 1.96 * s for a, s in zip(u, se, strict=True)]
        )
        assert list(ua.index) == CLS and ua.index.name == "class"


def test_producers_accuracy_3x3_by_hand():
    pa = producers_accuracy(M3, AREA3)
    n_ref = [120.0, 322.0, 558.0]  # N_.j = N * p_.j with N = 1000
    n_map = AREA3
    est = [0.09 / 0.12, 0.24 / 0.322, 0.528 / 0.558]
    se = []
    for j in range(3):
        p, u = est[j], ROWS[j][j]
        term1 = n_map[j] ** 2 * (1 - p) ** 2 * u * (1 - u) / (N_I[j] - 1)
        term2 = p**2 * sum(
            n_map[i] ** 2 * ROWS[i][j] * (1 - ROWS[i][j]) / (N_I[i] - 1) for i in range(3) if i != j
        )
        se.append(math.sqrt(term1 + term2) / n_ref[j])
    # mines, worked out: term1 = 100^2 * 0.25^2 * 0.09 / 19, term2 = 0.75^2 * 300^2 * 0.09 / 29
    assert se[0] == pytest.approx(
        math.sqrt(1e4 * 0.0625 * 0.09 / 19 + 0.5625 * 9e4 * 0.09 / 29) / 120
    )
    assert pa["estimate"].tolist() == pytest.approx(est, rel=1e-12)
    assert pa["se"].tolist() == pytest.approx(se, rel=1e-12)


def test_accuracy_table_3x3_by_hand():
    t = accuracy_table(M3, AREA3)
    assert t["n_points"].tolist() == [20, 30, 50]
    assert t["weight"].tolist() == pytest.approx(list(W), rel=1e-12)
    assert t["users_accuracy"].tolist() == pytest.approx([0.9, 0.8, 0.88])
    assert t["commission_error"].tolist() == pytest.approx([0.1, 0.2, 0.12])
    assert t["omission_error"].tolist() == pytest.approx(
        [1 - 0.09 / 0.12, 1 - 0.24 / 0.322, 1 - 0.528 / 0.558]
    )
    assert t["users_ci95"].iloc[0] == pytest.approx(1.96 * math.sqrt(0.09 / 19))
    assert t["commission_ci95"].tolist() == t["users_ci95"].tolist()
    assert t["omission_ci95"].tolist() == t["producers_ci95"].tolist()
    assert t["producers_ci95"].tolist() == pytest.approx(
        (1.96 * producers_accuracy(M3, AREA3)["se"]).tolist()
    )
    half = accuracy_table(M3, AREA3, z=1.0)
    assert half["users_ci95"].iloc[0] == pytest.approx(math.sqrt(0.09 / 19))
    assert t.index.name == "class"


def test_estimate_area_3x3_by_hand():
    est = estimate_area(M3, AREA3, pixel_area_m2=400.0, z=2.0)  # 20 m pixels: 0.04 ha
    prop = [0.12, 0.322, 0.558]
    se = [
        math.sqrt(sum(W[i] ** 2 * ROWS[i][k] * (1 - ROWS[i][k]) / (N_I[i] - 1) for i in range(3)))
        for k in range(3)
    ]
    # mines: 0.01 * 0.9 * 0.1 / 19 + 0.09 * 0.1 * 0.9 / 29 + 0
    assert se[0] == pytest.approx(math.sqrt(0.0009 / 19 + 0.0081 / 29))
    assert est["mapped_px"].tolist() == AREA3
    assert est["mapped_ha"].tolist() == pytest.approx([4.0, 12.0, 24.0], rel=1e-12)
    assert est["proportion"].tolist() == pytest.approx(prop, rel=1e-12)
    assert est["proportion_se"].tolist() == pytest.approx(se, rel=1e-12)
    assert est["area_px"].tolist() == pytest.approx([120.0, 322.0, 558.0], rel=1e-12)
    assert est["area_px_se"].tolist() == pytest.approx([1000 * s for s in se], rel=1e-12)
    assert est["area_ha"].tolist() == pytest.approx([4.8, 12.88, 22.32], rel=1e-12)
    ha_se = [40 * s for s in se]  # 1000 px * 0.04 ha
    assert est["area_ha_se"].tolist() == pytest.approx(ha_se, rel=1e-12)
    assert est["area_ha_ci95"].tolist() == pytest.approx([2 * s for s in ha_se], rel=1e-12)
    assert est["area_ha_lower"].tolist() == pytest.approx(
        [a - 2 * s for a, s in zip([4.8, 12.88, 22.32], ha_se, strict=True)], rel=1e-12
    )
    assert est["area_ha_upper"].tolist() == pytest.approx(
        [a + 2 * s for a, s in zip([4.8, 12.88, 22.32], ha_se, strict=True)], rel=1e-12
    )
    assert est.index.name == "class"


def test_default_pixel_is_ten_metres():
    est = estimate_area(M3, AREA3)
    assert est["area_ha"].tolist() == pytest.approx([1.2, 3.22, 5.58], rel=1e-12)


def test_a_stratum_with_no_mapped_area_and_no_points_is_left_out():
    # the third class is not on the map and has no sample point: W = (0.25, 0.75, 0)
    m = [[8, 2, 0], [0, 10, 0], [0, 0, 0]]
    area = [25, 75, 0]
    est = estimate_area(m, area, pixel_area_m2=10_000)
    assert est["area_px"].tolist() == pytest.approx([20.0, 80.0, 0.0])
    se = math.sqrt(0.25**2 * 0.8 * 0.2 / 9)
    assert est["proportion_se"].tolist() == pytest.approx([se, se, 0.0])
    oa = overall_accuracy(m, area)
    assert (oa["estimate"], oa["se"]) == pytest.approx((0.95, se))
    pa = producers_accuracy(m, area)
    assert pa["estimate"].iloc[:2].tolist() == pytest.approx([1.0, 0.9375])
    assert np.isnan(pa["estimate"].iloc[2]) and np.isnan(pa["se"].iloc[2])
    # V(P_B) = [0 + P_B^2 * 25^2 * 0.2 * 0.8 / 9] / 80^2
    assert pa["se"].iloc[1] == pytest.approx(0.9375 * 25 * math.sqrt(0.16 / 9) / 80)
    ua = users_accuracy(m, area)
    assert np.isnan(ua["estimate"].iloc[2])


def test_mapped_area_as_a_series_in_another_order():
    area = pd.Series({"vegetation": 600, "mines": 100, "built": 300})
    assert estimate_area(M3, area)["area_px"].tolist() == pytest.approx([120.0, 322.0, 558.0])


def test_a_single_point_stratum_makes_the_overall_se_nan():
    m = [[1, 0], [1, 9]]
    with pytest.warns(UserWarning, match=r"strata \['0'\] have a single sample point"):
        oa = overall_accuracy(m, [10, 90])
    # O = 0.1 * 1 + 0.9 * 0.9 = 0.91, but stratum 0 has one point: V is unknown
    assert oa["estimate"] == pytest.approx(0.91)
    assert np.isnan(oa["se"])


def _zone_sample() -> pd.DataFrame:
    # stratum a (40 px mapped): 4 points, stratum b (60 px): 3 points
    return pd.DataFrame(
        {
            "map_class": ["a", "a", "a", "a", "b", "b", "b"],
            "reference_class": ["a", "a", "b", "a", "b", "b", "a"],
            "zone": ["Z1", "Z2", "Z1", None, "Z1", "Z1", "Z2"],
        }
    )


def test_zone_areas_by_hand():
    out = estimate_zone_areas(_zone_sample(), [40, 60], classes=["a", "b"], pixel_area_m2=100)
    assert out[["zone", "class"]].values.tolist() == [
        ["Z1", "a"],
        ["Z1", "b"],
        ["Z2", "a"],
        ["Z2", "b"],
    ]
    # Z1/a: stratum a y = (1, 0, 0, 0): mean 1/4, s² = 1/4 -> total 40/4 = 10, var 40² (1/4) / 4
    # Z1/b: a y = (0, 0, 1, 0) as above; b y = (1, 1, 0): mean 2/3, s² = 1/3
    #       -> total 10 + 60 * 2/3 = 50, var 100 + 60² (1/3) / 3 = 500
    # Z2/a: a y = (0, 1, 0, 0) -> 10, var 100; b y = (0, 0, 1): 20, var 400 -> 30, var 500
    assert out["n_points"].tolist() == [1, 3, 2, 0]
    assert out["area_px"].tolist() == pytest.approx([10.0, 50.0, 30.0, 0.0], rel=1e-12)
    se = [10.0, math.sqrt(500), math.sqrt(500), 0.0]
    assert out["area_px_se"].tolist() == pytest.approx(se, rel=1e-12)
    assert out["area_ha"].tolist() == pytest.approx([0.1, 0.5, 0.3, 0.0], rel=1e-12)
    assert out["area_ha_se"].tolist() == pytest.approx([s / 100 for s in se], rel=1e-12)
    assert out["area_ha_ci95"].tolist() == pytest.approx([1.96 * s / 100 for s in se])
    assert out["area_ha_lower"].iloc[1] == pytest.approx(0.5 - 1.96 * math.sqrt(500) / 100)
    assert out["area_ha_upper"].iloc[1] == pytest.approx(0.5 + 1.96 * math.sqrt(500) / 100)
    z1 = estimate_zone_areas(_zone_sample(), [40, 60], classes=["a", "b"], z=1.0)
    assert z1["area_ha_ci95"].iloc[0] == pytest.approx(10 * 0.01)  # 10 px se, 0.01 ha


def test_zone_areas_single_point_stratum_and_empty_stratum():
    s = pd.DataFrame(
        {
            "map_class": ["a", "b", "b"],
            "reference_class": ["a", "b", "a"],
            "zone": ["Z", "Z", "Z"],
        }
    )
    with pytest.warns(UserWarning, match="single sample point") as record:
        out = estimate_zone_areas(s, [10, 30, 0], classes=["a", "b", "c"])
    assert [w.category for w in record] == [UserWarning]  # no numpy 'ddof' RuntimeWarning
    # a: 10 * 1 + 30 * 1/2 = 25 px; the one-point stratum a has no variance: NaN
    assert out["area_px"].tolist() == pytest.approx([25.0, 15.0, 0.0])
    assert np.isnan(out["area_px_se"]).all()


def test_zone_areas_without_any_zone_is_an_empty_table():
    s = _zone_sample().assign(zone=None)
    out = estimate_zone_areas(s, [40, 60], classes=["a", "b"])
    assert out.empty


def test_count_ratios_and_overall_count_ratio_by_hand():
    r = count_ratios(M3)
    assert r["users_accuracy"].tolist() == pytest.approx([18 / 20, 24 / 30, 44 / 50])
    assert r["producers_accuracy"].tolist() == pytest.approx([18 / 21, 24 / 32, 44 / 47])
    assert r["commission_error"].tolist() == pytest.approx([2 / 20, 6 / 30, 6 / 50])
    assert r["omission_error"].tolist() == pytest.approx([3 / 21, 8 / 32, 3 / 47])
    assert r.index.name == "class" and list(r.index) == CLS
    assert overall_count_ratio(M3) == pytest.approx(86 / 100)
    assert overall_count_ratio(M3.to_numpy()) == pytest.approx(0.86)
    # an empty row or column gives NaN, not an error
    r0 = count_ratios([[2, 0], [0, 0]])
    assert r0["users_accuracy"].iloc[0] == 1.0 and np.isnan(r0["users_accuracy"].iloc[1])
    assert np.isnan(r0["producers_accuracy"].iloc[1])


def test_accuracy_reexports_the_estimators():
    assert accuracy.estimate_area is estimate_area
    assert accuracy.Z95 == 1.96


def test_square_matrix_with_rows_and_columns_in_another_order_is_refused():
    m = pd.DataFrame([[8, 2], [0, 10]], index=["a", "b"], columns=["b", "a"])
    with pytest.raises(DimensionError, match="same classes in rows"):
        estimate_area(m, [25, 75])


def test_mapped_area_may_be_hectares_or_shares_below_one():
    # the weights only need the ratio of the strata: 0.1/0.3/0.6 gives what 100/300/600 gives
    p = area_proportions(M3, [0.1, 0.3, 0.6])
    np.testing.assert_allclose(p.sum(axis=0), [0.12, 0.322, 0.558], rtol=1e-12)
    assert estimate_area(M3, [0.1, 0.3, 0.6])["area_px"].tolist() == pytest.approx(
        [0.12, 0.322, 0.558]
    )


def test_users_accuracy_without_mapped_area():
    # a class without sample points: NaN (found by mutation testing: it raised SampleError)
    ua = users_accuracy([[5, 1], [0, 0]])
    assert ua["estimate"].iloc[0] == pytest.approx(5 / 6)
    assert ua["se"].iloc[0] == pytest.approx(math.sqrt(5 / 6 * 1 / 6 / 5))
    assert np.isnan(ua["estimate"].iloc[1]) and np.isnan(ua["se"].iloc[1])
    # a class with one point still warns that its standard error is NaN
    with pytest.warns(UserWarning, match=r"strata \['1'\] have a single sample point"):
        one = users_accuracy([[5, 1], [0, 1]])
    assert one["estimate"].tolist() == pytest.approx([5 / 6, 1.0])
    assert np.isnan(one["se"].iloc[1])


@pytest.mark.parametrize("kwargs", [{"z": np.inf}, {"pixel_area_m2": np.inf}, {"z": True}])
def test_infinite_or_boolean_z_and_pixel_area_are_refused(kwargs):
    with pytest.raises(ParamsError, match="must be a finite number > 0"):
        estimate_area(M3, AREA3, **kwargs)


def test_producers_accuracy_does_not_depend_on_the_unit_of_mapped_area():
    # N_.j = (0.12, 0.322, 0.558) with shares: still estimated, same estimate and se as pixels
    shares = producers_accuracy(M3, [0.1, 0.3, 0.6])
    pixels = producers_accuracy(M3, AREA3)
    np.testing.assert_allclose(shares[["estimate", "se"]], pixels[["estimate", "se"]], rtol=1e-12)
    assert shares["estimate"].iloc[0] == pytest.approx(0.75)


def test_producers_accuracy_of_a_class_seen_only_in_the_reference():
    # class c is not on the map (N_c = 0, no points) but 1 of 10 'a' points is c:
    # N_.c = 25 * 0.1 = 2.5 > 0, P_c = 0 / 2.5 = 0 and both variance terms are 0
    m = [[8, 1, 1], [0, 10, 0], [0, 0, 0]]
    pa = producers_accuracy(m, [25, 75, 0])
    assert (pa["estimate"].iloc[2], pa["se"].iloc[2]) == (0.0, 0.0)


def test_a_stratum_of_two_points_has_a_standard_error():
    # U_a = 1/2 with n_a. = 2: V = 0.5 * 0.5 / (2 - 1) = 0.25
    ua = users_accuracy([[1, 1], [0, 5]], [50, 50])
    assert ua["se"].tolist() == pytest.approx([0.5, 0.0])
    # O = 0.5 * 0.5 + 0.5 * 1: V(O) = 0.5^2 * 0.25 / 1
    oa = overall_accuracy([[1, 1], [0, 5]], [50, 50])
    assert (oa["estimate"], oa["se"]) == pytest.approx((0.75, 0.25))


def test_a_single_point_in_an_unmapped_stratum_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = estimate_area([[1, 0], [0, 5]], [0, 10])
    assert est["area_px"].tolist() == pytest.approx([0.0, 10.0])


def test_the_single_point_warning_points_at_the_caller():
    with pytest.warns(UserWarning, match="single sample point") as record:
        estimate_area([[1, 0], [1, 9]], [10, 90])
    assert record[0].filename == __file__


def test_strata_of_less_than_one_unit_of_area_are_checked_like_any_other():
    with pytest.raises(SampleError, match=r"map classes \['1'\] have mapped area but no sample"):
        estimate_area([[5, 1], [0, 0]], [0.5, 0.5])
    with pytest.warns(UserWarning, match=r"strata \['0'\] have a single sample point"):
        estimate_area([[1, 0], [1, 9]], [0.1, 0.9])


def test_zone_areas_leave_out_an_unmapped_stratum_with_one_point():
    # stratum c has no mapped area (N_c = 0) but one point: it adds nothing, not a NaN
    s = pd.DataFrame(
        {
            "map_class": ["a", "a", "b", "b", "c"],
            "reference_class": ["a", "b", "b", "b", "a"],
            "zone": ["Z"] * 5,
        }
    )
    out = estimate_zone_areas(s, [10, 30, 0], classes=["a", "b", "c"])
    # a: 10 * 1/2 = 5 px, var = 10^2 * (1/2) / 2 = 25; b: 10 * 1/2 + 30 * 1 = 35, var 25
    assert out["area_px"].tolist() == pytest.approx([5.0, 35.0, 0.0])
    assert out["area_px_se"].tolist() == pytest.approx([5.0, 5.0, 0.0])
    assert out["n_points"].tolist() == [2, 3, 0]


# ------------------------------------------------ vitseg.accuracy: design, sample, sheet
def test_sample_size_defaults_normalising_and_bounds():
    # default S(O) = 0.01: one stratum with U = 0.9, S = 0.3 -> (0.3 / 0.01)^2 = 900
    assert accuracy.sample_size([1.0], [0.9]) == 900
    # weights are normalised: (2, 2) is (0.5, 0.5) -> (0.3 / 0.03)^2 = 100
    assert accuracy.sample_size([2, 2], [0.9, 0.9], target_se=0.03) == 100
    # a zero weight is allowed: S = 0.3 in the only weighted stratum
    assert accuracy.sample_size([0, 1], [0.5, 0.9], target_se=0.03) == 100
    # U = 0 and U = 1 are allowed (S = 0): nothing to sample
    assert accuracy.sample_size([0.5, 0.5], [0.0, 1.0], target_se=0.1) == 0
    # population of one pixel: 0.25 / (0.25 + 0.25 / 1) = 0.5 -> 1
    assert accuracy.sample_size([1], [0.5], target_se=0.5, population=1) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": [0, 0], "users_accuracy": [0.9, 0.9]}, "not all 0"),
        ({"weights": [1], "users_accuracy": [0.9], "population": 0}, "'population' must be"),
        ({"weights": [1], "users_accuracy": [-0.1]}, r"lie in \[0, 1\]"),
        ({"weights": [1, np.nan], "users_accuracy": [0.9, 0.9]}, "'weights' must be finite"),
    ],
)
def test_sample_size_refuses(kwargs, match):
    with pytest.raises(ParamsError, match=match):
        accuracy.sample_size(**kwargs)


def test_allocate_edges_by_hand():
    # proportional: floor(10 * 1/4) = 2, floor(10 * 3/4) = 7; no minimum by default
    assert accuracy.allocate(10, [1, 3]).tolist() == [2, 7]
    assert accuracy.allocate(10, [0, 1]).tolist() == [0, 10]
    assert accuracy.allocate(0, [1, 1]).tolist() == [0, 0]
    assert accuracy.allocate(5, [1]).tolist() == [5]
    # names come from a Series; a list gets 0..k-1
    named = accuracy.allocate(10, pd.Series([1, 3], index=["a", "b"]))
    assert named.index.tolist() == ["a", "b"] and named.name == "n_points"
    assert accuracy.allocate(10, [1, 3]).index.tolist() == [0, 1]
    # gallwey: two strata share half each; one stratum gets the largest share only
    assert accuracy.allocate(10, [1, 3], method="gallwey").tolist() == [5, 5]
    assert accuracy.allocate(10, [1], method="gallwey").tolist() == [5]
    assert accuracy.allocate(10, [1, 2, 3], method="gallwey", largest_share=1).tolist() == [
        0,
        0,
        10,
    ]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((-1, [1]), {}, "need n_total >= 0"),
        ((5, []), {}, "at least one stratum"),
        ((10, [1, 1]), {"method": "gallwey", "largest_share": 0}, r"in \(0, 1\]"),
        ((10, [1, 1]), {"method": "gallwey", "largest_share": 1.5}, r"in \(0, 1\]"),
    ],
)
def test_allocate_refuses(args, kwargs, match):
    with pytest.raises(ParamsError, match=match):
        accuracy.allocate(*args, **kwargs)


def _tiny_map():
    # 2 x 3 map of 10 m pixels in UTM 30N; no 'built' pixel
    data = np.array([[0, 0, 2], [2, 2, 255]], "uint8")
    x = 600_000 + (np.arange(3) + 0.5) * 10
    y = 700_000 - (np.arange(2) + 0.5) * 10
    da = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x})
    return da.rio.write_crs("EPSG:32630")


def test_a_class_without_pixels_may_be_asked_for_zero_points():
    s = accuracy.stratified_sample(_tiny_map(), n_per_class={"mines": 1, "vegetation": 1}, seed=0)
    assert s["map_class"].tolist() == ["mines", "vegetation"]


def test_too_few_pixels_warning_points_at_the_caller():
    with pytest.warns(UserWarning, match="has only 2 pixels") as record:
        s = accuracy.stratified_sample(_tiny_map(), n_per_class=[3, 0, 0], seed=0)
    assert record[0].filename == __file__
    assert s[["row", "col"]].values.tolist() == [[0, 0], [0, 1]]


def test_zone_column_follows_the_reference_column(tmp_path):
    zones = gpd.GeoDataFrame(
        {"district": ["all"]}, geometry=[box(599_000, 699_000, 601_000, 701_000)], crs=32630
    )
    s = accuracy.stratified_sample(
        _tiny_map(), n_per_class=[1, 0, 1], seed=0, zones=zones, zone_col="district"
    )
    cols = ["point_id", "map_class", "map_code", "row", "col", "x", "y"]
    assert list(s.columns) == [*cols, "reference_class", "district", "geometry"]
    assert s["district"].tolist() == ["all", "all"]
    # the sheet puts lon/lat right after x/y, before the zone, even when the sample has no
    # reference column yet (it is then added last)
    accuracy.write_sample(s.drop(columns="reference_class"), tmp_path / "z.gpkg")
    sheet = pd.read_csv(tmp_path / "z.csv")
    assert list(sheet.columns)[:7] == ["point_id", "map_class", "x", "y", "lon", "lat", "district"]


def test_sheet_columns_and_lon_lat_by_hand(tmp_path):
    s = accuracy.stratified_sample(_tiny_map(), n_per_class=[1, 0, 0], seed=0)
    accuracy.write_sample(s, tmp_path / "s.gpkg")
    sheet = pd.read_csv(tmp_path / "s.csv")
    assert list(sheet.columns) == [
        "point_id",
        "map_class",
        "x",
        "y",
        "lon",
        "lat",
        "reference_class",
        "interpreter",
        "labelled_at",
        "map_revealed",
    ]
    x, y = s.loc[0, "x"], s.loc[0, "y"]
    lon, lat = Transformer.from_crs(32630, 4326, always_xy=True).transform(x, y)
    assert (sheet.loc[0, "lon"], sheet.loc[0, "lat"]) == (round(lon, 7), round(lat, 7))


def test_sheet_of_an_old_sample_or_one_without_reference(tmp_path):
    s = accuracy.stratified_sample(_tiny_map(), n_per_class=[1, 0, 1], seed=0)
    # an older vitseg named the column 'reference': it becomes reference_class
    old = s.rename(columns={"reference_class": "reference"}).assign(reference=["mines", ""])
    accuracy.write_sample(old, tmp_path / "old.gpkg")
    sheet = pd.read_csv(tmp_path / "old.csv", keep_default_na=False)
    assert "reference" not in sheet.columns
    assert sheet["reference_class"].tolist() == ["mines", ""]
    # no reference column at all: a blank one is added
    accuracy.write_sample(s.drop(columns="reference_class"), tmp_path / "none.gpkg")
    sheet = pd.read_csv(tmp_path / "none.csv", keep_default_na=False)
    assert sheet["reference_class"].tolist() == ["", ""]
    # a 'reference' column beside reference_class is a column like any other
    accuracy.write_sample(s.assign(reference=["a note", ""]), tmp_path / "both.gpkg")
    sheet = pd.read_csv(tmp_path / "both.csv", keep_default_na=False)
    assert sheet["reference"].tolist() == ["a note", ""]
    assert sheet["reference_class"].tolist() == ["", ""]
