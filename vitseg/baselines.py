"""Pixel-based baselines: Spectral Angle Mapper, Random Forest and MLP (Gallwey et al. §2.6).

Gallwey et al. benchmarked their U-Net against three per-pixel classifiers: Spectral
Angle Mapping (QGIS SCP), a Random Forest with 100 trees and a shallow MLP (hidden
layers 10 and 5, ReLU, Adam, adaptive learning rate), trained on pixels unrolled from
the labelled tiles after reducing vegetation to at most five times the mine class.
This module gives those classifiers as scikit-learn estimators, the pixel sampling
and rebalancing, a 4-fold cross-validated search, whole-scene prediction that
streams over a (dask) cube, and the tile scores of Gallwey Tables 1-2.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # registers the .rio accessor; also used by _as_chw
import xarray as xr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from vitseg.constants import CLASSES, IGNORE_INDEX
from vitseg.errors import (
    BandError,
    DimensionError,
    LabelError,
    MissingFileError,
    ParamsError,
)
from vitseg.metrics import _whole_codes

__all__ = [
    "SpectralAngleMapper",
    "benchmark_table",
    "make_mlp",
    "make_random_forest",
    "predict_scene",
    "rebalance",
    "sample_pixels",
    "search_hyperparameters",
    "spectral_angles",
    "tile_scores",
]

Array = np.ndarray[Any, Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _count(name: str, value: Any, *, minimum: int = 1, none: bool = True) -> int | None:
    """``value`` as an int >= ``minimum`` (or None); NaN, fractions and strings refused."""
    if value is None and none:
        return None
    if not _is_number(value) or not np.isfinite(value) or value != int(value) or value < minimum:
        raise ParamsError(
            f"{name} must be an integer >= {minimum}{' or None' if none else ''}; got {value!r}"
        )
    return int(value)


def _real(name: str, arr: Any) -> Array:
    out = np.asarray(arr)
    if out.dtype.kind not in "iuf":
        raise DimensionError(
            f"{name} must hold real numbers (reflectance); got dtype {out.dtype}. Convert it, "
            "e.g. .astype('float32')"
        )
    return np.asarray(out, dtype=np.float64)


def spectral_angles(X: Array, references: Array) -> Array:
    """Angle in radians between each spectrum of ``X`` and each reference spectrum.

    Parameters
    ----------
    X
        ``(n_pixels, n_bands)`` spectra.
    references
        ``(n_classes, n_bands)`` reference spectra.

    Returns
    -------
    numpy.ndarray
        ``(n_pixels, n_classes)`` float64 angles in ``[0, pi]``. A zero spectrum (no
        direction) gets ``pi / 2`` against every reference; a spectrum with a NaN or
        infinite band gets NaN (no data, never a valid angle).

    Raises
    ------
    DimensionError
        Not 2-D, different band counts, or not real numbers.

    Examples
    --------
    >>> import numpy as np
    >>> a = spectral_angles(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0], [0.0, 2.0]]))
    >>> np.round(np.degrees(a), 6).tolist()
    [[45.0, 90.0]]
    """
    x, r = _real("X", X), _real("references", references)
    if x.ndim != 2 or r.ndim != 2 or x.shape[1] != r.shape[1]:
        raise DimensionError(
            f"X must be (n_pixels, n_bands) and references (n_classes, n_bands) with the same "
            f"bands; got shapes {x.shape} and {r.shape}"
        )
    bad_x = np.asarray(~np.isfinite(x).all(axis=1), dtype=bool)
    bad_r = np.asarray(~np.isfinite(r).all(axis=1), dtype=bool)
    # Scale each spectrum by its largest |value| (angles do not change) so huge values
    # do not overflow the norms.
    with np.errstate(invalid="ignore"):
        x = np.where(bad_x[:, None], 0.0, x)
        r = np.where(bad_r[:, None], 0.0, r)
        sx = np.max(np.abs(x), axis=1, keepdims=True, initial=0.0)
        sr = np.max(np.abs(r), axis=1, keepdims=True, initial=0.0)
        x = x / np.where(sx > 0, sx, 1.0)
        r = r / np.where(sr > 0, sr, 1.0)
    norm_x = np.linalg.norm(x, axis=1)[:, None]
    norm_r = np.linalg.norm(r, axis=1)[None, :]
    denom = norm_x * norm_r
    dot = x @ r.T
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), 0.0)
    out: Array = np.arccos(np.clip(cos, -1.0, 1.0))
    out[bad_x, :] = np.nan
    out[:, bad_r] = np.nan
    return out


class SpectralAngleMapper(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Spectral Angle Mapper: the class whose reference spectrum makes the smallest angle.

    Parameters
    ----------
    reference_spectra
        Optional ``(n_classes, n_bands)`` reference spectra, rows in the sorted order
        of the class labels seen by ``fit``. ``None`` (default) uses the mean spectrum
        of each class's training pixels.
    max_angle
        Optional largest angle in radians; a pixel farther than this from every
        reference gets ``unclassified``.
    unclassified
        Label for pixels beyond ``max_angle`` (default 255, vitseg's no-data).

    Attributes
    ----------
    classes_ : numpy.ndarray
        Class labels, sorted.
    reference_spectra_ : numpy.ndarray
        ``(n_classes, n_bands)`` spectra used for prediction.
    n_features_in_ : int
        Number of bands seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.1], [0.9, 0.0], [0.1, 1.0], [0.0, 0.8]])
    >>> sam = SpectralAngleMapper().fit(X, [0, 0, 1, 1])
    >>> sam.predict(np.array([[2.0, 0.3], [0.2, 3.0]])).tolist()
    [0, 1]
    """

    def __init__(
        self,
        reference_spectra: Array | None = None,
        *,
        max_angle: float | None = None,
        unclassified: int = IGNORE_INDEX,
    ) -> None:
        self.reference_spectra = reference_spectra
        self.max_angle = max_angle
        self.unclassified = unclassified

    def fit(self, X: Any, y: Any) -> SpectralAngleMapper:
        """Store the classes and their reference spectra; returns ``self``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if self.max_angle is not None and not 0 < float(self.max_angle) <= np.pi:
            raise ParamsError(
                f"'max_angle' must be in (0, pi] radians; got {self.max_angle!r}. "
                "Use numpy.radians(degrees) to convert."
            )
        if self.reference_spectra is None:
            refs = np.stack([X[y_idx == k].mean(axis=0) for k in range(len(self.classes_))])
        else:
            refs = _real("'reference_spectra'", self.reference_spectra)
            expected = (len(self.classes_), X.shape[1])
            if refs.shape != expected:
                raise DimensionError(
                    f"'reference_spectra' must have shape (n_classes, n_bands) = {expected}; "
                    f"got {refs.shape}. Give one row per class, in sorted label order."
                )
            bad = ~np.isfinite(refs).all(axis=1) | ~(np.abs(refs) > 0).any(axis=1)
            if bad.any():
                raise ParamsError(
                    f"'reference_spectra' rows {np.flatnonzero(bad).tolist()} (classes "
                    f"{self.classes_[bad].tolist()}) hold NaN/inf or only zeros; a reference "
                    "spectrum needs finite values and a direction"
                )
        self.reference_spectra_ = refs
        return self

    def angles(self, X: Any) -> Array:
        """Angles in radians, ``(n_pixels, n_classes)``, to each reference spectrum."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return spectral_angles(X, self.reference_spectra_)

    def predict(self, X: Any) -> Array:
        """Class of the smallest angle (``unclassified`` beyond ``max_angle``)."""
        ang = self.angles(X)
        best = np.argmin(ang, axis=1)
        pred: Array = self.classes_[best]
        if self.max_angle is not None:
            beyond = ang[np.arange(len(best)), best] > float(self.max_angle)
            if beyond.any():
                pred = pred.astype(np.result_type(pred.dtype, np.asarray(self.unclassified)))
                pred[beyond] = self.unclassified
        return pred


