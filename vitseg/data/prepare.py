"""Regenerate the real vector data shipped in ``vitseg/data`` from the shared copies.

Run once by a maintainer (``python -m vitseg.data.prepare /path/to/shared/data``); vitseg
never reads the shared folder at run or test time. What each step changes is listed in
``DATA_LICENSES.md`` at the repository root.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: Tolerance (metres, in EPSG:32630) of shapely's coverage simplification of the OCHA
#: boundaries (Visvalingam-Whyatt on the shared edges, so neighbours keep common borders:
#: no gaps, no overlaps). Measured: at most 132 m Hausdorff displacement, district areas
#: within -0.7 % / +0.8 % of the originals, 75,792 -> 44,987 vertices for ADM2.
SIMPLIFY_TOLERANCE_M = 200.0

_COPIES = {
    "asm_ground_truth_ghana/asm_ground_truth_ghana.geojson": "asm_ground_truth_ghana.geojson",
    "naturalearth_ghana/DERIVED_ne_10m_ghana.geojson": "ne_10m_ghana.geojson",
    "earthrise_ghana_mines/mining_ghana_ashanti_v44px_v2.8_2017-2020.geojson": (
        "earthrise_ashanti_2017_2020.geojson"
    ),
    "earthrise_ghana_mines/ghana_48px_v3.2-3.7ensemble_0.50_2024-01-01_2024-11-15-dissolved-0.6.geojson": (
        "earthrise_ghana_2024.geojson"
    ),
    "earthrise_ghana_mines/LICENSE_repo_MIT.txt": "LICENSE_earthrise_MIT.txt",
    "s2_tiles_westafrica/sentinel_2_test_tiles.geojson": "s2_tiles_westafrica.geojson",
}


def _simplify_admin(src: Path, dst: Path, keep: list[str]) -> None:
    import geopandas as gpd
    import shapely

    gdf = gpd.read_file(src)[[*keep, "geometry"]]
    utm = gdf.to_crs("EPSG:32630")
    # Coverage simplification keeps shared borders identical between neighbours.
    utm["geometry"] = shapely.coverage_simplify(utm.geometry.values, SIMPLIFY_TOLERANCE_M)
    out = utm.to_crs("EPSG:4326")
    # 5 decimals of a degree is about 1 m: far below the simplification tolerance.
    out["geometry"] = shapely.transform(out.geometry.values, lambda xy: np.round(xy, 5))
    out["geometry"] = out.geometry.make_valid()
    doc = json.loads(out.to_json(drop_id=True))
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    dst.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")


def main(shared: str) -> None:
    """Copy and simplify the shared real data into ``vitseg/data``."""
    root = Path(shared)
    for src, name in _COPIES.items():
        shutil.copyfile(root / src, HERE / name)
    ocha = root / "ghana_admin_ocha"
    _simplify_admin(
        ocha / "DERIVED_gha_admbnda_adm2_gss_20210308.geojson",
        HERE / "gha_adm2_simplified.geojson",
        ["ADM2_EN", "ADM2_PCODE", "ADM1_EN", "ADM1_PCODE"],
    )
    _simplify_admin(
        ocha / "DERIVED_gha_admbnda_adm1_gss_20210308.geojson",
        HERE / "gha_adm1_simplified.geojson",
        ["ADM1_EN", "ADM1_PCODE"],
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
