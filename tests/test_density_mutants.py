"""Tests for vitseg.density added from mutation testing (docs/mutation.md, issue 20).

Each test pins a value worked out by hand, or an exact error boundary, that a surviving
mutant of vitseg/density.py (second run, after the issue-22 input checks) did not change;
the mutants it kills are named in a comment.
"""

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from shapely.geometry import Point, box

import vitseg.density as density
from vitseg.density import kde_map
from vitseg.errors import ParamsError

X0, Y0 = 600000.0, 700000.0


def _point() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[Point(X0 + 5, Y0 + 5)], crs="EPSG:32630")


# ------------------------------------------------------------------------ size limits


@pytest.mark.parametrize(
    ("kernel", "cells"),
    [("quartic", 9), ("gaussian", 49)],  # reach 1 cell (3 x 3) / 3 sigma = 3 cells (7 x 7)
)
def test_kernel_size_limit_is_inclusive(monkeypatch, kernel, cells):
    # bandwidth = cell size: the kernel and the single point's padded grid both have `cells`
    # cells, so a limit of exactly `cells` passes (> not >=: #5) and one less refuses the
    # kernel (not the grid) with its exact size (reach and (2 r + 1)²: #98, #99, #100, #101,
    # #146, #148, #183)
    monkeypatch.setattr(density, "MAX_CELLS", cells)
    d = kde_map(_point(), bandwidth_m=10, cell_size_m=10, kernel=kernel)
    assert d.size == cells
    assert float(d.sum()) * 1e-4 == pytest.approx(1.0)
    monkeypatch.setattr(density, "MAX_CELLS", cells - 1)
    msg = (
        rf"the kernel \(bandwidth_m=10 over cell_size_m=10\) would have {cells} cells "
        rf"\(at most {cells - 1}\)"
    )
    with pytest.raises(ParamsError, match=msg):
        kde_map(_point(), bandwidth_m=10, cell_size_m=10, kernel=kernel)


def test_default_size_limit_is_fifty_million_cells():
    # a 1 m fine polygon grid (1000 m cells / oversample 1000) 50,000,001 m wide and 1 m high
    # is one cell over the limit; refused before anything is allocated (#0: MAX_CELLS + 1)
    poly = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 1)], crs="EPSG:32630")
    with pytest.raises(ParamsError, match=r"50,000,001 cells \(at most 50,000,000\)"):
        kde_map(
            poly, bandwidth_m=1000, cell_size_m=1000, oversample=1000, weight="area_ha",
            bounds=(0, 0, 50_000_001, 1),
        )  # fmt: skip


# --------------------------------------------------------------------- bounds, kernel


@pytest.mark.parametrize("bounds", [5, object()], ids=["int", "object"])
def test_bounds_without_a_length_are_a_params_error(bounds):
    # len() raises TypeError, which must become the ParamsError (#150: ok_bounds = True)
    with pytest.raises(ParamsError, match="'bounds' must be four finite numbers"):
        kde_map(_point(), bandwidth_m=10, cell_size_m=10, bounds=bounds)


def test_quartic_bandwidth_whose_square_underflows_keeps_the_mass_in_one_cell():
    # bandwidth_m**2 == 0.0: every quartic weight is 0, so the centre weight is set to 1 and
    # the single event stays whole in its cell: 1 event / 0.0001 km² = 1e4, zero elsewhere
    # (#9 `k.sum() != 0`, #42 `k.sum() == 1` divide by 0 and give NaN). numpy's divide
    # warnings from bandwidth_m**2 == 0 are silenced here: only the value is checked.
    with np.errstate(all="ignore"):
        d = kde_map(_point(), bandwidth_m=1e-200, cell_size_m=10)
    expected = np.zeros((3, 3))
    expected[1, 1] = 1e4
    np.testing.assert_array_equal(d.values, expected)
    assert (float(d.x[1]), float(d.y[1])) == (X0 + 5, Y0 + 5)


# --------------------------------------------------------------- rotated raster grids


@pytest.mark.parametrize("chunks", [None, 2], ids=["numpy", "dask"])
def test_events_of_a_rotated_raster_sit_on_their_pixel_centres(chunks):
    # transform (a, b, c, d, e, f) = (10, 2, X0, 3, -10, Y0); event at row 2, column 3:
    # x = X0 + 3.5 * 10 + 2.5 * 2 = X0 + 40, y = Y0 + 3.5 * 3 - 2.5 * 10 = Y0 - 14.5
    # (#91, #177, #200: the row term of x; #137, #201, #213: the column term of y).
    # The 3 x 3 default grid is centred on the event; its pixel is |a e - b d| = 106 m².
    m = np.zeros((4, 5), "uint8")
    m[2, 3] = 1
    da = xr.DataArray(m, dims=("y", "x"))
    if chunks:
        da = da.chunk({"y": chunks})
    da = da.rio.write_crs("EPSG:32630").rio.write_transform(Affine(10, 2, X0, 3, -10, Y0))
    d = kde_map(da, bandwidth_m=5, cell_size_m=10, weight="area_ha")
    assert d.x.values.tolist() == [X0 + 30, X0 + 40, X0 + 50]
    assert d.y.values.tolist() == [Y0 - 4.5, Y0 - 14.5, Y0 - 24.5]
    assert d.attrs["total"] == pytest.approx(0.0106)
    assert float(d.sel(x=X0 + 40, y=Y0 - 14.5)) == pytest.approx(106.0)  # 0.0106 ha / 1e-4 km²
    assert float(d.sum()) == pytest.approx(106.0)