def make_random_forest(
    *,
    n_estimators: int = 100,
    random_state: int | None = None,
    n_jobs: int | None = None,
    **kw: Any,
) -> Any:
    """Random Forest with Gallwey et al.'s setting (100 trees).

    Parameters
    ----------
    n_estimators
        Number of trees (paper: 100).
    random_state
        Seed.
    n_jobs
        Parallel jobs for fit and predict (``None`` = 1, ``-1`` = all cores).
    **kw
        Other :class:`sklearn.ensemble.RandomForestClassifier` arguments.

    Returns
    -------
    sklearn.ensemble.RandomForestClassifier
        Unfitted.

    Examples
    --------
    >>> make_random_forest(random_state=0).n_estimators
    100
    """
    from sklearn.ensemble import RandomForestClassifier

    n_estimators = _count("n_estimators", n_estimators, none=False)  # type: ignore[assignment]
    return RandomForestClassifier(
        n_estimators=n_estimators, random_state=random_state, n_jobs=n_jobs, **kw
    )


def make_mlp(
    *,
    hidden_layer_sizes: tuple[int, ...] = (10, 5),
    activation: str = "relu",
    solver: str = "adam",
    learning_rate: str = "adaptive",
    max_iter: int = 300,
    scale: bool = True,
    random_state: int | None = None,
    **kw: Any,
) -> Any:
    """Multi-layer perceptron with Gallwey et al.'s settings.

    Hidden layers (10, 5), ReLU, Adam, adaptive learning rate. Note that scikit-learn
    applies ``learning_rate="adaptive"`` only with the ``"sgd"`` solver; with Adam the
    step sizes adapt per weight anyway. It is kept so that the paper's setting is
    visible and a switch to SGD keeps it.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, learning_rate, max_iter
        :class:`sklearn.neural_network.MLPClassifier` arguments.
    scale
        Put a :class:`~sklearn.preprocessing.StandardScaler` in front (default True;
        reflectances span very different ranges per band).
    random_state
        Seed.
    **kw
        Other ``MLPClassifier`` arguments.

    Returns
    -------
    sklearn.pipeline.Pipeline or sklearn.neural_network.MLPClassifier
        Unfitted.

    Examples
    --------
    >>> make_mlp(scale=False).hidden_layer_sizes
    (10, 5)
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    max_iter = _count("max_iter", max_iter, none=False)  # type: ignore[assignment]
    sizes = tuple(hidden_layer_sizes) if isinstance(hidden_layer_sizes, Sequence) else None
    if sizes is None or not all(_is_number(v) and v == int(v) and v >= 1 for v in sizes):
        raise ParamsError(
            f"hidden_layer_sizes must be a tuple of layer widths >= 1, e.g. (10, 5); got "
            f"{hidden_layer_sizes!r}"
        )
    mlp = MLPClassifier(
        hidden_layer_sizes=hidden_layer_sizes,
        activation=activation,
        solver=solver,
        learning_rate=learning_rate,
        max_iter=max_iter,
        random_state=random_state,
        **kw,
    )
    return make_pipeline(StandardScaler(), mlp) if scale else mlp


def _label_value(label: Hashable, y: Array, classes: Sequence[str]) -> Any:
    """Map a class name to its code when ``y`` holds (integer or whole float) codes."""
    if isinstance(label, str) and y.dtype.kind in "iuf":
        if label not in classes:
            raise LabelError(f"unknown class {label!r}; expected one of {list(classes)}")
        return classes.index(label)
    if isinstance(label, str) and label not in classes and not np.any(y == label):
        raise LabelError(
            f"unknown class {label!r}: neither in classes {list(classes)} nor among the labels "
            f"{np.unique(y)[:10].tolist()}"
        )
    return label


def rebalance(
    X: Array,
    y: Array,
    *,
    max_ratio: float = 5.0,
    majority: Hashable = "vegetation",
    minority: Hashable = "mines",
    classes: Sequence[str] = CLASSES,
    random_state: int | None = None,
) -> tuple[Array, Array]:
    """Subsample the majority class to at most ``max_ratio`` times the minority class.

    Gallwey et al. reduced vegetation to five times the mine class before training the
    Random Forest and the MLP. Other classes are kept whole; the order of the kept
    rows is preserved.

    Parameters
    ----------
    X
        ``(n, n_bands)`` features.
    y
        ``(n,)`` labels: class names, or integer codes (then ``majority`` and
        ``minority`` names are looked up in ``classes``).
    max_ratio
        Largest allowed ``count(majority) / count(minority)``.
    majority, minority
        Class names or codes.
    classes
        Class names whose index is the code.
    random_state
        Seed for the subsample.

    Returns
    -------
    tuple of numpy.ndarray
        ``(X, y)`` rebalanced.

    Raises
    ------
    LabelError
        The minority class is absent (nothing to balance against).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0] * 2 + [2] * 30)
    >>> _, yb = rebalance(np.zeros((32, 1)), y, random_state=0)
    >>> int((yb == 2).sum())
    10
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise DimensionError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    if not _is_number(max_ratio) or not np.isfinite(max_ratio) or max_ratio <= 0:
        raise ParamsError(f"'max_ratio' must be a finite number > 0; got {max_ratio!r}")
    maj = _label_value(majority, y, classes)
    mino = _label_value(minority, y, classes)
    if maj == mino:
        raise ParamsError(
            f"majority and minority are the same class ({majority!r}, {minority!r}); "
            "nothing would be rebalanced"
        )
    n_min = int(np.sum(y == mino))
    if n_min == 0:
        raise LabelError(
            f"minority class {minority!r} has no samples (labels present: "
            f"{np.unique(y).tolist()}); sample pixels from tiles that contain it"
        )
    maj_idx = np.flatnonzero(y == maj)
    limit = int(np.floor(max_ratio * n_min))
    if maj_idx.size <= limit:
        return X, y
    rng = np.random.default_rng(random_state)
    drop = rng.choice(maj_idx, size=maj_idx.size - limit, replace=False)
    keep = np.ones(y.shape[0], dtype=bool)
    keep[drop] = False
    return X[keep], y[keep]


