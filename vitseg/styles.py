"""Map styles that GIS software shows: raster colour tables and QGIS styles in GeoPackages.

Class and change maps are written with a GDAL colour table and category names
(:func:`vitseg.predict.write_cog` with ``colormap=`` and ``category_names=``): this module
builds them (:func:`class_colormap`, :func:`change_colormap`) without importing
matplotlib. Vector layers (alerts, the accuracy sample, district tables) carry a QGIS
style in the GeoPackage's OGC ``layer_styles`` table (:func:`add_layer_style`), which
QGIS applies when the layer is opened; :func:`categorized_qml`, :func:`graduated_qml`
and :func:`single_qml` write the QML, and :func:`sample_qml`, :func:`alerts_qml` and
:func:`district_qml` are the styles of vitseg's own layers.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import os
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

from vitseg.constants import CLASS_COLORS, CLASSES, IGNORE_INDEX
from vitseg.errors import ParamsError, VectorError

__all__ = [
    "NEW_MINING_COLOR",
    "Colormap",
    "add_layer_style",
    "alerts_qml",
    "categorized_qml",
    "change_colormap",
    "change_colors",
    "class_colormap",
    "district_qml",
    "graduated_qml",
    "layer_styles",
    "sample_qml",
    "single_qml",
    "to_rgba",
    "write_styled_layer",
]

#: ``{code: (r, g, b, a)}``, 0-255 each: a GDAL colour table.
Colormap: TypeAlias = dict[int, tuple[int, int, int, int]]
#: Colour of pixels that became the first class (mines) on change maps.
NEW_MINING_COLOR = "#e41a1c"
#: Colour of classes without an entry in :data:`vitseg.constants.CLASS_COLORS`.
_OTHER = "#999999"
Geometry: TypeAlias = Literal["point", "line", "polygon"]


def to_rgba(color: str | Sequence[float]) -> tuple[int, int, int, int]:
    """Return ``(r, g, b, a)`` in 0-255 for ``"#rrggbb"``, ``"#rrggbbaa"`` or a 3/4-tuple.

    Tuples holding a float, all within [0, 1], are read as matplotlib fractions; others
    as 0-255 integers.

    Raises
    ------
    ParamsError
        For anything else.

    Examples
    --------
    >>> to_rgba("#d95f02"), to_rgba((1.0, 0.5, 0.0)), to_rgba((10, 20, 30, 40))
    ((217, 95, 2, 255), (255, 128, 0, 255), (10, 20, 30, 40))
    """
    import numbers

    if isinstance(color, str):
        h = color.lstrip("#")
        if len(h) in (6, 8) and all(c in "0123456789abcdefABCDEF" for c in h):
            vals = [int(h[i : i + 2], 16) for i in range(0, len(h), 2)]
            return (vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 255)
    elif (
        isinstance(color, Sequence | _ndarray())
        and len(items := list(color)) in (3, 4)
        and all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in items)
    ):
        v = [float(c) for c in items]
        if all(0.0 <= c <= 1.0 for c in v) and any(isinstance(c, float) for c in color):
            v = [c * 255.0 for c in v]
        if all(0.0 <= c <= 255.0 for c in v):
            r, g, b, *a = (round(c) for c in v)
            return (r, g, b, a[0] if a else 255)
    raise ParamsError(
        f"a colour must be '#rrggbb', '#rrggbbaa' or an (r, g, b[, a]) tuple; got {color!r}"
    )


def _ndarray() -> type:
    import numpy as np

    return np.ndarray


def _check_classes(classes: Any, *, max_n: int | None = None) -> list[str]:
    """Class names as a list; a bare string or an empty list is a :class:`ParamsError`."""
    if isinstance(classes, str | bytes) or not isinstance(classes, Iterable):
        raise ParamsError(
            f"classes must be a list of class names, e.g. ['mines', 'built', 'vegetation']; "
            f"got {classes!r}" + (f" (a string is read letter by letter: [{classes!r}])"
                                  if isinstance(classes, str) else "")
        )  # fmt: skip
    names = [str(c) for c in classes]
    if not names:
        raise ParamsError("classes is empty; give at least one class name")
    if max_n is not None and len(names) > max_n:
        raise ParamsError(
            f"a change map holds at most {max_n} classes (its {max_n}x{max_n} codes and the "
            f"no-data code must fit in uint8); got {len(names)}"
        )
    return names


def _check_size(size: Any) -> None:
    import math

    if isinstance(size, bool) or not isinstance(size, int | float) or not math.isfinite(size) \
            or size <= 0:  # fmt: skip
        raise ParamsError(f"size must be a finite number of millimetres > 0; got {size!r}")


def _check_field(field: Any, name: str = "field") -> None:
    if not isinstance(field, str) or not field.strip():
        raise ParamsError(f"{name} must name an attribute of the layer; got {field!r}")


def class_colormap(classes: Sequence[str] = CLASSES) -> Colormap:
    """GDAL colour table of a class map: code ``i`` gets the colour of ``classes[i]``.

    Colours come from :data:`vitseg.constants.CLASS_COLORS` (grey for unknown names).
    The no-data code (255) is left out: it is transparent through the file's nodata.

    Examples
    --------
    >>> class_colormap()
    {0: (217, 95, 2, 255), 1: (117, 112, 179, 255), 2: (27, 158, 119, 255)}
    """
    classes = _check_classes(classes)
    return {i: to_rgba(CLASS_COLORS.get(str(c), _OTHER)) for i, c in enumerate(classes)}


def change_colors(classes: Sequence[str] = CLASSES) -> dict[int, tuple[int, int, int, int]]:
    """Colour of every change code ``from * n + to`` of :func:`vitseg.change.change_map`.

    Stable pixels (``from == to``) take a pale version of their class colour; pixels that
    became the first class (mines) are red (:data:`NEW_MINING_COLOR`); other changes take
    their new class's colour, darkened. :func:`vitseg.plotting.plot_change_map` draws
    with these colours.

    Examples
    --------
    >>> c = change_colors()
    >>> c[6], c[0]  # vegetation -> mines, mines stable
    ((228, 26, 28, 255), (242, 199, 166, 255))
    """
    classes = _check_classes(classes, max_n=15)
    n = len(classes)
    out = {}
    for f in range(n):
        for t in range(n):
            r, g, b, _ = to_rgba(CLASS_COLORS.get(str(classes[t]), _OTHER))
            if f == t:  # pale: 65 % of the way to white
                rgb = [round(255 - 0.35 * (255 - v)) for v in (r, g, b)]
            elif t == 0:
                rgb = list(to_rgba(NEW_MINING_COLOR)[:3])
            else:
                rgb = [round(0.75 * v) for v in (r, g, b)]
            out[f * n + t] = (rgb[0], rgb[1], rgb[2], 255)
    return out


def change_colormap(
    classes: Sequence[str] = CLASSES, *, nodata: int = IGNORE_INDEX
) -> tuple[Colormap, list[str]]:
    """Colour table and category names of a change map (:func:`vitseg.change.change_map`).

    Returns
    -------
    (dict, list of str)
        ``colormap`` (:func:`change_colors`) and ``category_names`` (the labels of
        :func:`vitseg.change.change_legend`, "vegetation -> mines", index = code), ready
        for ``write_cog(codes, path, nodata=255, colormap=..., category_names=...)``.

    Raises
    ------
    ParamsError
        ``classes`` is a string, empty or longer than 15; ``nodata`` is not an integer
        in ``n*n..255`` (a no-data code among the change codes would shift every name
        after it).

    Examples
    --------
    >>> cmap, names = change_colormap()
    >>> len(cmap), names[6]
    (9, 'vegetation -> mines')
    """
    from vitseg.change import change_legend

    classes = _check_classes(classes, max_n=15)
    n = len(classes)
    if isinstance(nodata, bool) or not isinstance(nodata, int) or not n * n <= nodata <= 255:
        raise ParamsError(
            f"nodata must be an integer in {n * n}..255 (outside the {n * n} change codes, "
            f"inside uint8); got {nodata!r}"
        )
    legend = change_legend(classes, nodata=nodata)
    legend = legend[legend["code"] != nodata].sort_values("code")
    return change_colors(classes), [str(v) for v in legend["label"]]


# ----------------------------------------------------------------------------- QML

_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
_SYMBOL_TYPES = {"point": "marker", "line": "line", "polygon": "fill"}


def _rgba_text(color: str | Sequence[float]) -> str:
    return ",".join(str(v) for v in to_rgba(color))


def _options(parent: ET.Element, values: Mapping[str, str]) -> None:
    opts = ET.SubElement(parent, "Option", type="Map")
    for key, val in values.items():
        ET.SubElement(opts, "Option", name=key, type="QString", value=val)


def _symbol(
    parent: ET.Element, name: str, geometry: Geometry, color: str | Sequence[float],
    *, size: float, outline: str | Sequence[float],
) -> None:  # fmt: skip
    sym = ET.SubElement(
        parent, "symbol", type=_SYMBOL_TYPES[geometry], name=name, alpha="1",
        clip_to_extent="1", force_rhr="0",
    )  # fmt: skip
    if geometry == "point":
        cls, values = "SimpleMarker", {
            "name": "circle", "color": _rgba_text(color), "size": f"{size:g}",
            "size_unit": "MM", "outline_color": _rgba_text(outline),
            "outline_style": "solid", "outline_width": "0.2", "outline_width_unit": "MM",
        }  # fmt: skip
    elif geometry == "line":
        cls, values = "SimpleLine", {
            "line_color": _rgba_text(color), "line_width": f"{size:g}",
            "line_width_unit": "MM", "line_style": "solid",
        }  # fmt: skip
    else:
        cls, values = "SimpleFill", {
            "color": _rgba_text(color), "style": "solid", "outline_color": _rgba_text(outline),
            "outline_style": "solid", "outline_width": f"{size:g}", "outline_width_unit": "MM",
        }  # fmt: skip
    layer = ET.SubElement(sym, "layer", attrib={"class": cls, "enabled": "1", "pass": "0",
                                                "locked": "0"})  # fmt: skip
    _options(layer, values)


def _check_geometry(geometry: str) -> None:
    if geometry not in _SYMBOL_TYPES:
        raise ParamsError(f"geometry must be one of {sorted(_SYMBOL_TYPES)}; got {geometry!r}")


def _qml(renderer: ET.Element, label_field: str | None) -> str:
    root = ET.Element("qgis", version="3.28.0", styleCategories="Symbology|Labeling")
    root.append(renderer)
    if label_field:
        labeling = ET.SubElement(root, "labeling", type="simple")
        settings = ET.SubElement(labeling, "settings", calloutType="simple")
        ET.SubElement(
            settings, "text-style", fieldName=label_field, isExpression="0", fontSize="8",
            fontSizeUnit="Point", textColor="0,0,0,255", fontFamily="",
        )  # fmt: skip
        buffer = ET.SubElement(settings, "text-buffer")
        buffer.attrib.update(bufferDraw="1", bufferSize="0.7", bufferColor="255,255,255,255")
        ET.SubElement(settings, "placement", placement="1", dist="1")
    ET.indent(root)
    return _DOCTYPE + ET.tostring(root, encoding="unicode") + "\n"


def single_qml(
    color: str | Sequence[float],
    *,
    geometry: Geometry = "polygon",
    size: float = 0.4,
    outline: str | Sequence[float] = "#232323",
    label_field: str | None = None,
) -> str:
    """QGIS style (QML) drawing every feature with one symbol.

    Parameters
    ----------
    color
        Fill (polygons), marker (points) or line colour, e.g. ``"#e41a1c80"``.
    geometry
        ``"point"``, ``"line"`` or ``"polygon"``.
    size
        Marker diameter, line width or polygon outline width, in millimetres.
    outline
        Outline colour of markers and polygons.
    label_field
        Attribute to label features with (none by default).

    Returns
    -------
    str
        QML text.

    Examples
    --------
    >>> 'type="singleSymbol"' in single_qml("#ff0000")
    True
    """
    _check_geometry(geometry)
    _check_size(size)
    renderer = ET.Element("renderer-v2", type="singleSymbol", symbollevels="0",
                          enableorderby="0", forceraster="0")  # fmt: skip
    symbols = ET.SubElement(renderer, "symbols")
    _symbol(symbols, "0", geometry, color, size=size, outline=outline)
    return _qml(renderer, label_field)


def categorized_qml(
    field: str,
    categories: Mapping[Any, str | Sequence[float]],
    *,
    geometry: Geometry = "point",
    labels: Mapping[Any, str] | None = None,
    size: float = 2.4,
    outline: str | Sequence[float] = "#232323",
    label_field: str | None = None,
) -> str:
    """QGIS style (QML) colouring features by the value of ``field``.

    Parameters
    ----------
    field
        Attribute holding the category.
    categories
        ``{value: colour}`` in legend order.
    geometry
        ``"point"``, ``"line"`` or ``"polygon"``.
    labels
        Legend text per value (default: the value).
    size
        Marker diameter, line width or polygon outline width, in millimetres.
    outline
        Outline colour of markers and polygons.
    label_field
        Attribute to label features with (none by default).

    Returns
    -------
    str
        QML text.

    Raises
    ------
    ParamsError
        No categories (or not a mapping), an empty ``field``, a bad colour, geometry or
        ``size`` (NaN, <= 0).

    Examples
    --------
    >>> qml = categorized_qml("map_class", {"mines": "#d95f02", "built": "#7570b3"})
    >>> 'attr="map_class"' in qml and 'value="mines"' in qml
    True
    """
    _check_geometry(geometry)
    _check_field(field)
    _check_size(size)
    if not isinstance(categories, Mapping):
        raise ParamsError(
            f"categories must map each value of {field!r} to a colour, e.g. "
            f"{{'mines': '#d95f02'}}; got {type(categories).__name__}"
        )
    if not categories:
        raise ParamsError(f"categorized_qml needs at least one category for field {field!r}")
    renderer = ET.Element("renderer-v2", type="categorizedSymbol", attr=field, symbollevels="0",
                          enableorderby="0", forceraster="0")  # fmt: skip
    cats = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for i, (value, color) in enumerate(categories.items()):
        label = (labels or {}).get(value, str(value))
        ET.SubElement(cats, "category", value=str(value), label=str(label), symbol=str(i),
                      render="true")  # fmt: skip
        _symbol(symbols, str(i), geometry, color, size=size, outline=outline)
    return _qml(renderer, label_field)


def graduated_qml(
    field: str,
    breaks: Sequence[float],
    colors: Sequence[str | Sequence[float]],
    *,
    geometry: Geometry = "polygon",
    size: float = 0.26,
    outline: str | Sequence[float] = "#607d8b",
    label_field: str | None = None,
    unit: str = "",
) -> str:
    """QGIS style (QML) colouring features by ranges of a numeric ``field`` (choropleth).

    Parameters
    ----------
    field
        Numeric attribute.
    breaks
        Rising class limits, ``len(colors) + 1`` of them (range ``i`` is
        ``breaks[i]..breaks[i+1]``).
    colors
        One colour per range, light to dark.
    geometry, size, outline, label_field
        As in :func:`categorized_qml`.
    unit
        Text after the numbers in the legend (e.g. ``" ha"``).

    Returns
    -------
    str
        QML text.

    Raises
    ------
    ParamsError
        ``breaks`` not finite numbers, not rising or not one more than ``colors``; no
        colour; an empty ``field``; a bad ``size``.

    Examples
    --------
    >>> 'lower="0" upper="10"' in graduated_qml("mines_ha", [0, 10, 20], ["#ffeeee", "#ff0000"])
    True
    """
    import math
    import numbers

    _check_geometry(geometry)
    _check_field(field)
    _check_size(size)
    if isinstance(breaks, str) or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in breaks
    ):
        raise ParamsError(f"breaks must be numbers; got {breaks!r}")
    b = [float(v) for v in breaks]
    if not colors or not all(math.isfinite(v) for v in b):
        raise ParamsError(
            f"graduated_qml needs at least one colour and finite breaks (use the data's "
            f"maximum, not inf); got breaks {list(breaks)} and {len(colors)} colours"
        )
    if len(b) != len(colors) + 1 or any(hi <= lo for lo, hi in itertools.pairwise(b)):
        raise ParamsError(
            f"breaks must rise and number one more than colors ({len(colors)} colours); "
            f"got {list(breaks)}"
        )
    renderer = ET.Element("renderer-v2", type="graduatedSymbol", attr=field,
                          graduatedMethod="GraduatedColor", symbollevels="0",
                          enableorderby="0", forceraster="0")  # fmt: skip
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    for i, color in enumerate(colors):
        lo, hi = b[i], b[i + 1]
        ET.SubElement(ranges, "range", lower=f"{lo:g}", upper=f"{hi:g}",
                      label=f"{lo:g} - {hi:g}{unit}", symbol=str(i), render="true")  # fmt: skip
        _symbol(symbols, str(i), geometry, color, size=size, outline=outline)
    return _qml(renderer, label_field)


def sample_qml(classes: Sequence[str] = CLASSES, *, field: str = "map_class") -> str:
    """Style of the accuracy sample (:func:`vitseg.accuracy.write_sample`): points by map class.

    Examples
    --------
    >>> 'value="vegetation"' in sample_qml()
    True
    """
    classes = _check_classes(classes)
    colors = {str(c): CLASS_COLORS.get(str(c), _OTHER) for c in classes}
    return categorized_qml(field, colors, geometry="point", label_field="point_id")


def alerts_qml(seasons: Sequence[str] | None = None) -> str:
    """Style of the alerts layer (:func:`vitseg.alerts.write_alerts`): red polygons.

    With ``seasons`` the polygons are coloured by ``first_seen`` (light to dark red, the
    latest season darkest); labels show ``alert_id``.

    Examples
    --------
    >>> 'attr="first_seen"' in alerts_qml(["2019-20", "2020-21"])
    True
    """
    if isinstance(seasons, str):
        raise ParamsError(
            f"seasons must be a list of season labels; got the string {seasons!r}, which would "
            f"be read letter by letter. Pass [{seasons!r}]"
        )
    if not seasons:
        return single_qml("#e41a1cb3", geometry="polygon", outline="#7f0000",
                          label_field="alert_id")  # fmt: skip
    ramp = ("#fcae91", "#fb6a4a", "#de2d26", "#a50f15", "#67000d")
    k = len(seasons)
    colors = {
        str(s): ramp[round(i * (len(ramp) - 1) / max(k - 1, 1))] for i, s in enumerate(seasons)
    }
    return categorized_qml(
        "first_seen", colors, geometry="polygon", size=0.3, outline="#7f0000",
        label_field="alert_id",
    )  # fmt: skip


def district_qml(values: Sequence[float], *, field: str = "mines_ha", n_classes: int = 5) -> str:
    """Choropleth style of a district table joined to district polygons (hectares).

    The ranges are equal-count (quantile) breaks of ``values``, from 0. NaN and inf
    values are left out of the breaks.

    Raises
    ------
    ParamsError
        ``values`` are not numbers or hold a negative one (the ranges start at 0, so it
        would be drawn by no range); ``n_classes`` is not an int >= 1.

    Examples
    --------
    >>> 'attr="mines_ha"' in district_qml([0.0, 1.0, 4.0, 9.0])
    True
    """
    import numpy as np

    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ParamsError(f"n_classes must be an int >= 1; got {n_classes!r}")
    try:
        arr = np.asarray(values, dtype="float64").ravel()
    except (TypeError, ValueError):
        raise ParamsError(f"values must be numbers (hectares); got {values!r:.80}") from None
    if (arr < 0).any():
        raise ParamsError(
            f"values must be >= 0 (areas); got {float(arr[arr < 0][0]):g}. A negative value "
            "falls in no range of the style and is not drawn"
        )
    v = arr[np.isfinite(arr)]
    top = float(v.max()) if v.size else 1.0
    qs = np.quantile(v, np.linspace(0, 1, n_classes + 1)[1:]) if v.size else [top]
    breaks = [0.0]
    for q in (*qs, top):
        if float(q) > breaks[-1]:
            breaks.append(float(q))
    if len(breaks) == 1:
        breaks.append(1.0)
    ramp = ("#fee5d9", "#fcbba1", "#fc9272", "#fb6a4a", "#de2d26", "#a50f15")
    k = len(breaks) - 1
    colors = [ramp[round(i * (len(ramp) - 1) / max(k - 1, 1))] for i in range(k)]
    return graduated_qml(field, breaks, colors, unit=" ha", label_field=None)


# ----------------------------------------------------------------------------- GeoPackage

_LAYER_STYLES_SQL = """
CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256),
    f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
    useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
    update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)
