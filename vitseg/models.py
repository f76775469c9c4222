"""Segmentation models: a registry over segmentation-models-pytorch, and device helpers.

Two architectures reproduce the two papers:

``"unet"`` (Gallwey et al. §2.4)
    A U-Net with a ResNet-34 encoder by default and two 50 % dropout layers. Gallwey et
    al. place one dropout layer at the end of the encoder path and one at the model's
    midpoint (the bridge of MATLAB's ``unetLayers``). Here the smp U-Net's encoder
    returns one feature map per stage; vitseg applies element-wise dropout to the
    two deepest ones: the last encoder stage before the bottleneck (1/16 resolution,
    which the decoder reads through its deepest skip connection: "end of the encoder
    path") and the bottleneck itself (1/32 resolution: "midpoint"), before the decoder
    sees them. Three classes (mines, built, vegetation) by default.
``"segformer"`` (VitSegh24)
    SegFormer with the ``mit_b0`` Mix-Transformer encoder and the all-MLP decoder.
    VitSegh24 fine-tunes the Hugging Face SegFormer; its classifier dropout (0.1) is
    applied here before the segmentation head. The binary mine / not-mine task uses
    **two** output channels (softmax over background and mines), so every model in vitseg
    returns logits of shape ``(N, K, H, W)`` with ``K >= 2`` and the class is an argmax,
    for the binary and the 3-class schemes alike.

Both accept any band count (``in_channels``) and train from scratch by default
(``encoder_weights=None``: nothing can be downloaded offline). Input height and width
must be multiples of 32; :func:`predict_logits` pads and crops for any size.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import vitseg.compat  # noqa: F401  (must precede segmentation_models_pytorch)
from vitseg.errors import (
    BandError,
    DimensionError,
    ParamsError,
    UnknownModelError,
    VitsegError,
)

__all__ = [
    "BF16_CPU_FLAGS",
    "MODELS",
    "SegmentationModel",
    "UnknownModelError",
    "amx_available",
    "autocast_context",
    "bf16_cpu_flags",
    "bf16_decision",
    "channels_last",
    "cpu_flags",
    "create_model",
    "predict_logits",
    "prepare_model",
    "select_device",
    "to_input",
    "use_bf16",
]

#: Input height and width must be multiples of this (the encoders downsample 5 times).
SIZE_MULTIPLE = 32


class SegmentationModel(nn.Module):
    """An smp encoder-decoder with dropout on chosen encoder features and before the head.

    Parameters
    ----------
    net
        A ``segmentation_models_pytorch`` model (``encoder``, ``decoder`` and
        ``segmentation_head`` attributes).
    feature_dropout
        Dropout probability per encoder feature index (negative indices count from the
        deepest feature), applied before the decoder.
    head_dropout
        Dropout probability on the decoder output, before the segmentation head.
    meta
        Plain-typed description (arch, in_channels, classes, encoder, dropout), stored in
        checkpoints so that :func:`vitseg.train.load_model` can rebuild the model.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        feature_dropout: dict[int, float] | None = None,
        head_dropout: float = 0.0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self._feature_index = sorted((feature_dropout or {}).keys())
        self.feature_dropout = nn.ModuleList(
            nn.Dropout(p=(feature_dropout or {})[i]) for i in self._feature_index
        )
        self.head_dropout = nn.Dropout(p=head_dropout) if head_dropout > 0 else nn.Identity()
        self.meta: dict[str, Any] = dict(meta or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, classes, H, W)`` for images ``(N, in_channels, H, W)``.

        Raises
        ------
        DimensionError
            ``x`` is not a 4-D floating-point tensor (e.g. uint8 digital numbers, or one
            image without its batch dim), or float64 for float32 weights.
        BandError
            ``x`` has another band count than ``meta["in_channels"]``.
        VitsegError
            Height or width is not a multiple of 32.
        """
        _check_batch(x, "x")
        n_in = self.meta.get("in_channels")
        if isinstance(n_in, int) and x.shape[1] != n_in:
            raise BandError(
                f"the model takes {n_in} bands but the input has {x.shape[1]} (shape "
                f"{tuple(x.shape)}); feed the bands it was trained on, in order"
            )
        weights = next(self.parameters(), None)
        if x.dtype == torch.float64 and weights is not None and weights.dtype != torch.float64:
            raise DimensionError(
                f"input is float64 but the model's weights are {weights.dtype}; cast it with "
                "x.float()"
            )
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise VitsegError(
                f"input height and width must be multiples of {SIZE_MULTIPLE}; got {h}x{w}. "
                "Crop or pad the patch, or call vitseg.models.predict_logits(model, x), "
                "which pads and crops back."
            )
        net: Any = self.net  # smp is untyped
        features = list(net.encoder(x))
        for i, drop in zip(self._feature_index, self.feature_dropout, strict=True):
            features[i] = drop(features[i])
        decoded = self.head_dropout(net.decoder(features))
        out: torch.Tensor = net.segmentation_head(decoded)
        return out


def _check_batch(x: Any, name: str) -> None:
    """Refuse anything but a non-empty 4-D floating-point tensor ``(N, C, H, W)``."""
    if not isinstance(x, torch.Tensor):
        raise DimensionError(
            f"{name} must be a torch.Tensor (N, C, H, W); got {type(x).__name__}. Convert "
            "arrays with torch.from_numpy(a)"
        )
    if x.ndim != 4 or 0 in x.shape:
        raise DimensionError(
            f"{name} must be a non-empty batch (N, C, H, W); got shape {tuple(x.shape)}. One "
            "image? Add the batch dim with x[None]"
        )
    if not x.is_floating_point():
        raise DimensionError(
            f"{name} must hold floating-point reflectance, normalised as in training; got "
            f"{x.dtype}. Digital numbers? Scale them (x.float() * 1e-4) and normalise"
        )


def _build_unet(
    *, in_channels: int, classes: int, encoder: str, encoder_weights: str | None,
    dropout: float, **kw: Any,
) -> tuple[nn.Module, dict[int, float], float]:  # fmt: skip
    import segmentation_models_pytorch as smp

    net = smp.Unet(
        encoder_name=encoder, encoder_weights=encoder_weights, in_channels=in_channels,
        classes=classes, **kw,
    )  # fmt: skip
    # Gallwey §2.4: end of the encoder path (deepest skip) and the bridge (bottleneck).
    return net, {-2: dropout, -1: dropout}, 0.0


def _build_segformer(
    *, in_channels: int, classes: int, encoder: str, encoder_weights: str | None,
    dropout: float, **kw: Any,
) -> tuple[nn.Module, dict[int, float], float]:  # fmt: skip
    import segmentation_models_pytorch as smp

    net = smp.Segformer(
        encoder_name=encoder, encoder_weights=encoder_weights, in_channels=in_channels,
        classes=classes, **kw,
    )  # fmt: skip
    return net, {}, dropout


def _smp_options(arch: str) -> set[str]:
    """Keyword options of the smp model behind ``arch`` that vitseg passes on (``**kw``)."""
    import segmentation_models_pytorch as smp

    cls = {"unet": smp.Unet, "segformer": smp.Segformer}[arch]
    named = {
        name for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }  # fmt: skip
    return named - {"self", "encoder_name", "encoder_weights", "in_channels", "classes"}


#: Registry: arch name -> (builder, default encoder, default classes, default dropout).
MODELS: dict[str, tuple[Callable[..., tuple[nn.Module, dict[int, float], float]], str, int, float]]
MODELS = {
    "unet": (_build_unet, "resnet34", 3, 0.5),
    "segformer": (_build_segformer, "mit_b0", 2, 0.1),
}


def create_model(
    arch: str,
    *,
    in_channels: int,
    classes: int | None = None,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    dropout: float | None = None,
    **kw: Any,
) -> SegmentationModel:
    """Create a segmentation model by name.

    Parameters
    ----------
    arch
        A key of :data:`MODELS`: ``"unet"`` (Gallwey et al.) or ``"segformer"`` (VitSegh24).
    in_channels
        Number of input bands (10 for Gallwey's Sentinel-2 stack; any count works).
    classes
        Number of output channels (one per class; binary = 2). Defaults to 3 for
        ``"unet"`` (mines, built, vegetation) and 2 for ``"segformer"`` (background, mines).
    encoder
        smp encoder name; defaults to ``"resnet34"`` (unet) and ``"mit_b0"`` (segformer).
    encoder_weights
        Pretrained encoder weights (e.g. ``"imagenet"``, needs the network and 3 bands
        or smp's band adaptation); ``None`` trains from scratch.
    dropout
        Dropout probability: the two U-Net dropout layers (default 0.5, Gallwey) or the
        SegFormer classifier dropout (default 0.1).
    **kw
        Passed on to the smp model (e.g. ``decoder_channels``).

    Returns
    -------
    SegmentationModel
        Returns logits ``(N, classes, H, W)``; H and W must be multiples of 32.
        ``model.meta`` holds the arguments as plain types.

    Raises
    ------
    UnknownModelError
        (a ``KeyError``) for an unknown ``arch``, ``encoder`` or ``encoder_weights``; the
        message lists the known names.
    ParamsError
        ``in_channels`` / ``classes`` that are not integers (2.5 would build a 2-band
        model), or an option in ``kw`` the smp model does not take (it would be ignored).
    VitsegError
        For ``in_channels < 1``, ``classes < 2`` or a dropout outside [0, 1).

    Examples
    --------
    >>> import torch
    >>> m = create_model("segformer", in_channels=4, classes=2)
    >>> m(torch.zeros(1, 4, 32, 32)).shape
    torch.Size([1, 2, 32, 32])
    """
    if arch not in MODELS:
        raise UnknownModelError(
            f"unknown model architecture {arch!r}; choose one of {sorted(MODELS)}"
        )
    builder, default_encoder, default_classes, default_dropout = MODELS[arch]
    for name, value in (("in_channels", in_channels), ("classes", classes)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, np.integer))
        ):
            raise ParamsError(
                f"{name} must be an integer; got {value!r} ({type(value).__name__}). A "
                "fraction would be truncated to another model"
            )
    unknown = sorted(set(kw) - _smp_options(arch))
    if unknown:
        raise ParamsError(
            f"unknown option(s) {unknown} for {arch!r}; segmentation-models-pytorch would "
            f"silently ignore them. Options: {sorted(_smp_options(arch))}"
        )
    classes = default_classes if classes is None else int(classes)
    encoder = default_encoder if encoder is None else encoder
    dropout = default_dropout if dropout is None else float(dropout)
    if int(in_channels) < 1:
        raise VitsegError(f"in_channels must be >= 1 (the band count); got {in_channels}")
    if classes < 2:
        raise VitsegError(
            f"classes must be >= 2 (binary mine / not-mine uses 2 output channels); got {classes}"
        )
    if not 0.0 <= dropout < 1.0:
        raise VitsegError(f"dropout must be in [0, 1); got {dropout}")
    try:
        net, feature_dropout, head_dropout = builder(
            in_channels=int(in_channels), classes=classes, encoder=encoder,
            encoder_weights=encoder_weights, dropout=dropout, **kw,
        )  # fmt: skip
    except KeyError as err:  # smp: an unknown encoder or weights name (the message lists them)
        raise UnknownModelError(
            f"{arch!r} cannot use encoder={encoder!r} with encoder_weights={encoder_weights!r}: "
            f"{str(err.args[0] if err.args else err)[:400]}"
        ) from None
    meta = {
        "arch": arch, "in_channels": int(in_channels), "classes": classes, "encoder": encoder,
        "encoder_weights": encoder_weights, "dropout": dropout, "kwargs": dict(kw),
    }  # fmt: skip
    return SegmentationModel(
        net, feature_dropout=feature_dropout, head_dropout=head_dropout, meta=meta
    )


# --------------------------------------------------------------------------- devices


#: CPU flags (``/proc/cpuinfo``) that mean native bf16 matrix multiplies: Intel AMX, and
#: the AVX-512 BF16 instructions of AMD Zen 4+ and Intel Cooper Lake / Sapphire Rapids+.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """Return the CPU feature flags listed in ``cpuinfo`` (empty when unreadable).

    Examples
    --------
    >>> isinstance(cpu_flags(), frozenset)
    True
    """
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def amx_available(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Return True when the CPU advertises the ``amx_bf16`` flag (Intel AMX).

    Examples
    --------
    >>> isinstance(amx_available(), bool)
    True
    """
    return "amx_bf16" in cpu_flags(cpuinfo)


def bf16_cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """Return which of :data:`BF16_CPU_FLAGS` the CPU advertises (native bf16 matmuls).

    Examples
    --------
    >>> set(bf16_cpu_flags()) <= set(BF16_CPU_FLAGS)
    True
    """
    flags = cpu_flags(cpuinfo)
    return [f for f in BF16_CPU_FLAGS if f in flags]


def bf16_decision(
    device: torch.device | str,
    bf16: bool | Literal["auto"] = "auto",
    *,
    cpuinfo: str = "/proc/cpuinfo",
) -> tuple[bool, str]:
    """Decide whether to autocast to bfloat16 on ``device``, and say why.

    ``"auto"`` chooses bf16 on CPUs that multiply bf16 natively (any flag of
    :data:`BF16_CPU_FLAGS`: Intel AMX or AVX-512 BF16, Intel and AMD alike) and on CUDA
    GPUs that support it; fp32 elsewhere (emulated bf16 is slower than fp32).

    Returns
    -------
    (bool, str)
        The choice and its reason, for logs and the run manifest.

    Examples
    --------
    >>> bf16_decision("cpu", False)
    (False, 'fp32: bf16=False was asked for')
    """
    try:
        dev = torch.device(device) if isinstance(device, str) else device
    except RuntimeError:
        raise VitsegError(
            f"device {device!r} is not a torch device vitseg can use; use 'auto', 'cpu' or "
            "'cuda' (or 'cuda:N')"
        ) from None
    if not isinstance(dev, torch.device):
        raise VitsegError(f"device must be a torch.device or its name; got {device!r}")
    if bf16 not in (True, False, "auto"):
        raise VitsegError(f"'bf16' must be True, False or 'auto'; got {bf16!r}")
    if bf16 != "auto":
        return bool(bf16), f"{'bf16' if bf16 else 'fp32'}: bf16={bf16} was asked for"
    if dev.type == "cuda":
        ok = bool(torch.cuda.is_bf16_supported())
        return ok, f"{'bf16' if ok else 'fp32'}: CUDA device {'supports' if ok else 'lacks'} bf16"
    if dev.type == "cpu":
        found = bf16_cpu_flags(cpuinfo)
        if found:
            return True, f"bf16: CPU flags {', '.join(found)} (native bf16 matmuls)"
        return False, f"fp32: CPU has none of the native bf16 flags {', '.join(BF16_CPU_FLAGS)}"
    return False, f"fp32: no bf16 rule for device type {dev.type!r}"


def select_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device to use: CUDA when present for ``"auto"``, else CPU.

    Raises
    ------
    VitsegError
        When ``"cuda"`` is asked for and no GPU is visible.

    Examples
    --------
    >>> select_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise VitsegError(
            f"device {device!r} is not a torch device vitseg can use; use 'auto', 'cpu' or "
            "'cuda' (or 'cuda:N')"
        ) from err
    if dev.type not in ("cpu", "cuda"):
        raise VitsegError(
            f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda' (or 'cuda:N')"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VitsegError(
            f"device {device!r} was asked for but torch sees no CUDA GPU; use 'auto' or 'cpu'"
        )
    return dev


def use_bf16(device: torch.device, bf16: bool | Literal["auto"] = "auto") -> bool:
    """Decide whether to autocast to bfloat16 on ``device`` (see :func:`bf16_decision`).

    ``"auto"`` means: on CPUs with native bf16 (AMX or AVX-512 BF16), and on CUDA GPUs
    that support bf16; fp32 otherwise.
    """
    return bf16_decision(device, bf16)[0]


def autocast_context(
    device: torch.device | str, *, bf16: bool | Literal["auto"] = "auto"
) -> contextlib.AbstractContextManager[Any]:
    """Return the mixed-precision context for ``device``.

    bf16 autocast on CPUs with native bf16 and bf16-capable GPUs (``bf16="auto"``), a no-op context
    (fp32) otherwise.

    Examples
    --------
    >>> with autocast_context("cpu", bf16=False):
    ...     pass
    """
    dev = select_device(device)
    if use_bf16(dev, bf16):
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(
    model: nn.Module, device: torch.device | str, *, bf16: bool | Literal["auto"] = "auto"
) -> nn.Module:
    """Move ``model`` to ``device``; use channels-last memory on CPUs when bf16 is on.

    Channels-last plus bf16 autocast is what makes AMX and AVX-512 BF16 fast (2-4x for the U-Net).
    Returns the same module (moved in place).
    """
    if not isinstance(model, nn.Module):
        raise VitsegError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    dev = select_device(device)
    model.to(dev)
    if channels_last(dev, bf16):
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def channels_last(device: torch.device, bf16: bool | Literal["auto"] = "auto") -> bool:
    """Return True when inputs should be channels-last on ``device`` (bf16 on CPU or CUDA)."""
    return use_bf16(device, bf16)


def to_input(
    x: torch.Tensor, device: torch.device, *, bf16: bool | Literal["auto"] = "auto"
) -> torch.Tensor:
    """Move a batch ``(N, C, H, W)`` to ``device`` in the memory format the model expects.

    Raises
    ------
    DimensionError
        ``x`` is not a non-empty 4-D floating-point tensor.
    """
    _check_batch(x, "x")
    x = x.to(device, non_blocking=True)
    if channels_last(device, bf16):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _pad_amount(n: int, multiple: int) -> int:
    return (-n) % multiple


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    *,
    bf16: bool | Literal["auto"] = "auto",
) -> torch.Tensor:
    """Return float32 logits for a batch of any height and width (eval mode, no grad).

    The batch is reflect-padded at the bottom and right to multiples of 32 and the
    logits are cropped back. The model must already be on its device.

    Parameters
    ----------
    model
        A model from :func:`create_model` (call ``model.eval()`` first for inference).
    x
        Images ``(N, C, H, W)``, float32, normalised as in training.
    bf16
        Autocast choice (see :func:`use_bf16`).

    Returns
    -------
    torch.Tensor
        ``(N, classes, H, W)`` float32 logits on the model's device.

    Raises
    ------
    DimensionError
        ``x`` is not a non-empty 4-D floating-point tensor (an array, one image without its
        batch dim, uint8 digital numbers).
    BandError
        ``x`` has another band count than the model's ``meta["in_channels"]``.
    """
    _check_batch(x, "x")
    first = next(model.parameters(), None)  # a model without weights runs where x is
    device = first.device if first is not None else x.device
    h, w = x.shape[-2:]
    ph, pw = _pad_amount(h, SIZE_MULTIPLE), _pad_amount(w, SIZE_MULTIPLE)
    x = to_input(x, device, bf16=bf16)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    with autocast_context(device, bf16=bf16):
        out: torch.Tensor = model(x)
    return out[..., :h, :w].float()
