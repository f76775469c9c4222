"""Simulated Sentinel-2 L2A scenes and a local static STAC catalog (the offline demo).

No real Sentinel-2 imagery of Ghana's mining areas can be downloaded offline, so the demo
and the tests run the real code path on *simulated* scenes written here. The vector side
is real: the mining class of each box is the 135 hand-drawn artisanal-mine polygons of the
asm-map project (``vitseg/data/asm_ground_truth_ghana.geojson``); everything else
(rivers, roads, settlements, fields, clouds) is simulated around them.

What is written (:func:`write_catalog`)
---------------------------------------
``root/catalog.json`` -> ``root/sentinel-2-l2a/collection.json`` -> one item per box and
date, ``root/sentinel-2-l2a/<id>/<id>.json``, with Earth Search v1 asset keys (``blue``,
``green``, ``red``, ``rededge1..3``, ``nir``, ``nir08``, ``swir16``, ``swir22``, ``scl``),
``eo:bands`` (``name`` = ``B02``...), ``raster:bands`` (scale 1e-4, offset -0.1 from
processing baseline 04.00 and 0 before, nodata 0, uint16), ``proj:epsg`` *and*
``proj:code``, ``proj:transform``/``proj:shape`` per asset, ``s2:processing_baseline``,
``eo:cloud_cover``, MGRS properties. 10 m bands are written at 10 m and 20 m bands (and SCL)
at 20 m, as uint16 (SCL uint8) COGs. Asset hrefs are absolute local paths, so stackstac and
rasterio open them directly. Also ``root/items.json`` (an ItemCollection of all items),
``root/truth/<box>_<season>.tif`` (uint8 class codes on the box's 10 m grid: 0 mines,
1 built, 2 vegetation/other, 255 outside the box) and ``root/labels/<box>_<season>.gpkg``
(polygons, column ``class`` in {"mines", "built"}).

How the scenes are hard in the right way
----------------------------------------
* Mines are the real polygons filled with bare spoil, wet pits and turbid ponds; rivers and
  their tributaries are routed *through* the mine clusters, so pits string along streams.
  In each later season new pits appear along the rivers and some old pits widen.
* Built areas are compact simulated settlements on simulated roads: small roofs (metal,
  rusty metal, concrete) in bare compacted earth with some trees.
* Bare soil and fallow fields are rectangular plots in the farmland and laterite roads.
  Spoil, compacted earth and bare laterite are given overlapping spectra, and every soil-like
  pixel is mixed with a random sub-pixel vegetation fraction, so a per-pixel classifier
  confuses mines, built areas and bare fields; only spatial context (ponds and pits
  strung along rivers vs. roofs in a compact block on a road vs. a rectangular field)
  separates them.
* Each date has its own clouds (soft edges), their shadows (offset by a sun-geometry
  displacement), haze (a smooth additive path-radiance field strongest in the blue),
  a per-band gain/offset change, sensor noise and sometimes a partial-swath no-data edge.
* SCL is consistent with clouds, shadows and water, with realistic errors: thin cloud
  edges missed, some turbid ponds (and a few bright roofs) flagged as cloud, as Gallwey et
  al. report for turbid mining ponds, and a sprinkle of "unclassified".

Modules
-------
:mod:`~vitseg.synthetic.base` (constants, material spectra, seeded noise, grids),
:mod:`~vitseg.synthetic.world` (the land surface of each season),
:mod:`~vitseg.synthetic.render` (one date's reflectance and SCL),
:mod:`~vitseg.synthetic.items` (dates, MGRS names, COGs, Earth Search item documents),
:mod:`~vitseg.synthetic.catalog` (:func:`write_catalog`, :func:`load_truth`) and
:mod:`~vitseg.synthetic.scenes` (:func:`make_scene`, :func:`make_cube`). Every public name
is importable from ``vitseg.synthetic``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from vitseg.synthetic.base import BOXES, SPECTRA, SYNTHETIC_VERSION
from vitseg.synthetic.base import _Grid as _Grid
from vitseg.synthetic.catalog import load_truth, write_catalog
from vitseg.synthetic.items import _collection_dict as _collection_dict
from vitseg.synthetic.items import _footprint as _footprint
from vitseg.synthetic.items import _item_dict as _item_dict
from vitseg.synthetic.items import _write_cog as _write_cog
from vitseg.synthetic.items import season_dates
from vitseg.synthetic.scenes import make_cube, make_scene

__all__ = [
    "BOXES",
    "SPECTRA",
    "SYNTHETIC_VERSION",
    "load_truth",
    "make_cube",
    "make_scene",
    "season_dates",
    "write_catalog",
]


def _source_sha256() -> str:
    """Return the sha256 of the simulator's source: every module of this package, in name order.

    A cache that depends on the generator's code (not only on
    :data:`SYNTHETIC_VERSION`) keys on this rather than on one file.

    Examples
    --------
    >>> len(_source_sha256())
    64
    """
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