"""


def add_layer_style(
    gpkg: str | os.PathLike[str],
    layer: str,
    qml: str,
    *,
    name: str | None = None,
    description: str = "vitseg",
    default: bool = True,
) -> Path:
    """Store a QGIS style for ``layer`` in the GeoPackage's ``layer_styles`` table.

    QGIS applies the default style (``useAsDefault = 1``) when the layer is opened. The
    table follows QGIS's layout (as "Save Style... > In Database" writes it) and is
    registered in ``gpkg_contents`` as an attribute table. A style of the same name for
    the layer is replaced, in one SQLite transaction (the file is never half-updated).

    Parameters
    ----------
    gpkg
        An existing GeoPackage.
    layer
        Its layer (table) name, e.g. ``"sample"`` or ``"alerts"``.
    qml
        QML text (:func:`categorized_qml` ...).
    name
        Style name (default: the layer name).
    description
        Style description.
    default
        Make it the layer's default style (other styles of the layer lose the flag).

    Returns
    -------
    pathlib.Path
        ``gpkg``.

    Raises
    ------
    MissingFileError
        ``gpkg`` does not exist or is a folder.
    VectorError
        ``gpkg`` is not a GeoPackage, ``layer`` is not a feature layer of it, or ``qml``
        is not valid XML text with a ``<qgis>`` root.

    Examples
    --------
    >>> import tempfile, geopandas as gpd
    >>> from shapely.geometry import Point
    >>> p = tempfile.mkdtemp() + "/s.gpkg"
    >>> gpd.GeoDataFrame({"map_class": ["mines"]}, geometry=[Point(0, 0)],
    ...                  crs="EPSG:32630").to_file(p, layer="sample")
    >>> _ = add_layer_style(p, "sample", sample_qml())
    >>> layer_styles(p)[0]["f_table_name"], layer_styles(p)[0]["useAsDefault"]
    ('sample', 1)
    """
    from vitseg.errors import MissingFileError

    path = Path(gpkg)
    if path.is_dir():
        raise MissingFileError(f"{str(path)!r} is a folder, not a GeoPackage file")
    if not path.is_file():
        raise MissingFileError(f"no GeoPackage at {str(path)!r}; write the layer first")
    if not isinstance(qml, str):
        raise VectorError(f"qml must be QML text (str); got {type(qml).__name__}")
    try:
        root = ET.fromstring(qml.split("\n", 1)[1] if qml.startswith("<!DOCTYPE") else qml)
    except ET.ParseError as exc:
        raise VectorError(f"qml is not valid XML ({exc}); build it with vitseg.styles") from exc
    if root.tag != "qgis":
        raise VectorError(f"qml must have a <qgis> root element; got <{root.tag}>")
    style = name or layer
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        try:
            row = con.execute(
                "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _not_a_gpkg(path, exc) from None
        if row is None:
            have = [r[0] for r in con.execute("SELECT table_name FROM gpkg_geometry_columns")]
            raise VectorError(f"{path.name} has no feature layer {layer!r}; its layers are {have}")
        con.execute(_LAYER_STYLES_SQL)
        con.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', ?)",
            (now,),
        )
        if default:
            con.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (layer,))
        con.execute(
            "DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?", (layer, style)
        )
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
            "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
            "owner, ui, update_time) VALUES ('', '', ?, ?, ?, ?, '', ?, ?, '', NULL, ?)",
            (layer, row[0], style, qml, 1 if default else 0, description, now),
        )
    return path


def _not_a_gpkg(path: Path, exc: Exception) -> VectorError:
    return VectorError(
        f"{path} is not a GeoPackage ({exc}); write the layer with "
        "gdf.to_file(path, driver='GPKG') first"
    )


def layer_styles(gpkg: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return the rows of a GeoPackage's ``layer_styles`` table (empty list when none).

    Raises
    ------
    MissingFileError
        ``gpkg`` does not exist (nothing is created there) or is a folder.
    VectorError
        ``gpkg`` is not an SQLite/GeoPackage file.

    Examples
    --------
    >>> import tempfile, geopandas as gpd
    >>> from shapely.geometry import Point
    >>> p = tempfile.mkdtemp() + "/s.gpkg"
    >>> gpd.GeoDataFrame(geometry=[Point(0, 0)], crs="EPSG:32630").to_file(p, layer="a")
    >>> layer_styles(p)
    []
    """
    from vitseg.errors import MissingFileError

    path = Path(gpkg)
    if path.is_dir():
        raise MissingFileError(f"{str(path)!r} is a folder, not a GeoPackage file")
    if not path.is_file():
        raise MissingFileError(f"no GeoPackage at {str(path)!r}; check the path")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
        con.row_factory = sqlite3.Row
        try:
            exists = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'layer_styles'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _not_a_gpkg(path, exc) from None
        if not exists:
            return []
        return [dict(r) for r in con.execute("SELECT * FROM layer_styles ORDER BY id")]


