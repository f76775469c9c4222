"""One declaration per notebook parameter: its type, range and allowed values.

Every name in a notebook's ``parameters`` cell has a :class:`Spec` in :data:`SPECS`; a
name means the same thing in every notebook that declares it. Where one notebook needs
more (06_predict's ``tile_px`` is fed to the network and must be a multiple of 32), the
``(notebook, name)`` entry of :data:`OVERRIDES` replaces it for that notebook.

:func:`check_parameter` checks one value against its spec and raises a
:class:`~vitseg.errors.ParamsError` that names the notebook, the key, the value and what
is allowed; :func:`check_parameters` checks a notebook's whole set, including rules that
tie two keys (an overlap smaller than its tile). Checks are offline and cheap; the
lists of architectures, losses, shipped data files and basemaps are read from the
library when they are first needed.

Examples
--------
>>> check_parameter("02_build_cube", "cloud_method", "both")
>>> check_parameter("02_build_cube", "cloud_method", "bothh")
Traceback (most recent call last):
...
vitseg.errors.ParamsError: 02_build_cube: parameter 'cloud_method' must be one of 'scl', \
'bright', 'both'; got 'bothh'
>>> spec_for("06_predict", "tile_px").describe()
'an int > 0 and a multiple of 32'
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitseg.errors import ParamsError
from vitseg.io import DATA_DIR, REPO_ROOT

__all__ = ["OVERRIDES", "SPECS", "Spec", "check_parameter", "check_parameters", "spec_for"]

_NONE = type(None)
_TYPE_WORDS: dict[type, str] = {
    bool: "true or false",
    int: "an int",
    float: "a number",
    str: "a str",
    list: "a list",
    dict: "a mapping",
    _NONE: "null",
}


@dataclass(frozen=True)
class Spec:
    """What one parameter accepts.

    Parameters
    ----------
    types
        Accepted Python types (as YAML reads them). ``float`` also accepts ``int``; a
        ``bool`` is accepted only where ``bool`` is listed.
    choices
        The allowed values, or a function returning them (read lazily, e.g. the
        architectures of :data:`vitseg.models.MODELS`).
    minimum, maximum
        Range of a number (inclusive unless ``exclusive_minimum`` / ``exclusive_maximum``).
    multiple_of
        A number must be a multiple of this (model input sizes: 32).
    min_length, length
        Least / exact length of a str or list (``min_length=1``: not empty).
    items
        Spec of each list item.
    keys, values
        Specs of a mapping's keys and values.
    check
        Extra test: returns None when the value is fine, else the text of what is
        allowed (it may add why the value fails).
    allowed
        Replaces the generated description of what is allowed.
    doc
        What the parameter means, with its unit.

    Examples
    --------
    >>> Spec((float,), minimum=0, maximum=1).describe()
    'a number in [0, 1]'
    >>> Spec((list,), items=Spec((int,)), length=2).describe()
    'a list of 2 items, each an int'
    """

    types: tuple[type, ...]
    choices: tuple[Any, ...] | Callable[[], Sequence[Any]] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: int | None = None
    min_length: int | None = None
    length: int | None = None
    items: Spec | None = None
    keys: Spec | None = None
    values: Spec | None = None
    check: Callable[[Any], str | None] | None = None
    allowed: str = ""
    doc: str = ""

    def allowed_choices(self) -> tuple[Any, ...] | None:
        """Return the allowed values (calling ``choices`` when it is a function)."""
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def describe(self) -> str:
        """Return what the parameter accepts, in words."""
        if self.allowed:
            return self.allowed
        choices = self.allowed_choices()
        if choices is not None:
            return "one of " + ", ".join(repr(c) for c in choices)
        words = " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in self.types)
        if str in self.types and self.min_length:
            words = "a non-empty str" if self.types == (str,) else words
        parts = [words]
        rng = self._range_text()
        if rng:
            parts[0] += f" {rng}"
        if self.multiple_of:
            parts.append(f"a multiple of {self.multiple_of}")
        if list in self.types:
            n = self.length if self.length is not None else self.min_length
            if n is not None:
                least = "" if self.length is not None else "at least "
                parts[0] = f"a list of {least}{n} item{'s' if n != 1 else ''}"
            if self.items is not None:
                parts[0] += f", each {self.items.describe()}"
        if dict in self.types and (self.keys or self.values):
            k = self.keys.describe() if self.keys else "anything"
            v = self.values.describe() if self.values else "anything"
            parts[0] = f"a mapping of {k} to {v}"
        return " and ".join(parts)

    def _range_text(self) -> str:
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            left = "(" if self.exclusive_minimum else "["
            right = ")" if self.exclusive_maximum else "]"
            return f"in {left}{_num(lo)}, {_num(hi)}{right}"
        if lo is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_num(lo)}"
        if hi is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {_num(hi)}"
        return ""


def _num(x: float) -> str:
    return f"{x:g}"


def _is_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


#: (where in the value, the offending part, what is allowed there)
_Problem = tuple[str, Any, str]


def _problem(spec: Spec, value: Any) -> _Problem | None:
    """Return the first thing wrong with ``value``, or None."""
    if not _is_type(value, spec.types):
        return "", value, spec.describe()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return "", value, spec.describe()
        lo, hi = spec.minimum, spec.maximum
        if lo is not None and (value < lo or (spec.exclusive_minimum and value == lo)):
            return "", value, spec.describe()
        if hi is not None and (value > hi or (spec.exclusive_maximum and value == hi)):
            return "", value, spec.describe()
        if spec.multiple_of and value % spec.multiple_of:
            return "", value, spec.describe()
    choices = spec.allowed_choices()
    if choices is not None and not any(
        value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices
    ):
        return "", value, spec.describe()
    if isinstance(value, (str, list)):
        if spec.length is not None and len(value) != spec.length:
            return "", value, spec.describe()
        if spec.min_length is not None and len(value) < spec.min_length:
            return "", value, spec.describe()
    if isinstance(value, list) and spec.items is not None:
        for i, item in enumerate(value):
            found = _problem(spec.items, item)
            if found:
                return f" item {i}{found[0]}", found[1], found[2]
    if isinstance(value, dict):
        for k, v in value.items():
            if spec.keys is not None and (found := _problem(spec.keys, k)):
                return f" key {k!r}{found[0]}", found[1], found[2]
            if spec.values is not None and (found := _problem(spec.values, v)):
                return f"[{k!r}]{found[0]}", found[1], found[2]
    if spec.check is not None:
        text = spec.check(value)
        if text is not None:
            return "", value, text
    return None


# -- checks ------------------------------------------------------------------------------


def _resolve(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def _existing(value: str) -> str | None:
    if value and _resolve(value).exists():
        return None
    return f"the path of an existing file (relative to the repository root {REPO_ROOT})"


def _existing_or_empty(value: str) -> str | None:
    problem = _existing(value) if value else None
    return None if problem is None else f"'' or {problem}"


def _period(value: Any) -> str | None:
    from vitseg.periods import parse_period

    try:
        parse_period(value)
    except ParamsError as exc:
        return f"a period ({exc})"
    return None


def _season(value: str) -> str | None:
    return None if value == "" else _period(value)


def _periods(value: list[Any]) -> str | None:
    from vitseg.periods import parse_periods

    try:
        parse_periods(value)
    except ParamsError as exc:
        return f"a list of distinct, non-overlapping periods ({exc})"
    return None


def _crs(value: str) -> str | None:
    allowed = "'auto' or a projected CRS in metres such as 'EPSG:32630'"
    if value.strip().lower() == "auto":
        return None
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError:
        return allowed
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if not crs.is_projected or unit not in ("metre", "meter", "m"):
        return f"{allowed} ({value!r} is not projected in metres)"
    return None


def _box_names() -> tuple[str, ...]:
    from vitseg.synthetic import BOXES  # lazy: imports xarray

    return tuple(BOXES)


_AOI_FORMS = (
    "a box name, 'cells' or the path of a polygon file (str); a list of box names; or a "
    "lon/lat bbox [west, south, east, north]"
)


def _aoi(value: str | list[Any]) -> str | None:
    if isinstance(value, str):
        return None if value.strip() else _AOI_FORMS  # files are resolved by the notebook
    if len(value) == 4 and all(_is_type(v, (float,)) for v in value):
        w, s, e, n = (float(v) for v in value)
        if -180 <= w < e <= 180 and -90 <= s < n <= 90:
            return None
        return f"{_AOI_FORMS}, with -180 <= west < east <= 180 and -90 <= south < north <= 90"
    if value and all(isinstance(v, str) for v in value):
        boxes = _box_names()
        unknown = [v for v in value if v.strip().lower() not in boxes]
        if not unknown:
            return None
        return f"{_AOI_FORMS}; the box names are {', '.join(repr(b) for b in boxes)}"
    return _AOI_FORMS


_URL_RE = re.compile(r"^https?://[^\s/]+\S*$")


def _stac_source(value: str) -> str | None:
    if value == "" or _URL_RE.match(value) or _resolve(value).exists():
        return None
    return (
        "'' (the simulated catalog or Earth Search), an http(s) URL of a STAC API, or the "
        "path of an existing local catalog"
    )


_SCHEDULER_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")


def _dask_scheduler(value: str) -> str | None:
    v = value.strip()
    if v in ("", "threads", "local") or any(
        v.startswith(s) and len(v) > len(s) for s in _SCHEDULER_SCHEMES
    ):
        return None
    return "'' or 'threads' (threads), 'local' (LocalCluster) or an address like 'tcp://host:8786'"


def _sums_to_one(value: list[float]) -> str | None:
    if abs(sum(value) - 1.0) <= 1e-6:
        return None
    return f"fractions that sum to 1 (these sum to {sum(value):g})"


def _n_jobs(value: int) -> str | None:
    return None if value != 0 else "an int: -1 (all cores), -2 (all but one) ... or >= 1"


def _class_name(value: Any) -> str | None:
    from vitseg.constants import BINARY_CLASSES, CLASSES

    names = {c.lower() for c in (*CLASSES, *BINARY_CLASSES)}
    if value is None or value.strip() == "" or value.strip().lower() in names:
        return None
    listed = ", ".join(repr(c) for c in CLASSES)
    return f"a vitseg class ({listed}), or null / '' to drop those polygons"


def _shipped_files() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in DATA_DIR.glob("*.geojson")))


def _models() -> tuple[str, ...]:
    from vitseg.models import MODELS  # lazy: imports torch

    return tuple(MODELS)


def _losses() -> tuple[str, ...]:
    from vitseg.losses import LOSSES  # lazy: imports torch

    return LOSSES


def _basemaps() -> tuple[str, ...]:
    from vitseg.webmap import BASEMAPS

    return ("", *BASEMAPS)


# -- building blocks -----------------------------------------------------------------------


def _int(minimum: int | None = None, **kw: Any) -> Spec:
    return Spec((int,), minimum=minimum, **kw)


def _positive_int(**kw: Any) -> Spec:
    return Spec((int,), minimum=0, exclusive_minimum=True, **kw)


def _number(**kw: Any) -> Spec:
    return Spec((float,), **kw)


def _positive(doc: str, *, maximum: float | None = None) -> Spec:
    return Spec((float,), minimum=0, exclusive_minimum=True, maximum=maximum, doc=doc)


def _shares(names: str) -> Spec:
    return Spec(
        (list,), length=3, items=_fraction("share"), check=_sums_to_one,
        allowed=f"a list of 3 numbers in [0, 1] ({names}) that sum to 1",
    )  # fmt: skip


def _fraction(doc: str) -> Spec:
    return Spec((float,), minimum=0, maximum=1, doc=doc)


def _text(doc: str, **kw: Any) -> Spec:
    return Spec((str,), min_length=1, doc=doc, **kw)


def _choice(*choices: Any, doc: str) -> Spec:
    types = tuple(dict.fromkeys(type(c) for c in choices))
    return Spec(types, choices=choices, doc=doc)


def _input_file(doc: str) -> Spec:
    return Spec((str,), check=_existing_or_empty, doc=doc)


def _shipped(doc: str) -> Spec:
    return Spec((str,), choices=_shipped_files, doc=f"{doc} (a file shipped in vitseg/data)")


_BOOL = Spec((bool,))
_CLASS_MAP = Spec(
    (dict,),
    keys=Spec((str, int, float), allowed="a class value (str or number)"),
    values=Spec((str, _NONE), check=_class_name, allowed="a vitseg class name, '' or null"),
    doc="class value in the file -> vitseg class ('' or null drops those polygons)",
)
_CLOUD = _choice("scl", "bright", "both", doc="vitseg.cloud.mask_clouds method")
_DEVICE = _choice("auto", "cpu", "cuda", doc="torch device; auto = CUDA when present")
_LOSS = Spec((str,), choices=_losses, doc="vitseg.losses.create_loss name")
_EPOCHS = _positive_int(doc="training epochs")
_BATCH = _positive_int(doc="patches per training batch")
_LR = _positive("initial learning rate")
_ENCODER = _text("segmentation_models_pytorch encoder name")
_ENCODER_WEIGHTS = Spec((str,), doc="'' = from scratch (offline); 'imagenet' with the network")
_TILE_32 = _positive_int(multiple_of=32, doc="window fed to the network (px)")
_OVERLAP = _int(minimum=0, doc="overlap of neighbouring windows (px), < the window")


#: Every notebook parameter, by name.
SPECS: dict[str, Spec] = {
    # shared by several notebooks
    "report_dir": _text("report folder of the run (relative to the repository root)"),
    "seed": _int(minimum=0, doc="random seed"),
    "simulated": Spec((bool,), doc="true: the offline simulated demo"),
    "catalog_dir": Spec((str,), doc="local simulated STAC catalog; '' on the real path"),
    "aoi": Spec((str, list), check=_aoi, allowed=_AOI_FORMS, doc="areas of interest"),
    "seasons": Spec(
        (list,),
        min_length=1,
        items=Spec(
            (str, int),
            check=_period,
            allowed="a period: 'YYYY-YY' dry season, 'YYYY' year or 'YYYY-MM-DD/YYYY-MM-DD'",
        ),
        check=_periods,
        doc="periods of the run",
    ),
    "crs": Spec((str,), check=_crs, allowed="'auto' or a projected CRS in metres", doc="grid CRS"),
    "dask_scheduler": Spec((str,), check=_dask_scheduler, doc="vitseg.cluster.get_client"),
    "labels_file": _input_file("a researcher's label polygons; '' = the shipped/simulated ones"),
    "labels_class_column": _text("column of labels_file holding the class"),
    "labels_class_map": _CLASS_MAP,
    "labels_extent_file": _input_file("labelled extent; '' = the labels file's 'extent' layer"),
    "cloud_method": _CLOUD,
    "bright_threshold": _positive("B02, B03, B04 all above this = cloud", maximum=1),
    "trust_offset_metadata": _BOOL,
    "chunks_px": _positive_int(doc="dask chunk side (px)"),
    "tile_px": _positive_int(doc="tile side (px)"),
    "cell_size_m": _positive("grid cell side (m)"),
    "device": _DEVICE,
    "overwrite": Spec((bool,), doc="true: redo results that already exist"),
    # 01_grid_aoi
    "labels_data": _shipped("mining polygons"),
    "outline_data": _shipped("outline of Ghana"),
    "regions_data": _shipped("regions of Ghana"),
    "min_label_area_m2": _number(minimum=0, doc="keep cells with at least this labelled area"),
    # 02_build_cube
    "stac_source": Spec((str,), check=_stac_source, doc="STAC API or local catalog"),
    "collection": _text("STAC collection"),
    "max_cloud_pct": _number(minimum=0, maximum=100, doc="keep scenes with eo:cloud_cover <="),
    "dates_per_season": _positive_int(doc="simulated acquisition dates per season"),
    "size_px": _int(minimum=0, doc="simulated scene side (px); 0 = the whole box"),
    "composite_method": _choice("median", "mean", doc="vitseg.composite method"),
    "blank_tile_px": _positive_int(doc="tile side for the blank-tile count (px)"),
    "min_valid_frac": _fraction("tiles with fewer valid pixels are blank"),
    # 03_labels_tiles
    "stride_px": _positive_int(doc="step between tiles (px)"),
    "block_px": _positive_int(doc="spatial block side for the split (px)"),
    "max_nodata_frac": _fraction("drop tiles with more no-data than this"),
    "min_labelled_frac": _fraction("keep tiles with at least this share of mines + built"),
    "split_fractions": _shares("train, val, test"),
    "all_touched": Spec((bool,), doc="rasterise every pixel a polygon touches"),
    "cooccurrence_offset": Spec((list,), length=2, items=_int(), doc="(dy, dx) in pixels"),
    # 04_train
    "tiles_dir": Spec((str,), doc="'' = <report_dir>/data/tiles (from 03_labels_tiles)"),
    "archs": Spec(
        (list,), min_length=1, items=Spec((str,), choices=_models), doc="architectures to train"
    ),
    "patch_px": _positive_int(multiple_of=32, doc="random training patch side (px)"),
    "samples_per_epoch": _positive_int(doc="patches per epoch"),
    "num_workers": _int(minimum=0, doc="data-loader processes"),
    "bf16": _choice("auto", True, False, doc="bf16 autocast"),
    "lr_step_epochs": _positive_int(doc="learning rate / 10 every N epochs"),
    "unet_encoder": _ENCODER,
    "unet_epochs": _EPOCHS,
    "unet_batch_size": _BATCH,
    "unet_lr": _LR,
    "unet_loss": _LOSS,
    "unet_encoder_weights": _ENCODER_WEIGHTS,
    "segformer_encoder": _ENCODER,
    "segformer_epochs": _EPOCHS,
    "segformer_batch_size": _BATCH,
    "segformer_lr": _LR,
    "segformer_loss": _LOSS,
    "segformer_encoder_weights": _ENCODER_WEIGHTS,
    "tversky_alpha": _fraction("Tversky weight of false positives"),
    "tversky_beta": _fraction("Tversky weight of false negatives"),
    "n_example_tiles": _int(minimum=0, doc="test tiles in the prediction figure"),
    # 05_benchmark
    "reference_tiles_file": _input_file("hand-digitised reference tiles; '' = none"),
    "reference_class_column": _text("column of reference_tiles_file holding the class"),
    "reference_class_map": _CLASS_MAP,
    "model_path": _text("checkpoint, relative to report_dir (written by 04_train)"),
    "train_pixels": _positive_int(doc="random training pixels"),
    "max_ratio": _positive("majority / minority cap"),
    "mlp_max_iter": _positive_int(doc="MLP iterations"),
    "cv_search": Spec((bool,), doc="cross-validated grid search of the RF"),
    "max_test_tiles": _positive_int(doc="test tiles of the training dates"),
    "unseen_tile_px": _positive_int(doc="side of the unseen-season tiles (px)"),
    "unseen_tiles_per_box": _positive_int(doc="unseen-season tiles per box"),
    "cnn_tile": _TILE_32,
    "cnn_overlap": _OVERLAP,
    "n_jobs": _int(check=_n_jobs, doc="scikit-learn n_jobs (-1 = all cores)"),
    # 06_predict
    "arch": Spec((str,), choices=_models, doc="architecture whose checkpoint predicts"),
    "overlap_px": _OVERLAP,
    "batch_size": _positive_int(doc="windows per forward pass"),
    "exclusion_files": Spec(
        (dict,),
        keys=_text("layer name"),
        values=Spec((str,), check=_existing, allowed="the path of an existing polygon file"),
        doc="layer name -> polygon file masked as no-data",
    ),
    "exclusion_buffer_m": Spec(
        (dict,), keys=_text("layer name"), values=_number(minimum=0), doc="name -> buffer (m)"
    ),
    "outside_country_buffer_m": _number(minimum=0, doc="keep Ghana + this buffer (m)"),
    "coastal_strip_m": _number(minimum=0, doc="exclude land within this of the sea (m); 0 = off"),
    "mosaic_method": _choice("max_class", "mean_prob", doc="vitseg.predict mosaic method"),
    # 07_accuracy
    "season": Spec((str,), check=_season, allowed="'' (the last of seasons) or a period"),
    "reference_file": Spec((str,), doc="interpreted sample (written by people, may not exist yet)"),
    "reference_file_2": Spec(
        (str,), doc="a second interpreter's file (optional, may not exist yet)"
    ),
    "reference_merge": _choice("first", "agreed", doc="how two interpreters' labels combine"),
    "page_chip_px": _positive_int(doc="side of the interpretation page's image chips (px)"),
    "target_se": _positive("target SE of OA", maximum=1),
    "expected_users_accuracy": Spec(
        (list,), length=3, items=_fraction("user's accuracy"), doc="mines, built, vegetation"
    ),
    "allocation": _choice("gallwey", "proportional", "equal", doc="vitseg.accuracy.allocate"),
    "largest_share": _positive("share of the largest class", maximum=1),
    "min_per_stratum": _int(minimum=0, doc="least points per stratum"),
    "oversample": _number(minimum=1, doc="multiply the sample by this"),
    "round_up_to": _positive_int(doc="round each stratum up to a multiple of this"),
    "max_points_per_class": _positive_int(doc="cap of points per class"),
    "assumed_weights": _shares("mines, built, vegetation"),
    # 08_monitoring
    "mode": _choice("demo", "earthrise", doc="class maps of this run, or Earthrise detections"),
    "class_map_source": _choice("auto", "ensemble", "truth", doc="where demo class maps come from"),
    "districts_name": _shipped("districts"),
    "protected_areas_file": _input_file("protected areas; '' = stand-in squares"),
    "protected_areas_id": _text("id column of the protected-area layer"),
    "bandwidth_m": _positive("kernel radius (m)"),
    "min_alert_area_ha": _number(minimum=0, doc="smallest alert patch (ha)"),
    "basemap": Spec((str,), choices=_basemaps, doc="web-map basemap; '' = none"),
    "earthrise_ashanti_name": _shipped("Earthrise Ashanti 2017/2020 detections"),
    "earthrise_2024_name": _shipped("Earthrise 2024 detections"),
    "top_n_districts": _positive_int(doc="districts in the ranking"),
}

#: ``(notebook, name) -> Spec`` where a notebook needs more than :data:`SPECS` says.
OVERRIDES: dict[tuple[str, str], Spec] = {
    ("06_predict", "tile_px"): _TILE_32,
    ("08_monitoring", "cell_size_m"): _positive("density grid cell (m)"),
}

#: ``(notebook or None, tile key, overlap key)``: the overlap must be smaller than the tile.
_OVERLAPS: tuple[tuple[str | None, str, str], ...] = (
    ("06_predict", "tile_px", "overlap_px"),
    (None, "cnn_tile", "cnn_overlap"),
)


def has_spec(notebook: str, key: str) -> bool:
    """Return True when ``key`` of ``notebook`` is declared here.

    Examples
    --------
    >>> has_spec("02_build_cube", "cloud_method"), has_spec("99_mine", "my_key")
    (True, False)
    """
    return (notebook, key) in OVERRIDES or key in SPECS


def spec_for(notebook: str, key: str) -> Spec:
    """Return the :class:`Spec` of parameter ``key`` of ``notebook``.

    Raises
    ------
    ParamsError
        ``key`` has no spec (close names are suggested).

    Examples
    --------
    >>> spec_for("02_build_cube", "size_px").describe()
    'an int >= 0'
    """
    found = OVERRIDES.get((notebook, key), SPECS.get(key))
    if found is None:
        hint = difflib.get_close_matches(key, list(SPECS), n=1)
        raise ParamsError(
            f"{notebook}: parameter {key!r} has no spec in vitseg.paramspec.SPECS"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + "; declare its type and range there"
        )
    return found


def check_parameter(notebook: str, key: str, value: Any) -> None:
    """Check one parameter value against its spec.

    Parameters
    ----------
    notebook
        Notebook name, e.g. ``"02_build_cube"``.
    key
        Parameter name.
    value
        The value as YAML (or the notebook's default) gives it.

    Raises
    ------
    ParamsError
        No spec for ``key``, or a value of the wrong type, out of range or not among
        the choices; the message names the notebook, the key, the value and what is
        allowed.

    Examples
    --------
    >>> check_parameter("03_labels_tiles", "split_fractions", [0.6, 0.2, 0.2])
    >>> check_parameter("04_train", "unet_epochs", 0)
    Traceback (most recent call last):
    ...
    vitseg.errors.ParamsError: 04_train: parameter 'unet_epochs' must be an int > 0; got 0
    """
    spec = spec_for(notebook, key)
    found = _problem(spec, value)
    if found is None:
        return
    where, bad, allowed = found
    got = f"{bad!r}" if not where else f"{bad!r} (in {value!r})"
    raise ParamsError(f"{notebook}: parameter {key!r}{where} must be {allowed}; got {got}")


def check_parameters(notebook: str, params: Mapping[str, Any]) -> None:
    """Check every value of ``params``, then the rules that tie two keys.

    Pass the notebook's defaults updated with the values given, so that rules that tie
    two keys (an overlap smaller than its tile) see both.

    Raises
    ------
    ParamsError
        As :func:`check_parameter`, or an overlap not smaller than its tile.

    Examples
    --------
    >>> check_parameters("06_predict", {"tile_px": 128, "overlap_px": 128})
    Traceback (most recent call last):
    ...
    vitseg.errors.ParamsError: 06_predict: parameter 'overlap_px' must be < tile_px (128); got 128
    """
    for key, value in params.items():
        check_parameter(notebook, key, value)
    for nb, tile_key, overlap_key in _OVERLAPS:
        if nb not in (None, notebook) or tile_key not in params or overlap_key not in params:
            continue
        tile, overlap = params[tile_key], params[overlap_key]
        if overlap >= tile:
            raise ParamsError(
                f"{notebook}: parameter {overlap_key!r} must be < {tile_key} ({tile}); "
                f"got {overlap!r}"
            )
