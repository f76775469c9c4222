"""Train segmentation models with checkpoints, exact resume and whole-tile validation.

:func:`fit` trains a model from :func:`vitseg.models.create_model` on a torch dataset of
random patches and validates, after every epoch, on a dataset of **whole** validation
tiles (never random crops: both papers validated on crops, which flatters the score).

Optimisers (:class:`TrainConfig`):

- ``"sgd"``: SGD with momentum 0.9, learning rate 5e-2 divided by 10 every 10 epochs,
  weight decay 1e-4, batch 16 (Gallwey et al. §2.4);
- ``"adamw"``: AdamW (SegFormer, as fine-tuned by VitSegh24 / MineSegSAT), learning
  rate 6e-5 and weight decay 0.01 unless set, polynomial decay.

Reproducibility: the data order, the augmentations and dropout of epoch ``e`` depend only
on ``(seed, e)``: the global torch / numpy / ``random`` generators are reseeded at the
start of every epoch and data-loader workers are seeded from them. Every epoch ends
with an atomic ``last.pt`` (weights, optimiser, scheduler, RNG states, history), so a
killed run resumes to the same final weights as an uninterrupted one. Checkpoints hold
only tensors and plain Python types and load with ``torch.load(weights_only=True)``.

Files in ``run_dir``: ``last.pt``, ``best.pt`` (best validation F1 of the mine class for
binary models, mean IoU for 3 classes), ``history.csv`` (one row per epoch).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vitseg.checkpoints import (
    CHECKPOINT_FORMAT,
    _check_device,
    _plain,
    _read_checkpoint,
    _save,
    load_model,
)
from vitseg.constants import IGNORE_INDEX
from vitseg.errors import LabelError, ParamsError, VitsegError
from vitseg.io import atomic_path
from vitseg.losses import create_loss
from vitseg.metrics import ConfusionMatrix
from vitseg.models import (
    autocast_context,
    channels_last,
    predict_logits,
    prepare_model,
    select_device,
    to_input,
    use_bf16,
)

__all__ = ["FitResult", "TrainConfig", "evaluate", "fit", "load_model", "mine_class"]

#: Config keys that may change between a killed run and its resumption.
_RUNTIME_KEYS = frozenset({"epochs", "num_workers", "device", "progress", "val_batch_size"})


@dataclass
class TrainConfig:
    """Training choices; defaults are Gallwey et al.'s U-Net setup.

    Attributes
    ----------
    epochs
        Number of epochs (Gallwey: 30; VitSegh24: 1000).
    batch_size
        Patches per step (Gallwey: 16; VitSegh24: 8).
    optimizer
        ``"sgd"`` (momentum SGD, Gallwey) or ``"adamw"`` (SegFormer).
    lr
        Initial learning rate; ``None`` = 5e-2 for SGD, 6e-5 for AdamW.
    momentum
        SGD momentum.
    weight_decay
        ``None`` = 1e-4 for SGD, 1e-2 for AdamW.
    scheduler
        ``"step"`` (divide by ``1 / lr_gamma`` every ``lr_step_epochs``), ``"poly"``
        (``(1 - epoch / epochs) ** 1``) or ``"none"``; ``None`` = step for SGD, poly for AdamW.
    lr_step_epochs, lr_gamma
        Step decay (Gallwey: /10 every 10 epochs).
    loss
        A :func:`vitseg.losses.create_loss` name; ``loss_kwargs`` its options.
    samples_per_epoch
        Patches drawn per epoch (``None`` = ``len(train)``); more than ``len(train)``
        repeats the dataset in fresh random orders.
    num_workers
        Data-loader worker processes. 0 prepares batches in the training process, which
        is right on small CPUs, and on a GPU for a :class:`vitseg.datasets.PatchDataset`
        whose scenes fit in GPU memory (its patches are then cut on the GPU). Otherwise
        use several (e.g. 4-8) on a GPU: persistent workers cut whole batches ahead of
        the GPU (see ``bench/train.py``).
    seed
        Seed of data order, augmentation and dropout.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` (or ``"cuda:1"``...) or
        ``"mps"``.
    bf16
        ``"auto"`` (CPUs with AMX or AVX-512 BF16, and bf16 GPUs), ``True`` or ``False``.
    val_batch_size
        Whole tiles per validation batch (consecutive tiles of one shape are stacked).
    monitor
        Score that picks ``best.pt``: ``"auto"`` (mine-class F1 for 2 classes, mean IoU
        otherwise), ``"f1"`` or ``"mean_iou"``.
    progress
        Show a tqdm progress bar.
    """

    epochs: int = 30
    batch_size: int = 16
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    scheduler: Literal["step", "poly", "none"] | None = None
    lr_step_epochs: int = 10
    lr_gamma: float = 0.1
    loss: str = "ce"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    samples_per_epoch: int | None = None
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    bf16: bool | Literal["auto"] = "auto"
    val_batch_size: int = 4
    monitor: Literal["auto", "f1", "mean_iou"] = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise ParamsError(f"optimizer must be 'sgd' or 'adamw'; got {self.optimizer!r}")
        if self.scheduler not in (None, "step", "poly", "none"):
            raise ParamsError(
                f"scheduler must be 'step', 'poly', 'none' or None; got {self.scheduler!r}"
            )
        if self.monitor not in ("auto", "f1", "mean_iou"):
            raise ParamsError(f"monitor must be 'auto', 'f1' or 'mean_iou'; got {self.monitor!r}")
        for name in ("epochs", "batch_size", "val_batch_size", "lr_step_epochs", "num_workers",
                     "seed", "samples_per_epoch"):  # fmt: skip
            v = getattr(self, name)  # types first: int(nan) or int("3") would raise raw
            if not (v is None and name == "samples_per_epoch") and (
                not isinstance(v, (int, np.integer)) or isinstance(v, bool)
            ):
                raise ParamsError(f"{name} must be an integer; got {v!r} ({type(v).__name__})")
        for name in ("epochs", "batch_size", "val_batch_size", "lr_step_epochs"):
            if int(getattr(self, name)) < 1:
                raise ParamsError(f"{name} must be >= 1; got {getattr(self, name)!r}")
        if self.samples_per_epoch is not None and self.samples_per_epoch < 1:
            raise ParamsError(
                f"samples_per_epoch must be >= 1 or None; got {self.samples_per_epoch}"
            )
        if self.bf16 not in (True, False, "auto") or not isinstance(self.bf16, (bool, str)):
            raise ParamsError(f"bf16 must be True, False or 'auto'; got {self.bf16!r}")
        if not isinstance(self.progress, bool):
            raise ParamsError(f"progress must be True or False; got {self.progress!r}")
        if not isinstance(self.loss, str):
            raise ParamsError(f"loss must be a loss name such as 'ce'; got {self.loss!r}")
        if not isinstance(self.loss_kwargs, Mapping):
            raise ParamsError(
                f"loss_kwargs must be a mapping of the loss's options, e.g. {{'gamma': 2.0}}; "
                f"got {self.loss_kwargs!r}"
            )
        if self.num_workers < 0:
            raise ParamsError(f"num_workers must be >= 0; got {self.num_workers}")
        # NaN passes every "< 0" test and trains NaN weights: check with positive tests
        checks = (
            ("lr", self.lr, lambda v: 0 < v < math.inf, "a finite number > 0 or None"),
            ("momentum", self.momentum, lambda v: 0 <= v < 1, "in [0, 1)"),
            ("weight_decay", self.weight_decay, lambda v: 0 <= v < math.inf, ">= 0 or None"),
            ("lr_gamma", self.lr_gamma, lambda v: 0 < v < math.inf, "a finite number > 0"),
        )
        for name, v, ok, what in checks:
            if v is None and name in ("lr", "weight_decay"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(float(v)):
                raise ParamsError(f"{name} must be {what}; got {v!r}")
        _check_device(self.device)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a mapping (e.g. a params YAML section); unknown keys are errors.

        Examples
        --------
        >>> TrainConfig.from_dict({"optimizer": "adamw", "epochs": 2}).resolved_lr()
        6e-05
        """
        if not isinstance(d, Mapping):
            raise ParamsError(
                f"a TrainConfig is built from a mapping of its keys (e.g. a params section); "
                f"got {type(d).__name__}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ParamsError(
                f"unknown TrainConfig key(s) {unknown}; allowed keys: {sorted(names)}"
            )
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a dict of plain types."""
        return dataclasses.asdict(self)

    def resolved_lr(self) -> float:
        """Return the initial learning rate after defaults."""
        return float(
            self.lr if self.lr is not None else (5e-2 if self.optimizer == "sgd" else 6e-5)
        )

    def resolved_weight_decay(self) -> float:
        """Return the weight decay after defaults."""
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 1e-4 if self.optimizer == "sgd" else 1e-2

    def resolved_scheduler(self) -> str:
        """Return the scheduler name after defaults."""
        if self.scheduler is not None:
            return self.scheduler
        return "step" if self.optimizer == "sgd" else "poly"


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    history
        One row per epoch (the content of ``history.csv``).
    best_path, last_path
        Checkpoint paths.
    best_epoch, best_score, monitor
        The epoch (1-based) with the best validation score, that score and its name.
    start_epoch
        Epochs already done when ``fit`` started (0 = fresh run; ``== epochs`` = no-op).
    """

    history: pd.DataFrame
    best_path: Path
    last_path: Path
    best_epoch: int
    best_score: float
    monitor: str
    start_epoch: int


def mine_class(classes: int) -> int:
    """Index of the mine class: 1 in the binary scheme, 0 in (mines, built, vegetation).

    Raises
    ------
    ParamsError
        ``classes`` is not an integer >= 2 (every vitseg model has at least 2 outputs).

    Examples
    --------
    >>> mine_class(2), mine_class(3)
    (1, 0)
    """
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
        raise ParamsError(
            f"classes must be an integer >= 2 (the model's output channels); got {classes!r}"
        )
    return 1 if classes == 2 else 0


def _monitor_name(config: TrainConfig, classes: int) -> str:
    if config.monitor != "auto":
        return config.monitor
    return "f1" if classes == 2 else "mean_iou"


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 12345) % (2**31 - 1)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (datasets may use the global generator)
    random.seed(seed)


def _worker_init(worker_id: int) -> None:  # pragma: no cover - runs in workers
    s = torch.initial_seed() % 2**32
    np.random.seed(s)  # noqa: NPY002
    random.seed(s)


def _epoch_indices(n: int, samples: int, generator: torch.Generator) -> list[int]:
    reps = math.ceil(samples / n)
    idx = torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])
    return [int(i) for i in idx[:samples]]


def _rng_state() -> dict[str, Any]:
    np_state: Any = np.random.get_state()  # noqa: NPY002
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
         n["cached_gaussian"])
    )  # fmt: skip
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _make_optimizer(
    model: nn.Module, config: TrainConfig, total_epochs: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    lr, wd = config.resolved_lr(), config.resolved_weight_decay()
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    kind = config.resolved_scheduler()
    sched: torch.optim.lr_scheduler.LRScheduler
    if kind == "step":
        sched = torch.optim.lr_scheduler.StepLR(
            opt, step_size=config.lr_step_epochs, gamma=config.lr_gamma
        )
    elif kind == "poly":
        sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=total_epochs, power=1.0)
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched


def _whole_tile_batches(
    dataset: Any, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield stacks of consecutive whole tiles of one shape (at most ``batch_size``)."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    for i in range(len(dataset)):
        x, y = dataset[i]
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if xs and (x.shape != xs[0].shape or len(xs) == batch_size):
            yield torch.stack(xs), torch.stack(ys)
            xs, ys = [], []
        xs.append(x)
        ys.append(y)
    if xs:
        yield torch.stack(xs), torch.stack(ys)


_PROGRESS_EVERY = 25  # steps between loss read-outs on the progress bar (each one syncs)


class _EpochBatchSampler:
    """Yields ``(epoch, [indices])`` batches of the current epoch (set by :class:`_Batches`)."""

    def __init__(self) -> None:
        self.epoch = 0
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[tuple[int, list[int]]]:
        return iter([(self.epoch, b) for b in self.batches])

    def __len__(self) -> int:
        return len(self.batches)


class _BatchFetcher(Dataset[Any]):
    """Data-loader view of a dataset with ``load_batch``: workers cut whole batches."""

    def __init__(self, dataset: Any, channels_last: bool) -> None:
        self.dataset = dataset
        self.channels_last = channels_last

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:  # pragma: no cover - batches only
        return self.dataset[index]

    def __getitems__(self, batch: tuple[int, list[int]]) -> Any:
        epoch, indices = batch
        return self.dataset.load_batch(indices, epoch=epoch, channels_last=self.channels_last)


def _as_is(batch: Any) -> Any:
    return batch


class _Batches:
    """Training batches for :func:`fit`, built once for all epochs.

    Datasets with a ``load_batch(indices, *, epoch, device, channels_last, pin_memory)``
    method (:class:`vitseg.datasets.PatchDataset`) are cut a batch at a time: in the
    training process with ``num_workers=0`` (straight onto the GPU when there is one),
    else by persistent data-loader workers that prefetch (they live across epochs; the
    epoch travels with each batch, so the draws still depend only on seed and epoch).
    Other datasets go through a plain DataLoader per epoch (so that workers reseeded
    from the global generators keep the old per-epoch semantics).
    """

    def __init__(self, train: Any, cfg: TrainConfig, device: torch.device, bf16: bool) -> None:
        self.train, self.cfg, self.device = train, cfg, device
        self.cuda = device.type == "cuda"
        self.channels_last = channels_last(device, bf16)
        self.batched = callable(getattr(train, "load_batch", None))
        self.sampler = _EpochBatchSampler()
        self.loader: DataLoader[Any] | None = None
        if self.batched and cfg.num_workers > 0:
            self.loader = DataLoader(
                _BatchFetcher(train, self.channels_last), batch_sampler=self.sampler,  # type: ignore[arg-type]
                num_workers=cfg.num_workers, collate_fn=_as_is, pin_memory=self.cuda,
                persistent_workers=True, prefetch_factor=4,
                # workers' base seed from a private generator: the global one (dropout)
                # must not depend on the number of workers
                generator=torch.Generator().manual_seed(cfg.seed),
            )  # fmt: skip

    def _split(self, order: list[int]) -> list[list[int]]:
        b = self.cfg.batch_size
        if len(order) < b:
            return [order]
        return [order[k : k + b] for k in range(0, len(order) - b + 1, b)]  # drop_last

    def epoch(
        self, epoch: int, order: list[int], gen: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.batched:
            cfg = self.cfg
            yield from DataLoader(
                self.train, batch_size=cfg.batch_size, sampler=order,
                num_workers=cfg.num_workers, drop_last=len(order) >= cfg.batch_size,
                generator=gen, worker_init_fn=_worker_init if cfg.num_workers else None,
                # pinning pays off only when workers prepare batches in the background
                pin_memory=self.cuda and cfg.num_workers > 0,
            )  # fmt: skip
            return
        if self.loader is not None:
            self.sampler.epoch, self.sampler.batches = epoch, self._split(order)
            for x, y in self.loader:
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            return
        for idx in self._split(order):
            yield self.train.load_batch(
                idx, epoch=epoch, device=self.device, channels_last=self.channels_last,
                pin_memory=self.cuda,
            )  # fmt: skip

    def close(self) -> None:
        """Stop persistent workers."""
        it = getattr(self.loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
        self.loader = None


def _model_classes(model: nn.Module) -> int:
    meta = getattr(model, "meta", None)
    if not isinstance(meta, Mapping) or "classes" not in meta:
        raise VitsegError(
            "the model has no .meta['classes']; build it with vitseg.models.create_model"
        )
    return int(meta["classes"])


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 4,
    bf16: bool | Literal["auto"] = "auto",
    loss: nn.Module | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, Any]:
    """Score a model on whole tiles.

    Parameters
    ----------
    model
        A model from :func:`vitseg.models.create_model`, on its device.
    dataset
        Sequence of ``(image (C, H, W) float32, mask (H, W) int64)``; masks use
        ``ignore_index`` for no-data.
    batch_size
        Tiles per forward pass (consecutive tiles of one shape are stacked).
    bf16
        Autocast choice (see :func:`vitseg.models.use_bf16`).
    loss
        Optional loss to average over tiles (weighted by tile count).

    Returns
    -------
    dict
        :func:`vitseg.metrics.scores` plus ``confusion`` (K x K counts) and ``loss``
        (NaN without a loss). Pixels with NaN or inf in any band are no data: not scored
        (as ``ignore_index``), and fed to the model as 0.

    Raises
    ------
    ParamsError
        ``batch_size`` is not an integer >= 1.
    LabelError
        Float masks holding values that are not whole class codes (0.6 or NaN), or codes
        outside ``0..classes-1`` and ``ignore_index``.
    BandError
        Tiles with another band count than the model's.
    """
    classes = _model_classes(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ParamsError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if batch_size < 1:
        raise ParamsError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    cm = ConfusionMatrix(classes=classes, ignore_index=ignore_index)
    total, n = 0.0, 0
    try:
        for x, y in _whole_tile_batches(dataset, batch_size):
            y = _integer_mask(y, ignore_index)
            if x.is_floating_point():
                nodata = ~torch.isfinite(x).all(dim=1)  # NaN/inf in any band: no data
                if nodata.any():
                    x = torch.where(torch.isfinite(x), x, torch.zeros((), dtype=x.dtype))
                    y = y.masked_fill(nodata, ignore_index)
            logits = predict_logits(model, x, bf16=bf16)
            y = y.to(device)
            cm.update(y, logits.argmax(dim=1))
            if loss is not None:
                total += float(loss(logits, y)) * len(x)
                n += len(x)
    finally:
        model.train(was_training)
    out = cm.scores()
    out["confusion"] = cm.matrix
    out["loss"] = total / n if n else float("nan")
    return out


def _integer_mask(y: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Masks as int64 class codes; float masks only when whole (never truncated: 0.6 -> 0)."""
    if not y.is_floating_point():
        return y.long()
    whole = torch.isfinite(y) & (y == torch.round(y))
    if not bool(whole.all()):
        bad = y[~whole][:3].tolist()
        raise LabelError(
            f"masks must hold integer class codes ({ignore_index} = no data); a {y.dtype} mask "
            f"holds {int((~whole).sum())} values that are not whole codes, e.g. {bad}. They "
            "are never rounded: re-export the masks as integer class codes"
        )
    return y.long()


def _check_labels(y: torch.Tensor, classes: int, err: Exception) -> None:
    """Raise a LabelError naming mask codes outside ``0..classes-1`` and 255, if any."""
    codes = torch.unique(y.detach().cpu()).tolist()
    bad = [c for c in codes if not (0 <= c < classes or c == IGNORE_INDEX)]
    if bad:
        raise LabelError(
            f"training masks hold class codes {bad[:5]} outside 0..{classes - 1} (and "
            f"{IGNORE_INDEX} = no data) of a {classes}-class model; remap the masks or build "
            f"the model with more classes ({type(err).__name__}: {str(err)[:120]})"
        ) from err


def _history_row(
    epoch: int, train_loss: float, val: Mapping[str, Any], classes: int, lr: float,
    seconds: float, images_per_s: float,
) -> dict[str, float]:  # fmt: skip
    c = mine_class(classes)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": float(val["loss"]),
        "val_f1": float(val["f1"][c]),
        "val_precision": float(val["precision"][c]),
        "val_recall": float(val["recall"][c]),
        "val_iou": float(val["iou"][c]),
        "val_mean_iou": float(val["mean_iou"]),
        "val_mean_accuracy": float(val["mean_accuracy"]),
        "val_overall_accuracy": float(val["overall_accuracy"]),
        "lr": lr,
        "seconds": seconds,
        "images_per_s": images_per_s,
    }


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _RUNTIME_KEYS}


def _result(
    run_dir: Path, history: list[dict[str, float]], best: Mapping[str, Any], start: int
) -> FitResult:
    return FitResult(
        history=pd.DataFrame(history),
        best_path=run_dir / "best.pt",
        last_path=run_dir / "last.pt",
        best_epoch=int(best["epoch"]),
        best_score=float(best["score"]),
        monitor=str(best["monitor"]),
        start_epoch=start,
    )


def fit(
    model: nn.Module,
    train: Dataset[Any],
    val: Any,
    *,
    config: TrainConfig | Mapping[str, Any],
    run_dir: str | Path,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> FitResult:
    """Train ``model``, checkpointing every epoch; resume from ``run_dir/last.pt`` if present.

    Parameters
    ----------
    model
        A model from :func:`vitseg.models.create_model` (its ``meta`` is stored so that
        :func:`load_model` can rebuild it). Moved to the chosen device in place; at the
        end it holds the weights of the last epoch (load ``best.pt`` for the best ones).
    train
        Torch dataset of ``(image (C, H, W) float32, mask (H, W) int64)`` random patches;
        masks use 255 for no-data. If it has a ``set_epoch(epoch)`` method, it is called
        before each epoch.
    val
        Sequence (``len`` and indexing) of **whole** validation tiles, same item format.
    config
        A :class:`TrainConfig` or a mapping for :meth:`TrainConfig.from_dict`.
    run_dir
        Folder for ``last.pt``, ``best.pt`` and ``history.csv``.
    meta
        Plain-typed data description to store in the checkpoints (e.g. ``bands``,
        ``mean``, ``std``, ``class_names``); numpy arrays are converted to lists.
    overwrite
        Start afresh even when ``run_dir`` holds a checkpoint. Otherwise a finished run
        is a no-op (the model gets its final weights) and a killed one resumes.

    Returns
    -------
    FitResult

    Raises
    ------
    ParamsError
        When ``run_dir`` holds a checkpoint made with a different config (other than
        ``epochs``, ``num_workers``, ``device``, ``progress``, ``val_batch_size``), model
        or ``meta`` (e.g. other band statistics: other data); pass ``overwrite=True`` or
        another ``run_dir``.
    VitsegError
        For empty datasets, ``val`` that is not a sequence, a model without ``meta``, or a
        training loss that is NaN/inf (NaN in the images, or too high a learning rate:
        raised before that epoch's checkpoints are written).
    LabelError
        Training masks with codes outside ``0..classes-1`` and 255.
    BandError
        Training images with another band count than the model's.
    """
    from tqdm import tqdm  # text bar: works in notebooks without ipywidgets

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    if not isinstance(run_dir, str | Path) or not str(run_dir) or "\0" in str(run_dir):
        raise ParamsError(
            f"run_dir must be a folder path (str or pathlib.Path) for the checkpoints, e.g. "
            f"'reports/demo/models/unet'; got {run_dir!r}"
        )
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ParamsError(f"run_dir {run_dir} is a file; give a folder for the checkpoints")
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path, hist_path = (
        run_dir / "last.pt", run_dir / "best.pt", run_dir / "history.csv",
    )  # fmt: skip
    classes = _model_classes(model)
    if not hasattr(val, "__len__") or not hasattr(val, "__getitem__"):
        raise VitsegError(
            f"val must be a sequence (len and indexing) of whole validation tiles; got "
            f"{type(val).__name__}. Pass a list or a dataset, not an iterator"
        )
    n_train = len(train)  # type: ignore[arg-type]
    if n_train == 0 or len(val) == 0:
        raise VitsegError(
            f"training and validation datasets must not be empty; got {n_train} training "
            f"items and {len(val)} validation tiles"
        )
    device = select_device(cfg.device)
    bf16 = use_bf16(device, cfg.bf16)
    prepare_model(model, device, bf16=bf16)
    opt, sched = _make_optimizer(model, cfg, cfg.epochs)
    loss_fn = create_loss(cfg.loss, classes=classes, **cfg.loss_kwargs).to(device)
    monitor = _monitor_name(cfg, classes)
    model_meta = _plain(getattr(model, "meta", {}))
    data_meta = _plain(meta or {})
    config_dict = _plain(cfg.to_dict())

    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "score": float("-inf"), "monitor": monitor}
    start = 0
    if overwrite:
        for p in (last_path, best_path, hist_path):
            p.unlink(missing_ok=True)
    elif last_path.exists():
        ckpt = _read_checkpoint(last_path)
        if _comparable(ckpt["config"]) != _comparable(config_dict):
            raise ParamsError(
                f"{last_path} was written with another training config "
                f"({_comparable(ckpt['config'])}) than the one given "
                f"({_comparable(config_dict)}); pass overwrite=True or use another run_dir"
            )
        for key, now in (("model", model_meta), ("data", data_meta)):
            if ckpt[key] != now:
                raise ParamsError(
                    f"{last_path} was written for another {key} ({ckpt[key]}) than the one "
                    f"given ({now}); pass overwrite=True or use another run_dir"
                )
        model.load_state_dict(ckpt["model_state"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        history = list(ckpt["history"])
        best = dict(ckpt["best"])
        start = int(ckpt["epoch"])
        if start >= cfg.epochs:
            return _result(run_dir, history, best, start)

    samples = cfg.samples_per_epoch or n_train
    steps = samples // cfg.batch_size if samples >= cfg.batch_size else 1
    base = {"format": CHECKPOINT_FORMAT, "model": model_meta, "data": data_meta,
            "config": config_dict}  # fmt: skip
    batches = _Batches(train, cfg, device, bf16)
    bar = tqdm(
        total=(cfg.epochs - start) * steps, disable=not cfg.progress, unit="batch",
        desc=f"{model_meta.get('arch', 'model')}", mininterval=0.5,
    )  # fmt: skip
    try:
        for epoch in range(start, cfg.epochs):
            seed = _epoch_seed(cfg.seed, epoch)
            _seed_everything(seed)
            if hasattr(train, "set_epoch"):
                train.set_epoch(epoch)
            gen = torch.Generator().manual_seed(seed)
            order = _epoch_indices(n_train, samples, gen)
            lr = float(opt.param_groups[0]["lr"])
            model.train()
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            n_seen = 0
            for step, (x, y) in enumerate(batches.epoch(epoch, order, gen)):
                x = to_input(x, device, bf16=bf16)
                y = y.to(device, non_blocking=True)
                opt.zero_grad(set_to_none=True)
                with autocast_context(device, bf16=bf16):
                    logits = model(x)
                try:
                    loss = loss_fn(logits, y)
                except (IndexError, RuntimeError) as err:  # e.g. "Target 7 is out of bounds"
                    _check_labels(y, classes, err)
                    raise
                loss.backward()
                opt.step()
                loss_sum += loss.detach() * len(x)  # on the device: no sync per step
                n_seen += len(x)
                bar.update(1)
                if cfg.progress and step % _PROGRESS_EVERY == 0:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
            train_loss = float(loss_sum) / max(n_seen, 1)  # waits for the device's work
            if not math.isfinite(train_loss):  # before a checkpoint of NaN weights is saved
                raise VitsegError(
                    f"the training loss of epoch {epoch + 1} is {train_loss}: the weights are "
                    "no longer finite. Training images holding NaN/inf (fill no data before "
                    "training, as vitseg.datasets does) or too high a learning rate "
                    f"({lr:g}; lower TrainConfig.lr). Nothing was saved for this epoch."
                )
            train_seconds = time.perf_counter() - t0
            sched.step()
            val_scores = evaluate(
                model, val, batch_size=cfg.val_batch_size, bf16=bf16, loss=loss_fn
            )
            seconds = time.perf_counter() - t0
            row = _history_row(
                epoch + 1, train_loss, val_scores, classes, lr,
                seconds, n_seen / train_seconds if train_seconds > 0 else float("nan"),
            )  # fmt: skip
            history.append(row)
            score = row["val_f1"] if monitor == "f1" else row["val_mean_iou"]
            if math.isnan(score):
                score = float("-inf")
            if score > best["score"] or best["epoch"] == 0:
                best = {"epoch": epoch + 1, "score": score, "monitor": monitor}
                _save({**base, "model_state": model.state_dict(), "epoch": epoch + 1,
                       "best": best, "history": history}, best_path)  # fmt: skip
            bar.set_postfix(epoch=epoch + 1, val=f"{monitor}={score:.3f}")
            with atomic_path(hist_path) as tmp:
                pd.DataFrame(history).to_csv(tmp, index=False)
            _save(
                {**base, "model_state": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "rng": _rng_state(), "epoch": epoch + 1,
                 "best": best, "history": history},
                last_path,
            )  # fmt: skip
    finally:
        bar.close()
        batches.close()
    return _result(run_dir, history, best, start)
