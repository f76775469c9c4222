"""Names shared by every module: bands, classes and fill values."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BINARY_CLASSES",
    "CLASSES",
    "CLASS_COLORS",
    "IGNORE_INDEX",
    "S2_BANDS_10",
    "S2_BANDS_20M",
    "S2_BANDS_ALL",
    "SCL_CLASSES",
]

#: The ten Sentinel-2 bands used by Gallwey et al. (10 m and 20 m bands), in cube order.
S2_BANDS_10: Final[tuple[str, ...]] = (
    "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12",
)  # fmt: skip
#: Bands delivered at 20 m that vitseg resamples to 10 m (bicubic, Gallwey §2.2).
S2_BANDS_20M: Final[tuple[str, ...]] = ("B05", "B06", "B07", "B8A", "B11", "B12")
#: All 13 L1C bands (B01, B09, B10 are 60 m).
S2_BANDS_ALL: Final[tuple[str, ...]] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip

#: Gallwey et al.'s three macro-classes; the index is the class code in label rasters.
CLASSES: Final[tuple[str, ...]] = ("mines", "built", "vegetation")
#: VitSegh24's binary scheme: 0 = not mine, 1 = mine.
BINARY_CLASSES: Final[tuple[str, ...]] = ("background", "mines")
#: Label value for no-data / unlabelled pixels, ignored by losses and metrics.
IGNORE_INDEX: Final[int] = 255
#: Map colours (mines orange-red, built grey-purple, vegetation green), Gallwey Fig. 4 style.
CLASS_COLORS: Final[dict[str, str]] = {
    "mines": "#d95f02",
    "built": "#7570b3",
    "vegetation": "#1b9e77",
    "background": "#1b9e77",
}

#: Sentinel-2 L2A scene classification (SCL) codes.
SCL_CLASSES: Final[dict[int, str]] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}
