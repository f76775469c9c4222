"""The vitseg error hierarchy.

Every error raised on bad input is a :class:`VitsegError`. Subclasses also inherit
the matching builtin (``ValueError``, ``KeyError``, ``FileNotFoundError``, ...), so
code that already catches builtins keeps working. Messages say what was expected,
what came in, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BandError",
    "CRSMismatchError",
    "CheckpointError",
    "CorruptFileError",
    "CorruptRasterError",
    "DimensionError",
    "DownloadError",
    "EmptySearchError",
    "GridMismatchError",
    "LabelError",
    "MissingAssetError",
    "MissingCRSError",
    "MissingFileError",
    "NetworkError",
    "NoValidDataError",
    "NotebookFailedError",
    "ParamsError",
    "SampleError",
    "UnknownModelError",
    "VectorError",
    "VitsegError",
]


class VitsegError(Exception):
    """Base class of every error vitseg raises on bad input or a failed step."""


class MissingCRSError(VitsegError, ValueError):
    """A raster or vector layer has no coordinate reference system."""


class CRSMismatchError(VitsegError, ValueError):
    """Two layers that must share a CRS do not."""


class GridMismatchError(VitsegError, ValueError):
    """Two rasters that must share a grid (shape, transform) do not."""


class DimensionError(VitsegError, ValueError):
    """An array has the wrong dimensions, shape or dtype."""


class BandError(VitsegError, KeyError):
    """Unknown, missing or wrongly counted spectral bands."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class EmptySearchError(VitsegError, LookupError):
    """A STAC search (or a filter on its result) found no items."""


class MissingAssetError(VitsegError, KeyError):
    """A STAC item lacks an asset that the pipeline needs."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptRasterError(VitsegError, OSError):
    """A GeoTIFF/COG cannot be read: truncated, corrupt or not a raster."""


class NoValidDataError(VitsegError, ValueError):
    """Every pixel is no-data or masked (e.g. clouds over everything)."""


class VectorError(VitsegError, ValueError):
    """A vector layer is empty, of the wrong geometry type, or lacks attributes."""


class LabelError(VitsegError, ValueError):
    """Labels with unknown class values, or labels that do not match imagery."""


class SampleError(VitsegError, ValueError):
    """An accuracy-assessment sample is unusable (missing or unknown labels, empty strata)."""


class ParamsError(VitsegError, ValueError):
    """An experiment's parameters are unknown, of the wrong type or out of range."""


class NetworkError(VitsegError, ConnectionError):
    """A remote service failed after bounded retries."""


class DownloadError(VitsegError, OSError):
    """A download failed or its checksum does not match."""


class MissingFileError(VitsegError, FileNotFoundError):
    """An input file or folder that a step needs does not exist."""


class CheckpointError(VitsegError, ValueError):
    """A model checkpoint is truncated, not vitseg's, or holds objects ``weights_only`` refuses."""


class CorruptFileError(VitsegError, ValueError):
    """A JSON file (e.g. a report's ``manifest.json``) is truncated, not UTF-8 or not valid."""


class UnknownModelError(VitsegError, KeyError):
    """An architecture name that is not in :data:`vitseg.models.MODELS`."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotebookFailedError(VitsegError, RuntimeError):
    """A notebook raised while executing; the failed copy is kept for inspection."""