def search_hyperparameters(
    estimator: Any,
    X: Array,
    y: Array,
    *,
    param_grid: Mapping[str, Sequence[Any]],
    n_splits: int = 4,
    scoring: str = "balanced_accuracy",
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> Any:
    """Grid search with stratified ``n_splits``-fold cross-validation (paper: 4 folds).

    Parameters
    ----------
    estimator
        A scikit-learn estimator (e.g. from :func:`make_random_forest`).
    X, y
        Training pixels and labels.
    param_grid
        Parameter names to candidate values.
    n_splits
        Number of folds.
    scoring
        scikit-learn scorer name.
    random_state
        Seed of the fold shuffling.
    n_jobs
        Parallel jobs.

    Returns
    -------
    sklearn.model_selection.GridSearchCV
        Fitted; ``best_estimator_`` is refitted on all of ``X``.
    """
    from sklearn.metrics import get_scorer_names
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    n_splits = _count("n_splits", n_splits, minimum=2, none=False)  # type: ignore[assignment]
    _, per_class = np.unique(np.asarray(y), return_counts=True)
    if per_class.size and n_splits > per_class.min():
        raise ParamsError(
            f"n_splits={n_splits} folds need >= {n_splits} pixels of every class; the rarest "
            f"class has {int(per_class.min())}. Use fewer folds or sample more pixels"
        )
    bad = [k for k, v in dict(param_grid).items() if isinstance(v, str) or np.ndim(v) != 1]
    if bad:
        raise ParamsError(
            f"param_grid values must be lists of candidates; {bad} are not, e.g. "
            f"{{'max_depth': [None, 20]}}"
        )
    if scoring not in get_scorer_names():
        raise ParamsError(
            f"unknown scoring {scoring!r}; use a scikit-learn scorer name such as "
            "'balanced_accuracy', 'f1_macro' or 'accuracy'"
        )
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    search = GridSearchCV(
        estimator, dict(param_grid), cv=cv, scoring=scoring, n_jobs=n_jobs, refit=True
    )
    return search.fit(X, y)


def _as_chw(image: Any, bands: Sequence[str] | None) -> Array:
    """Return a ``(band, y, x)`` float array from a DataArray, array or GeoTIFF path."""
    if isinstance(image, (str, os.PathLike)):
        _check_file(image, "image")
        da = rioxarray.open_rasterio(image, masked=True)
        names = da.attrs.get("long_name")
        if isinstance(names, (tuple, list)) and len(names) == da.sizes["band"]:
            da = da.assign_coords(band=list(names))
        image = da
    if isinstance(image, xr.DataArray):
        if "band" not in image.dims:
            raise DimensionError(f"image needs a 'band' dimension; got dims {image.dims}")
        if bands is not None:
            missing = [b for b in bands if b not in image["band"].values.tolist()]
            if missing:
                raise BandError(
                    f"image lacks bands {missing}; it has {image['band'].values.tolist()}"
                )
            image = image.sel(band=list(bands))
        image = image.transpose("band", "y", "x")
        image = image.values
    arr = np.asarray(image)
    if arr.dtype.kind not in "iuf":
        raise DimensionError(
            f"image must hold real numbers (reflectance); got dtype {arr.dtype}. Convert it, "
            "e.g. image.astype('float32')"
        )
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise DimensionError(f"image must be (band, y, x) with >= 1 band; got shape {arr.shape}")
    return np.asarray(arr, dtype=np.float32)


def _check_file(path: Any, what: str) -> None:
    if not os.path.isfile(path):
        state = "is a folder" if os.path.isdir(path) else "does not exist"
        raise MissingFileError(f"{what} {str(path)!r} {state}; give a GeoTIFF chip file")


def _as_mask(mask: Any) -> Array:
    if isinstance(mask, (str, os.PathLike)):
        import rasterio

        _check_file(mask, "mask")
        with rasterio.open(mask) as src:
            return np.asarray(src.read(1))
    arr = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DimensionError(f"mask must be (y, x); got shape {arr.shape}")
    return arr


def sample_pixels(
    images: Sequence[Any],
    masks: Sequence[Any],
    *,
    n_per_class: int | None = None,
    max_pixels: int | None = None,
    bands: Sequence[str] | None = None,
    ignore_index: int = IGNORE_INDEX,
    random_state: int | None = None,
) -> tuple[Array, Array]:
    """Unroll labelled images into a pixel table ``(X, y)``, optionally subsampled.

    Pixels whose label is ``ignore_index`` or with any non-finite band are dropped.

    Parameters
    ----------
    images
        ``(band, y, x)`` DataArrays, numpy arrays, or GeoTIFF chip paths (notebook 03's
        ``tiles/images/<tile_id>.tif``, band names in the descriptions).
    masks
        Matching ``(y, x)`` label rasters (class codes; arrays, DataArrays or paths).
    n_per_class
        Keep at most this many random pixels of each class (all pixels of a rarer one).
    max_pixels
        Keep at most this many random pixels overall (after ``n_per_class``).
    bands
        Band names to select (DataArrays and paths only).
    ignore_index
        Label of unlabelled / no-data pixels.
    random_state
        Seed of the subsample.

    Returns
    -------
    tuple of numpy.ndarray
        ``X`` ``(n, n_bands)`` float32 and ``y`` ``(n,)`` int64.

    Raises
    ------
    DimensionError
        Unequal numbers of images and masks, shapes that differ, images with no band
        or not of real numbers.
    LabelError
        No labelled pixel at all, or mask values that are not whole codes in 0..255
        (NaN in a float mask is no data).
    ParamsError
        ``n_per_class`` or ``max_pixels`` not an integer >= 1.
    MissingFileError
        A path that does not exist or is a folder.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.ones((2, 3, 3), dtype="float32")
    >>> mask = np.array([[0, 0, 255], [1, 1, 1], [2, 2, 2]])
    >>> X, y = sample_pixels([img], [mask], n_per_class=2, random_state=0)
    >>> X.shape, np.bincount(y).tolist()
    ((6, 2), [2, 2, 2])
    """
    if len(images) != len(masks):
        raise DimensionError(f"got {len(images)} images but {len(masks)} masks")
    n_per_class = _count("n_per_class", n_per_class)
    max_pixels = _count("max_pixels", max_pixels)
    xs: list[Array] = []
    ys: list[Array] = []
    for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
        arr = _as_chw(image, bands)
        lab = _as_mask(mask)
        if arr.shape[1:] != lab.shape:
            raise DimensionError(f"image {i} is {arr.shape[1:]} pixels but its mask is {lab.shape}")
        flat = arr.reshape(arr.shape[0], -1).T
        labels = _whole_codes(lab, ignore_index, f"mask {i}").reshape(-1)
        wrong = (labels != ignore_index) & ((labels < 0) | (labels > 255))
        if wrong.any():
            raise LabelError(
                f"mask {i} holds values outside 0..255, e.g. "
                f"{np.unique(labels[wrong])[:3].tolist()}; class codes are uint8 "
                f"({ignore_index} = no data). Recode the mask"
            )
        ok = (labels != ignore_index) & np.all(np.isfinite(flat), axis=1)
        xs.append(flat[ok])
        ys.append(labels[ok])
    if not xs or sum(len(v) for v in ys) == 0:
        raise LabelError(
            f"no labelled pixel in {len(images)} images (all labels are {ignore_index} or "
            "bands are NaN); check the masks"
        )
    X = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys)
    rng = np.random.default_rng(random_state)
    if n_per_class is not None:
        keep = []
        for cls in np.unique(y):
            idx = np.flatnonzero(y == cls)
            if idx.size > n_per_class:
                idx = rng.choice(idx, size=n_per_class, replace=False)
            keep.append(idx)
        sel = np.sort(np.concatenate(keep))
        X, y = X[sel], y[sel]
    if max_pixels is not None and y.size > max_pixels:
        sel = np.sort(rng.choice(y.size, size=max_pixels, replace=False))
        X, y = X[sel], y[sel]
    return X, y


