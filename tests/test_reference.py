"""Tests for vitseg.reference: reading filled sheets, sample ids, two interpreters."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from vitseg.accuracy import stratified_sample, write_sample
from vitseg.errors import (
    MissingFileError,
    ParamsError,
    SampleError,
)
from vitseg.estimators import error_matrix
from vitseg.reference import (
    interpreter_agreement,
    merge_interpretations,
    read_reference,
    sample_id,
)

# ------------------------------------------------------------ filled reference file
# 8 points: ids 1-3 mapped mines, 4-5 built, 6-8 vegetation.
MAP_CLASSES = ["mines"] * 3 + ["built"] * 2 + ["vegetation"] * 3
# What the interpreters said (point 3 unreadable, point 7 left blank), in file order.
FILLED = {
    5: "vegetation",
    1: "Mines",
    2: "built",
    3: "Cannot tell",
    4: "1",
    6: "vegetation",
    7: "",
    8: "mines",
}


def _sample(n=8, map_classes=MAP_CLASSES):
    x, y = 600_005 + 10 * np.arange(n), np.full(n, 700_005.0)
    return gpd.GeoDataFrame(
        {
            "point_id": np.arange(1, n + 1),
            "map_class": map_classes[:n],
            "x": x,
            "y": y,
            "reference_class": [""] * n,
        },
        geometry=gpd.points_from_xy(x, y),
        crs="EPSG:32630",
    )


def _filled(labels=FILLED):
    return pd.DataFrame(
        {
            "point_id": list(labels),
            "reference_class": list(labels.values()),
            "interpreter": "ama",
            "labelled_at": "2024-05-01T10:00:00Z",
            "map_revealed": ["false", "true"] * (len(labels) // 2) + ["false"] * (len(labels) % 2),
        }
    )


@pytest.mark.parametrize("file_format", ["csv", "gpkg"])
@pytest.mark.parametrize("sample_from", ["frame", "gpkg"])
def test_read_reference_into_error_matrix(tmp_path, file_format, sample_from):
    sample = _sample()
    if sample_from == "gpkg":
        sample = write_sample(sample, tmp_path / "sample.gpkg")
    filled = _filled()
    path = tmp_path / f"filled.{file_format}"
    if file_format == "csv":
        filled.to_csv(path, index=False)
    else:  # a GeoPackage export, points in another CRS: only the ids count
        gpd.GeoDataFrame(
            filled, geometry=gpd.points_from_xy(filled["point_id"], [0] * 8), crs=4326
        ).to_file(path)
    ref = read_reference(path, sample)
    assert isinstance(ref, gpd.GeoDataFrame)
    assert ref.attrs["n_cannot_tell"] == 2 and ref.attrs["cannot_tell_ids"] == [3, 7]
    assert ref["point_id"].tolist() == [1, 2, 4, 5, 6, 8]  # the sample's order
    assert ref["reference_class"].tolist() == [
        "mines", "built", "built", "vegetation", "vegetation", "mines"
    ]  # fmt: skip
    assert (ref["interpreter"] == "ama").all()
    # file order 5, 1, 2, 3, 4, 6, 7, 8 alternates false, true
    assert ref["map_revealed"].tolist() == [True, False, False, False, True, True]
    # by hand: map mines -> ref (mines, built); built -> (built, vegetation);
    # vegetation -> (vegetation, mines)
    m = error_matrix(ref)
    assert m.to_numpy().tolist() == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]


def test_read_reference_fills_the_written_sheet(tmp_path):
    gpkg = write_sample(_sample(), tmp_path / "sample.gpkg")
    sheet = pd.read_csv(tmp_path / "sample.csv")
    sheet["reference_class"] = [
        "mines",
        "?",
        "mines",
        "built",
        "built",
        "UNKNOWN",
        "",
        "vegetation",
    ]
    sheet.to_csv(tmp_path / "sample.csv", index=False)
    ref = read_reference(tmp_path / "sample.csv", gpkg)
    assert ref.attrs["n_cannot_tell"] == 3
    assert error_matrix(ref).to_numpy().tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]


ROWS = list(FILLED.items())


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (
            [*ROWS, (99, "mines"), (100, "built")],
            r"point ids \[99, 100\] .* not in the sample .* another run\?",
        ),
        ([r for r in ROWS if r[0] not in (5, 6)], r"sample points \[5, 6\] \(2 of 8\) are missing"),
        ([*ROWS, ("2.0", "mines")], r"point ids \[2\] appear more than once"),
        (
            [(i, {4: "water", 6: "gold"}.get(i, c)) for i, c in ROWS],
            r"labels \['gold', 'water'\] \(point_id \[4, 6\]\) are not classes",
        ),
    ],
)
def test_read_reference_errors_name_the_points(tmp_path, rows, match):
    frame = pd.DataFrame(rows, columns=["point_id", "reference_class"])
    frame.to_csv(tmp_path / "filled.csv", index=False)
    with pytest.raises(SampleError, match=match):
        read_reference(tmp_path / "filled.csv", _sample())


def test_read_reference_reports_every_problem_at_once(tmp_path):
    rows = [r for r in ROWS if r[0] != 8] + [(42, "mines"), (1, "mines")]
    pd.DataFrame(rows, columns=["point_id", "reference_class"]).to_csv(
        tmp_path / "filled.csv", index=False
    )
    with pytest.raises(SampleError) as info:
        read_reference(tmp_path / "filled.csv", _sample())
    msg = str(info.value)
    assert "[1] appear more than once" in msg and "[42] of filled.csv" in msg
    assert "sample points [8]" in msg


def test_read_reference_lists_at_most_ten_ids_and_checks_columns(tmp_path):
    sample = _sample(30, ["mines"] * 30)
    pd.DataFrame({"point_id": [1], "reference_class": ["mines"]}).to_csv(
        tmp_path / "one.csv", index=False
    )
    with pytest.raises(SampleError, match=r"\[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, \.\.\.\] \(29 of"):
        read_reference(tmp_path / "one.csv", sample)
    pd.DataFrame({"point_id": [1], "label": ["mines"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SampleError, match=r"lacks columns \['reference_class'\]"):
        read_reference(tmp_path / "bad.csv", sample)
    with pytest.raises(MissingFileError, match=r"nothing\.csv"):
        read_reference(tmp_path / "nothing.csv", sample)


# ------------------------------------------------------- interpretation pages (issue 18)
def _interp_sample():
    m = xr.DataArray(
        np.array([[0, 0, 1, 1], [2, 2, 2, 2], [2, 0, 1, 2]], "uint8"),
        dims=("y", "x"),
        coords={"y": [25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]},
    ).rio.write_crs("EPSG:32630")
    return stratified_sample(m, n_per_class=2, seed=0)


def test_sample_id_same_for_every_form_of_the_sample(tmp_path):
    sample = _interp_sample()
    sid = sample_id(sample)
    assert len(sid) == 12 and int(sid, 16) >= 0
    write_sample(sample, tmp_path / "s.gpkg")
    assert sample_id(gpd.read_file(tmp_path / "s.gpkg")) == sid
    assert sample_id(pd.read_csv(tmp_path / "s.csv")) == sid
    assert sample_id(sample.iloc[::-1]) == sid
    assert sample_id(sample.assign(x=sample["x"] + 0.001)) == sid  # under a centimetre
    assert sample_id(sample.assign(x=sample["x"] + 10)) != sid
    assert sample_id(sample.assign(point_id=sample["point_id"] + 100)) != sid
    assert sample_id(sample.assign(sample_id="custom")) == "custom"
    with pytest.raises(SampleError, match="several ids"):
        sample_id(sample.assign(sample_id=["a", "b"] * 3))


def test_read_reference_refuses_another_samples_export(tmp_path):
    sample = _interp_sample()
    rows = pd.DataFrame(
        {"point_id": sample["point_id"], "reference_class": sample["map_class"],
         "interpreter": "Ama", "notes": ["", "wet pit", "", "", "", ""],
         "sample_id": sample_id(sample)}
    )  # fmt: skip
    rows.to_csv(tmp_path / "ok.csv", index=False)
    ref = read_reference(tmp_path / "ok.csv", sample)
    assert len(ref) == 6 and ref["notes"].iloc[1] == "wet pit"
    rows.assign(sample_id="").to_csv(tmp_path / "blank.csv", index=False)
    assert len(read_reference(tmp_path / "blank.csv", sample)) == 6
    rows.assign(sample_id="0123456789ab").to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(SampleError, match=r"exported for sample_id 0123456789ab but this sample"):
        read_reference(tmp_path / "other.csv", sample)


def test_cohens_kappa_textbook_2x2():
    # Cohen's kappa, the Wikipedia example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no;
    # p_o = 35/50 = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.2 / 0.5 = 0.4

    pairs = [("mines", "mines")] * 20 + [("mines", "vegetation")] * 5
    pairs += [("vegetation", "mines")] * 10 + [("vegetation", "vegetation")] * 15
    a = pd.DataFrame({"point_id": range(50), "reference_class": [p[0] for p in pairs]})
    b = pd.DataFrame({"point_id": range(50), "reference_class": [p[1] for p in pairs]})
    r = interpreter_agreement(a, b)
    assert r["n_common"] == 50 and r["percent_agreement"] == pytest.approx(70.0)
    assert r["kappa"] == pytest.approx(0.4)
    assert r["disagreeing_ids"] == list(range(20, 35))
    assert r["confusion"].loc["mines", "vegetation"] == 5
    assert r["confusion"].loc["vegetation", "mines"] == 10


def test_cohens_kappa_hand_computed_3x3_and_partial_overlap():
    # a in rows, b in columns: [[25, 2, 3], [4, 20, 6], [1, 4, 35]], n = 100
    # p_o = 80/100; rows 30, 30, 40; columns 30, 26, 44
    # p_e = (30*30 + 30*26 + 40*44) / 100^2 = 0.344; kappa = (0.8 - 0.344) / 0.656
    from vitseg.constants import CLASSES

    counts = [[25, 2, 3], [4, 20, 6], [1, 4, 35]]
    la, lb = [], []
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            la += [CLASSES[i]] * n
            lb += [CLASSES[j]] * n
    a = pd.DataFrame({"point_id": [f"k-{i:04d}" for i in range(100)], "reference_class": la})
    b = pd.DataFrame({"point_id": [f"k-{i:04d}" for i in range(100)], "reference_class": lb})
    # b could not tell two more points; a's 'cannot tell' points are absent from a
    b = pd.concat([b, pd.DataFrame({"point_id": ["k-0100", "k-0101"], "reference_class": "built"})])
    r = interpreter_agreement(a, b)
    assert r["kappa"] == pytest.approx((0.8 - 0.344) / 0.656)
    assert (r["n_common"], r["n_only_a"], r["n_only_b"]) == (100, 0, 2)
    assert len(r["disagreeing_ids"]) == 20 and r["disagreeing_ids"][0] == "k-0025"
    assert r["confusion"].to_numpy().tolist() == counts
    same = interpreter_agreement(a, a)
    assert same["kappa"] == pytest.approx(1.0) and same["disagreeing_ids"] == []


def test_merge_interpretations():
    sample = _interp_sample()
    ids = sample["point_id"].tolist()
    a = sample.assign(
        reference_class=["mines", "mines", "built", "vegetation", "vegetation", "mines"]
    )
    a = a.drop(index=5).reset_index(drop=True)  # a could not tell the last point
    b = sample.assign(reference_class=["mines", "built", "built", "vegetation", "mines", "built"])
    b = b.drop(index=0).reset_index(drop=True)  # b could not tell the first
    first = merge_interpretations(a, b)
    assert first["point_id"].tolist() == ids
    assert first["reference_class"].tolist() == [
        "mines", "mines", "built", "vegetation", "vegetation", "built"
    ]  # fmt: skip
    assert first["labelled_by"].tolist() == ["first", "first", "both", "both", "first", "second"]
    assert first.attrs["disagreeing_ids"] == [ids[1], ids[4]]
    assert isinstance(first, gpd.GeoDataFrame) and first.crs == sample.crs
    agreed = merge_interpretations(a, b, how="agreed")
    assert agreed["point_id"].tolist() == [ids[2], ids[3]]
    assert set(agreed["labelled_by"]) == {"both"}
    assert int(error_matrix(agreed).to_numpy().sum()) == 2


@pytest.mark.parametrize(
    ("a", "b", "how", "match"),
    [
        ({"point_id": [1], "reference_class": ["mines"]}, {"point_id": [2], "reference_class": ["mines"]}, "first", "share no labelled point"),
        ({"point_id": [1]}, {"point_id": [1], "reference_class": ["mines"]}, "first", r"interpretation a lacks columns \['reference_class'\]"),
        ({"point_id": [1, 1], "reference_class": ["mines"] * 2}, {"point_id": [1], "reference_class": ["mines"]}, "first", r"labels points \[1\] more than once"),
        ({"point_id": [1], "reference_class": ["quarry"]}, {"point_id": [1], "reference_class": ["mines"]}, "first", r"\['quarry'\] \(point_id \[1\]\)"),
        ({"point_id": [1], "reference_class": ["mines"]}, {"point_id": [1], "reference_class": ["mines"]}, "union", "'how' must be one of"),
    ],
)  # fmt: skip
def test_agreement_and_merge_errors(a, b, how, match):
    error = ParamsError if how == "union" else SampleError
    with pytest.raises(error, match=match):
        if how == "union":
            merge_interpretations(pd.DataFrame(a), pd.DataFrame(b), how=how)
        else:
            interpreter_agreement(pd.DataFrame(a), pd.DataFrame(b))
