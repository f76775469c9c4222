"""Olofsson et al. (2014) estimators: accuracy and area from an interpreted stratified sample.

Follows Olofsson et al. (2014, Remote Sensing of Environment 148:42-57, "good
practices"): the map classes are the strata; the error matrix of sample counts
(:func:`error_matrix`) is turned into estimated area proportions
``p_ij = W_i n_ij / n_i.`` with the stratum weights ``W_i`` (mapped area shares), from
which overall, user's and producer's accuracy and the area of each class follow, each
with a standard error and a 95% confidence interval; :func:`estimate_zone_areas`
gives areas per zone (Stehman 2014). Gallwey et al. reported the plain count ratios of
the sample; both are here (:func:`count_ratios`).

Conventions: error matrices have map classes in rows and reference classes in
columns (Olofsson et al.); ``mapped_area`` is in pixels unless said otherwise.

Every name here is also importable from :mod:`vitseg.accuracy`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vitseg.constants import CLASSES
from vitseg.errors import DimensionError, ParamsError, SampleError
from vitseg.reference import _REF, read_sample

__all__ = [
    "Z95",
    "accuracy_table",
    "area_proportions",
    "count_ratios",
    "error_matrix",
    "estimate_area",
    "estimate_zone_areas",
    "overall_accuracy",
    "overall_count_ratio",
    "producers_accuracy",
    "users_accuracy",
]

Array = np.ndarray[Any, Any]
#: Normal quantile of a two-sided 95% interval.
Z95 = 1.96
_M2_PER_HA = 10_000.0


# ---------------------------------------------------------------------- estimators
def error_matrix(
    sample: pd.DataFrame,
    *,
    classes: Sequence[str] = CLASSES,
    map_col: str = "map_class",
    ref_col: str = _REF,
) -> pd.DataFrame:
    """Error matrix of sample counts: rows map classes, columns reference classes.

    Parameters
    ----------
    sample
        Table with the map and reference label of each point (names or codes).
    classes
        Class names, in the order of rows and columns.
    map_col, ref_col
        Label columns.

    Returns
    -------
    pandas.DataFrame
        ``int64`` counts, index named ``"map"``, columns named ``"reference"``.

    Raises
    ------
    SampleError
        Missing or unknown labels.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"map_class": ["mines", "mines", "built"],
    ...                   "reference_class": ["mines", "built", "built"]})
    >>> error_matrix(s).to_numpy().tolist()
    [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    """
    checked = read_sample(sample, classes=classes, map_col=map_col, ref_col=ref_col)
    m = pd.Categorical(checked[map_col], categories=list(classes))
    r = pd.Categorical(checked[ref_col], categories=list(classes))
    table = pd.crosstab(m, r, dropna=False).reindex(
        index=list(classes), columns=list(classes), fill_value=0
    )
    table.index.name = "map"
    table.columns.name = "reference"
    return table.astype(np.int64)


def _check_matrix(
    matrix: pd.DataFrame | Array, mapped_area: Any
) -> tuple[pd.DataFrame, Array, Array]:
    """Return (counts DataFrame, n (k,k) float, N_i mapped pixels (k,))."""
    if not isinstance(matrix, pd.DataFrame):
        arr = np.asarray(matrix)
        if arr.ndim != 2:
            raise DimensionError(
                f"error matrix must be 2-D (map classes x reference classes); got shape {arr.shape}"
            )
        matrix = pd.DataFrame(
            arr, index=list(range(arr.shape[0])), columns=list(range(arr.shape[-1]))
        )
    if matrix.shape[0] != matrix.shape[1] or list(matrix.index) != list(matrix.columns):
        raise DimensionError(
            f"error matrix must be square with the same classes in rows (map) and columns "
            f"(reference); got index {list(matrix.index)} and columns {list(matrix.columns)}"
        )
    if matrix.shape[0] == 0:
        raise DimensionError("error matrix is empty (0 classes); build it with error_matrix")
    try:
        n = matrix.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise SampleError(f"error matrix must hold numeric counts; {err}") from err
    # NaN fails every comparison, so test for the good values, never for the bad ones
    bad = ~(np.isfinite(n) & (n >= 0))
    if bad.any():
        where = [
            f"map {matrix.index[i]!r} / reference {matrix.columns[j]!r}: {n[i, j]}"
            for i, j in zip(*np.nonzero(bad), strict=True)
        ]
        raise SampleError(
            f"error matrix counts must be finite and >= 0; got {', '.join(where[:5])}. A NaN "
            "count would drop its whole stratum; fill missing cells with 0 (e.g. "
            "matrix.fillna(0)) or rebuild the matrix with error_matrix."
        )
    if isinstance(mapped_area, (Mapping, pd.Series)):
        missing = [c for c in matrix.index if c not in mapped_area]
        if missing:
            raise SampleError(
                f"'mapped_area' lacks classes {missing}; give the mapped pixels of every class"
            )
        try:
            area = np.array([float(mapped_area[c]) for c in matrix.index])
        except (TypeError, ValueError) as err:
            raise SampleError(f"'mapped_area' must hold numbers; {err}") from err
    else:
        try:
            area = np.asarray(mapped_area, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as err:
            raise SampleError(f"'mapped_area' must hold numbers; {err}") from err
        if area.size != matrix.shape[0]:
            raise SampleError(
                f"'mapped_area' needs {matrix.shape[0]} values (one per map class); got {area.size}"
            )
    bad_area = [
        f"{c!r}: {a}" for c, a in zip(matrix.index, area, strict=True) if not (0 <= a < np.inf)
    ]
    if bad_area:
        raise SampleError(
            f"'mapped_area' must be finite and >= 0 for every map class; got "
            f"{', '.join(bad_area)}. Give the mapped pixels of each class (map_class_counts), "
            "0 for a class absent from the map."
        )
    if area.sum() <= 0:
        raise SampleError(f"'mapped_area' must be >= 0 and not all 0; got {area.tolist()}")
    n_i = n.sum(axis=1)
    empty = [str(c) for c, a, k in zip(matrix.index, area, n_i, strict=True) if a > 0 and k == 0]
    if empty:
        raise SampleError(
            f"map classes {empty} have mapped area but no sample point; every stratum needs "
            "points (at least 2 for standard errors)"
        )
    single = [str(c) for c, a, k in zip(matrix.index, area, n_i, strict=True) if a > 0 and k == 1]
    if single:
        warnings.warn(
            f"strata {single} have a single sample point; their standard errors are NaN",
            UserWarning,
            stacklevel=3,
        )
    return matrix, n, area


def _check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0 (``z``, ``pixel_area_m2``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not 0 < v < math.inf:
        raise ParamsError(
            f"{name!r} must be a finite number > 0; got {value!r}"
            + (" (z = 1.96 gives a 95% interval)" if name == "z" else "")
        )
    return v


def _row_props(n: Array) -> tuple[Array, Array]:
    n_i = n.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        props = np.where(n_i[:, None] > 0, n / np.where(n_i > 0, n_i, 1)[:, None], 0.0)
        denom = np.where(n_i > 1, n_i - 1, np.nan)
    return props, denom


def _frame(index: Any, est: Array, se: Array, z: float) -> pd.DataFrame:
    z = _check_positive(z, "z")
    return pd.DataFrame(
        {"estimate": est, "se": se, "ci95": z * se, "lower": est - z * se, "upper": est + z * se},
        index=pd.Index(index, name="class"),
    )


def area_proportions(matrix: pd.DataFrame | Array, mapped_area: Any) -> pd.DataFrame:
    """Estimated area proportions ``p_ij = W_i n_ij / n_i.`` (Olofsson et al. 2014, eq. 4).

    Parameters
    ----------
    matrix
        Error matrix of counts, rows map, columns reference.
    mapped_area
        Mapped pixels (or hectares) of each map class: mapping, Series or sequence.

    Returns
    -------
    pandas.DataFrame
        Same layout as ``matrix``; sums to 1.

    Examples
    --------
    >>> area_proportions([[8, 2], [0, 10]], [25, 75]).to_numpy().round(3).tolist()
    [[0.2, 0.05], [0.0, 0.75]]
    """
    m, n, area = _check_matrix(matrix, mapped_area)
    w = area / area.sum()
    props, _ = _row_props(n)
    return pd.DataFrame(w[:, None] * props, index=m.index, columns=m.columns)


def overall_accuracy(
    matrix: pd.DataFrame | Array, mapped_area: Any, *, z: float = Z95
) -> pd.Series:
    """Overall accuracy ``sum_i W_i n_ii / n_i.`` with its standard error and interval.

    ``V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)`` (Olofsson et al. 2014, eq. 5).

    Returns
    -------
    pandas.Series
        ``estimate``, ``se``, ``ci95`` (half-width ``z * se``), ``lower``, ``upper``.

    Examples
    --------
    >>> oa = overall_accuracy([[8, 2], [0, 10]], [25, 75])
    >>> round(float(oa["estimate"]), 3)
    0.95
    """
    z = _check_positive(z, "z")
    _, n, area = _check_matrix(matrix, mapped_area)
    w = area / area.sum()
    props, denom = _row_props(n)
    u = np.diag(props)
    est = float(np.sum(w * u))
    var = float(np.nansum(np.where(w > 0, w**2 * u * (1 - u) / denom, 0.0)))
    if np.any((w > 0) & np.isnan(denom)):
        var = np.nan
    return _frame(["overall"], np.array([est]), np.array([math.sqrt(var)]), z).iloc[0]


def users_accuracy(
    matrix: pd.DataFrame | Array, mapped_area: Any = None, *, z: float = Z95
) -> pd.DataFrame:
    """User's accuracy ``n_ii / n_i.`` of each map class with ``V = U(1 - U)/(n_i. - 1)``.

    The stratum weights cancel (each map class is a stratum), so ``mapped_area`` is
    only checked when given; without it a map class with no sample point gets NaN.

    Returns
    -------
    pandas.DataFrame
        Index classes; ``estimate``, ``se``, ``ci95``, ``lower``, ``upper``.
    """
    if mapped_area is None:  # the weights cancel: 1 for a sampled class, 0 for one without points
        arr = matrix.to_numpy() if isinstance(matrix, pd.DataFrame) else np.asarray(matrix)
        mapped_area = (arr.sum(axis=1) > 0).astype(np.float64)
    m, n, _ = _check_matrix(matrix, mapped_area)
    props, denom = _row_props(n)
    u = np.diag(props)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(u * (1 - u) / denom)
    u = np.where(n.sum(axis=1) > 0, u, np.nan)
    return _frame(m.index, u, se, z)


def producers_accuracy(
    matrix: pd.DataFrame | Array, mapped_area: Any, *, z: float = Z95
) -> pd.DataFrame:
    """Estimate the producer's accuracy ``p_jj / p_.j`` of each reference class.

    The variance follows Olofsson et al. (2014) eq. 7 (Card 1982), with
    ``N_j.`` the mapped pixels of class j and ``N_.j`` the estimated reference total.

    Returns
    -------
    pandas.DataFrame
        Index classes; ``estimate``, ``se``, ``ci95``, ``lower``, ``upper`` (NaN for a
        class absent from the reference).
    """
    m, n, area = _check_matrix(matrix, mapped_area)
    props, denom = _row_props(n)
    k = n.shape[0]
    n_ref = np.sum(area[:, None] * props, axis=0)  # estimated N_.j
    u = np.diag(props)
    est = np.full(k, np.nan)
    se = np.full(k, np.nan)
    for j in range(k):
        if n_ref[j] <= 0:
            continue
        p = area[j] * props[j, j] / n_ref[j]
        est[j] = p
        term1 = area[j] ** 2 * (1 - p) ** 2 * u[j] * (1 - u[j]) / denom[j] if area[j] > 0 else 0.0
        others = [
            area[i] ** 2 * props[i, j] * (1 - props[i, j]) / denom[i]
            for i in range(k)
            if i != j and area[i] > 0
        ]
        term2 = p**2 * float(np.sum(others))
        se[j] = math.sqrt((term1 + term2) / n_ref[j] ** 2)
    return _frame(m.index, est, se, z)


def accuracy_table(
    matrix: pd.DataFrame | Array, mapped_area: Any, *, z: float = Z95
) -> pd.DataFrame:
    """User's/producer's accuracy, commission/omission error, each with a 95% interval.

    Commission error is ``1 - user's``, omission error ``1 - producer's``; their
    interval half-widths are those of the accuracies.

    Returns
    -------
    pandas.DataFrame
        Index classes; columns ``n_points``, ``weight``, ``users_accuracy``,
        ``users_ci95``, ``producers_accuracy``, ``producers_ci95``,
        ``commission_error``, ``commission_ci95``, ``omission_error``,
        ``omission_ci95``.
    """
    z = _check_positive(z, "z")
    m, n, area = _check_matrix(matrix, mapped_area)
    ua = users_accuracy(m, area, z=z)
    pa = producers_accuracy(m, area, z=z)
    out = pd.DataFrame(
        {
            "n_points": n.sum(axis=1).astype(np.int64),
            "weight": area / area.sum(),
            "users_accuracy": ua["estimate"].to_numpy(),
            "users_ci95": ua["ci95"].to_numpy(),
            "producers_accuracy": pa["estimate"].to_numpy(),
            "producers_ci95": pa["ci95"].to_numpy(),
            "commission_error": 1 - ua["estimate"].to_numpy(),
            "commission_ci95": ua["ci95"].to_numpy(),
            "omission_error": 1 - pa["estimate"].to_numpy(),
            "omission_ci95": pa["ci95"].to_numpy(),
        },
        index=pd.Index(m.index, name="class"),
    )
    return out


def estimate_area(
    matrix: pd.DataFrame | Array,
    mapped_area: Any,
    *,
    pixel_area_m2: float = 100.0,
    z: float = Z95,
) -> pd.DataFrame:
    """Stratified (error-adjusted) area of each reference class with SE and 95% interval.

    ``p_.k = sum_i W_i n_ik / n_i.``; ``S(p_.k) = sqrt(sum_i W_i^2 (n_ik/n_i.)(1 -
    n_ik/n_i.) / (n_i. - 1))``; area = ``p_.k * N`` (Olofsson et al. 2014, eqs 9-11).

    Parameters
    ----------
    matrix
        Error matrix of counts, rows map, columns reference.
    mapped_area
        Mapped pixels of each map class.
    pixel_area_m2
        Area of a pixel (Sentinel-2 10 m: 100 m^2; see :func:`vitseg.accuracy.pixel_area_m2`).
    z
        Normal quantile of the interval.

    Returns
    -------
    pandas.DataFrame
        Index classes; ``mapped_px``, ``mapped_ha``, ``proportion``,
        ``proportion_se``, ``area_px``, ``area_px_se``, ``area_ha``, ``area_ha_se``,
        ``area_ha_ci95``, ``area_ha_lower``, ``area_ha_upper``.

    Raises
    ------
    SampleError
        NaN, infinite or negative counts or mapped areas (naming the class), a mapped
        class without sample points.
    ParamsError
        ``pixel_area_m2`` or ``z`` not a finite number > 0.

    Examples
    --------
    >>> a = estimate_area([[8, 2], [0, 10]], [25, 75], pixel_area_m2=10_000)
    >>> a["area_ha"].tolist()
    [20.0, 80.0]
    """
    z = _check_positive(z, "z")
    pixel_area_m2 = _check_positive(pixel_area_m2, "pixel_area_m2")
    m, n, area = _check_matrix(matrix, mapped_area)
    total = area.sum()
    w = area / total
    props, denom = _row_props(n)
    prop = np.sum(w[:, None] * props, axis=0)
    terms = np.where(w[:, None] > 0, (w**2)[:, None] * props * (1 - props) / denom[:, None], 0.0)
    se = np.sqrt(np.sum(terms, axis=0))
    ha = pixel_area_m2 / _M2_PER_HA
    out = pd.DataFrame(
        {
            "mapped_px": area,
            "mapped_ha": area * ha,
            "proportion": prop,
            "proportion_se": se,
            "area_px": prop * total,
            "area_px_se": se * total,
            "area_ha": prop * total * ha,
            "area_ha_se": se * total * ha,
        },
        index=pd.Index(m.index, name="class"),
    )
    out["area_ha_ci95"] = z * out["area_ha_se"]
    out["area_ha_lower"] = out["area_ha"] - out["area_ha_ci95"]
    out["area_ha_upper"] = out["area_ha"] + out["area_ha_ci95"]
    return out


def estimate_zone_areas(
    sample: pd.DataFrame,
    mapped_area: Any,
    *,
    zone_col: str = "zone",
    classes: Sequence[str] = CLASSES,
    map_col: str = "map_class",
    ref_col: str = _REF,
    pixel_area_m2: float = 100.0,
    z: float = Z95,
) -> pd.DataFrame:
    """Area of each reference class within each zone (e.g. district), with intervals.

    A domain estimator under the same stratified design (Stehman 2014): for zone ``d``
    and class ``k`` let ``y_u = 1`` when point ``u`` is of reference class ``k`` and
    lies in ``d``; the total is ``sum_h N_h ybar_h`` and its variance
    ``sum_h N_h^2 s_h^2 / n_h`` over strata ``h``. With a single zone covering the map
    this equals :func:`estimate_area`, and the zones' areas add up to it.

    Parameters
    ----------
    sample
        Interpreted sample with ``map_col``, ``ref_col`` and ``zone_col``.
    mapped_area
        Mapped pixels of each map class over the whole map (the strata sizes).
    zone_col
        Column naming each point's zone (NaN: outside all zones).
    classes, map_col, ref_col
        As in :func:`error_matrix`.
    pixel_area_m2, z
        As in :func:`estimate_area`.

    Returns
    -------
    pandas.DataFrame
        Columns ``zone``, ``class``, ``n_points``, ``area_px``, ``area_px_se``,
        ``area_ha``, ``area_ha_se``, ``area_ha_ci95``, ``area_ha_lower``,
        ``area_ha_upper``.

    Raises
    ------
    SampleError
        No ``zone_col`` column, or label problems as in :func:`~vitseg.reference.read_sample`.
    """
    if zone_col not in sample.columns:
        raise SampleError(
            f"sample has no zone column {zone_col!r}; columns are {list(sample.columns)}. "
            "Pass zones= to stratified_sample or add the column."
        )
    z = _check_positive(z, "z")
    pixel_area_m2 = _check_positive(pixel_area_m2, "pixel_area_m2")
    checked = read_sample(sample, classes=classes, map_col=map_col, ref_col=ref_col)
    matrix = error_matrix(checked, classes=classes, map_col=map_col, ref_col=ref_col)
    _, n, area = _check_matrix(matrix, mapped_area)
    n_h = n.sum(axis=1)
    strata = checked[map_col].map({c: i for i, c in enumerate(classes)}).to_numpy()
    ha = pixel_area_m2 / _M2_PER_HA
    rows = []
    for zone in pd.unique(checked[zone_col].dropna()):
        in_zone = (checked[zone_col] == zone).to_numpy()
        for name in classes:
            y = (in_zone & (checked[ref_col] == name).to_numpy()).astype(np.float64)
            total = 0.0
            var = 0.0
            for h in range(len(classes)):
                if area[h] == 0 or n_h[h] == 0:
                    continue
                yh = y[strata == h]
                total += area[h] * yh.mean()
                var += area[h] ** 2 * (yh.var(ddof=1) if yh.size > 1 else np.nan) / yh.size
            se = math.sqrt(var)
            rows.append(
                {
                    "zone": zone,
                    "class": name,
                    "n_points": int(y.sum()),
                    "area_px": total,
                    "area_px_se": se,
                    "area_ha": total * ha,
                    "area_ha_se": se * ha,
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["area_ha_ci95"] = z * out["area_ha_se"]
    out["area_ha_lower"] = out["area_ha"] - out["area_ha_ci95"]
    out["area_ha_upper"] = out["area_ha"] + out["area_ha_ci95"]
    return out


def count_ratios(matrix: pd.DataFrame | Array) -> pd.DataFrame:
    """Plain sample-count ratios per class, as Gallwey et al. Table 3 reports them.

    User's ``n_ii / n_i.``, producer's ``n_jj / n_.j``, commission ``1 - user's``,
    omission ``1 - producer's``, ignoring the strata weights (so biased when strata
    are not sampled in proportion to their area).

    Returns
    -------
    pandas.DataFrame
        Index classes; ``users_accuracy``, ``producers_accuracy``,
        ``commission_error``, ``omission_error``.

    Examples
    --------
    >>> count_ratios([[8, 2], [0, 10]])["producers_accuracy"].round(3).tolist()
    [1.0, 0.833]
    """
    m = matrix if isinstance(matrix, pd.DataFrame) else pd.DataFrame(np.asarray(matrix))
    n = m.to_numpy(dtype=np.float64)
    d = np.diag(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        ua = d / n.sum(axis=1)
        pa = d / n.sum(axis=0)
    return pd.DataFrame(
        {
            "users_accuracy": ua,
            "producers_accuracy": pa,
            "commission_error": 1 - ua,
            "omission_error": 1 - pa,
        },
        index=pd.Index(m.index, name="class"),
    )


def overall_count_ratio(matrix: pd.DataFrame | Array) -> float:
    """Plain overall accuracy of the sample: ``sum_i n_ii / n``.

    Examples
    --------
    >>> overall_count_ratio([[8, 2], [0, 10]])
    0.9
    """
    n = np.asarray(matrix.to_numpy() if isinstance(matrix, pd.DataFrame) else matrix, float)
    return float(np.trace(n) / n.sum())