def write_styled_layer(gdf: Any, path: str | os.PathLike[str], *, layer: str, qml: str) -> Path:
    """Write a GeoDataFrame as a GeoPackage layer with its QGIS style, atomically.

    For layers a notebook builds itself, e.g. district polygons joined to the mined
    hectares of :func:`vitseg.zonal.zonal_areas`, styled with :func:`district_qml`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ParamsError
        ``path`` does not end in ``.gpkg``; ``layer`` is empty.
    MissingCRSError
        ``gdf`` has no CRS.
    VectorError
        ``gdf`` is not a GeoDataFrame.
    """
    import geopandas as gpd

    from vitseg.errors import MissingCRSError
    from vitseg.io import atomic_path

    if not isinstance(gdf, gpd.GeoDataFrame):
        raise VectorError(
            f"write_styled_layer needs a GeoDataFrame; got {type(gdf).__name__}. Build one "
            "with geopandas.GeoDataFrame(df, geometry=..., crs=...)"
        )
    _check_field(layer, "layer")
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise ParamsError(f"path must end in .gpkg; got {path.name!r}")
    if gdf.crs is None:
        raise MissingCRSError(f"layer {layer!r} has no CRS; set it with gdf.set_crs(...)")
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, driver="GPKG", layer=layer)
        add_layer_style(tmp, layer, qml)
    return path
