"""The live real path: Earth Search v1 over Ghana. Needs the internet: ``make test-network``.

Skipped by default (marker ``network``); the same code is proven offline by
tests/test_real_path.py against a local STAC API.
"""

from __future__ import annotations

import numpy as np
import pytest

from vitseg import aoi, cloud, cube, periods, predict, stac
from vitseg.constants import S2_BANDS_10
from vitseg.models import create_model

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def kibi_items():
    area = aoi.resolve_aoi("kibi")
    season = periods.parse_period("2021-22")
    items = stac.search_items(
        stac.EARTH_SEARCH, bbox=area.geometry.iloc[0].bounds, datetime=season.datetime,
        max_cloud_pct=30.0, collection="sentinel-2-l2a", bands=(*S2_BANDS_10, "SCL"),
    )  # fmt: skip
    return area, items


def test_earth_search_finds_ghana_tiles(kibi_items):
    _, items = kibi_items
    assert len(items) > 0
    assert all(i.properties.get("proj:epsg") or i.properties.get("proj:code") for i in items)
    assert all(str(i.properties.get("grid:code", "")).startswith("MGRS-3") for i in items)


def test_small_cube_and_prediction_from_earth_search(kibi_items):
    area, items = kibi_items
    day = stac.clearest_day(items)
    lon, lat = area.geometry.iloc[0].centroid.coords[0]
    bbox = (lon - 0.012, lat - 0.012, lon + 0.012, lat + 0.012)  # ~256 px
    c = cube.build_cube(day, bbox=bbox, crs=aoi.choose_crs(area), bands=(*S2_BANDS_10, "SCL"))
    masked = cloud.mask_clouds(c, method="both").sel(band=list(S2_BANDS_10)).isel(time=0).load()
    assert 0.0 < float(np.nanmedian(masked.sel(band="B04"))) < 0.5  # reflectance, not DN
    model = create_model("unet", in_channels=len(S2_BANDS_10), classes=3, encoder="resnet18")
    probs = predict.predict_cube(model, masked, tile=128, overlap=16).compute()
    valid = np.isfinite(probs.values).all(axis=0)
    assert valid.mean() > 0.5
    assert np.allclose(probs.values[:, valid].sum(axis=0), 1.0, atol=1e-3)