def _predict_block(
    block: Array, *, estimator: Any, nodata: int, batch_pixels: int, dtype: Any
) -> Array:
    """Predict a ``(..., band)`` block; NaN pixels get ``nodata``."""
    shape = block.shape[:-1]
    flat = block.reshape(-1, block.shape[-1])
    out = np.full(flat.shape[0], nodata, dtype=dtype)
    valid = np.all(np.isfinite(flat), axis=1)
    idx = np.flatnonzero(valid)
    for start in range(0, idx.size, batch_pixels):
        sel = idx[start : start + batch_pixels]
        out[sel] = estimator.predict(flat[sel].astype(np.float32, copy=False))
    return out.reshape(shape)


def predict_scene(
    estimator: Any,
    cube: xr.DataArray,
    *,
    bands: Sequence[str] | None = None,
    nodata: int = IGNORE_INDEX,
    batch_pixels: int = 262_144,
    dtype: Any = np.uint8,
) -> xr.DataArray:
    """Classify every pixel of a cube with a fitted pixel estimator, chunk by chunk.

    Lazy on dask input: each chunk (all bands of a block of pixels) is predicted when
    the result is computed, in batches of ``batch_pixels`` pixels, so memory stays
    bounded by the chunk size. On numpy input the result is computed at once (still in
    batches).

    Parameters
    ----------
    estimator
        Fitted classifier whose ``predict`` returns integer class codes.
    cube
        ``(band, y, x)`` or ``(time, band, y, x)`` reflectances with a ``band`` dim.
    bands
        Bands to use, in the order the estimator was trained on (default: all).
    nodata
        Output for pixels with any NaN band.
    batch_pixels
        Pixels per ``predict`` call.
    dtype
        Output dtype (class codes).

    Returns
    -------
    xarray.DataArray
        The cube's dims without ``band``, class codes, coords and CRS kept, named
        ``"class"``.

    Raises
    ------
    DimensionError
        No ``band`` dimension, or a cube that is not real numbers.
    BandError
        Requested bands are missing.
    ParamsError
        An unfitted estimator, ``batch_pixels`` < 1, classes that do not fit ``dtype``,
        or a ``nodata`` that ``dtype`` cannot hold or that is also a class.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> sam = SpectralAngleMapper().fit(np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 1])
    >>> cube = xr.DataArray(np.array([[[1.0, np.nan]], [[0.1, 1.0]]]), dims=("band", "y", "x"))
    >>> predict_scene(sam, cube).values.tolist()
    [[0, 255]]
    """
    if not isinstance(cube, xr.DataArray):
        raise DimensionError(f"cube must be an xarray.DataArray; got {type(cube).__name__}")
    if "band" not in cube.dims:
        raise DimensionError(f"cube needs a 'band' dimension; got dims {cube.dims}")
    if cube.dtype.kind not in "iuf":
        raise DimensionError(f"cube must hold real numbers (reflectance); got dtype {cube.dtype}")
    batch_pixels = _count("batch_pixels", batch_pixels, none=False)  # type: ignore[assignment]
    out_dtype = np.dtype(dtype)
    if not hasattr(estimator, "predict") or not hasattr(estimator, "classes_"):
        raise ParamsError(
            f"estimator must be a fitted classifier (call fit(X, y) first); got "
            f"{type(estimator).__name__} without classes_"
        )
    codes = np.asarray(estimator.classes_)
    if out_dtype.kind in "iu":
        info = np.iinfo(out_dtype)
        fits = codes.dtype.kind in "iu" and (codes.size == 0 or (
            codes.min() >= info.min and codes.max() <= info.max))  # fmt: skip
        if not fits:
            raise ParamsError(
                f"the estimator's classes {codes[:5].tolist()} do not fit dtype {out_dtype} "
                "(they would wrap); train on integer codes 0..254 or pass a wider dtype"
            )
        if not (_is_number(nodata) and nodata == int(nodata) and info.min <= nodata <= info.max):
            raise ParamsError(f"nodata must be an integer that {out_dtype} holds; got {nodata!r}")
    if np.isin(nodata, codes).any():
        raise ParamsError(
            f"nodata={nodata!r} is also a class the estimator predicts ({codes.tolist()}); "
            "no-data pixels would read as that class. Use e.g. nodata=255"
        )
    if bands is not None:
        have = cube["band"].values.tolist() if "band" in cube.coords else []
        missing = [b for b in bands if b not in have]
        if missing:
            raise BandError(f"cube lacks bands {missing}; it has {have}")
        cube = cube.sel(band=list(bands))
    n_feat = getattr(estimator, "n_features_in_", None)
    if n_feat is not None and n_feat != cube.sizes["band"]:
        raise BandError(
            f"estimator was fitted on {n_feat} bands but the cube has {cube.sizes['band']}; "
            "pass bands=[...] in the training order"
        )
    if cube.chunks is not None:
        cube = cube.chunk({"band": -1})
    out = xr.apply_ufunc(
        _predict_block,
        cube,
        input_core_dims=[["band"]],
        dask="parallelized",
        output_dtypes=[dtype],
        kwargs={
            "estimator": estimator,
            "nodata": nodata,
            "batch_pixels": batch_pixels,
            "dtype": dtype,
        },
    )
    out = out.rename("class")
    out.attrs = {"_FillValue": nodata, "long_name": "class code"}
    crs = cube.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out


def tile_scores(
    truth: Any,
    pred: Any,
    *,
    classes: Sequence[str] = CLASSES,
    mine_class: str = "mines",
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, float]:
    """Gallwey et al. eqs 4-6 on one tile: mean/mine class accuracy, mean/mine IoU.

    Class accuracy is ``TP / (TP + FN)`` (recall of the reference class), IoU is
    ``TP / (TP + FP + FN)``; means are over classes present in the reference or the
    prediction. Pixels whose reference or prediction is ``ignore_index`` are skipped.

    Parameters
    ----------
    truth, pred
        Label arrays of the same shape (class codes).
    classes
        Class names whose index is the code.
    mine_class
        Name of the mine class.
    ignore_index
        Label skipped in both arrays.

    Returns
    -------
    dict
        ``mean_class_accuracy``, ``mine_class_accuracy``, ``mean_iou``, ``mine_iou``
        (NaN where undefined, e.g. no mine pixel anywhere).

    Examples
    --------
    >>> import numpy as np
    >>> s = tile_scores(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    >>> s["mine_class_accuracy"], s["mine_iou"], s["mean_class_accuracy"]
    (0.5, 0.5, 0.8333333333333334)
    """
    if np.shape(truth) != np.shape(pred):
        raise DimensionError(
            f"truth {np.shape(truth)} and prediction {np.shape(pred)} must have the same shape"
        )
    if mine_class not in classes:
        raise LabelError(f"mine_class {mine_class!r} is not one of the classes {list(classes)}")
    t = _whole_codes(truth, ignore_index, "truth").reshape(-1)
    p = _whole_codes(pred, ignore_index, "prediction").reshape(-1)
    k = len(classes)
    for name, a in (("truth", t), ("prediction", p)):
        wrong = (a != ignore_index) & ((a < 0) | (a >= k))
        if wrong.any():
            raise LabelError(
                f"{name} holds codes {np.unique(a[wrong])[:5].tolist()} outside 0..{k - 1} "
                f"and {ignore_index}; they would be skipped silently. Check classes="
            )
    ok = (t != ignore_index) & (p != ignore_index)
    cm = np.bincount(t[ok] * k + p[ok], minlength=k * k).reshape(k, k).astype(np.float64)
    tp = np.diag(cm)
    ref = cm.sum(axis=1)
    union = ref + cm.sum(axis=0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(ref > 0, tp / np.where(ref > 0, ref, 1), np.nan)
        iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
    m = classes.index(mine_class)
    present_ref = ref > 0
    present = union > 0
    return {
        "mean_class_accuracy": float(np.mean(acc[present_ref])) if present_ref.any() else np.nan,
        "mine_class_accuracy": float(acc[m]),
        "mean_iou": float(np.mean(iou[present])) if present.any() else np.nan,
        "mine_iou": float(iou[m]),
    }


def benchmark_table(
    results: Mapping[str, Mapping[str, tuple[Any, Any]]],
    *,
    classes: Sequence[str] = CLASSES,
    ignore_index: int = IGNORE_INDEX,
    average_label: str = "Average",
) -> pd.DataFrame:
    """Scores per classifier and tile, plus each classifier's average (Gallwey Tables 1-2).

    Parameters
    ----------
    results
        ``{classifier: {tile: (truth, prediction)}}``.
    classes
        Class names whose index is the code.
    ignore_index
        Label skipped.
    average_label
        Tile name of the per-classifier mean row.

    Returns
    -------
    pandas.DataFrame
        Columns ``classifier, tile, mean_class_accuracy, mine_class_accuracy,
        mean_iou, mine_iou``; one row per classifier and tile, then one average row
        per classifier (mean over tiles, NaNs skipped).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 1, 2])
    >>> benchmark_table({"RF": {"A": (t, t)}}).iloc[0, 2:].to_numpy(dtype=float).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    rows = []
    if not isinstance(results, Mapping) or not all(
        isinstance(v, Mapping) for v in results.values()
    ):
        raise ParamsError(
            "results must be {classifier: {tile: (truth, prediction)}}; got "
            f"{type(results).__name__}"
        )
    for clf, tiles in results.items():
        for tile, pair in tiles.items():
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ParamsError(
                    f"results[{clf!r}][{tile!r}] must be a (truth, prediction) pair; got "
                    f"{type(pair).__name__}"
                )
            truth, pred = pair
            scores = tile_scores(truth, pred, classes=classes, ignore_index=ignore_index)
            rows.append({"classifier": clf, "tile": tile, **scores})
    cols = ["classifier", "tile", "mean_class_accuracy", "mine_class_accuracy"]
    cols += ["mean_iou", "mine_iou"]
    table = pd.DataFrame(rows, columns=cols)
    if table.empty:
        return table
    avg = table.groupby("classifier", sort=False)[cols[2:]].mean().reset_index()
    avg.insert(1, "tile", average_label)
    return pd.concat([table, avg], ignore_index=True)
