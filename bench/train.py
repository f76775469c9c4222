"""Training throughput of vitseg.train.fit versus a bare torch loop (issue 3 benchmark).

For each architecture (U-Net ResNet-34, SegFormer mit_b0) and precision (fp32, bf16) it
measures images/s of

- **bare**: a plain loop over in-memory tensors (no Dataset, no DataLoader, no metrics,
  no checkpoints): forward, loss, backward, optimiser step;
- **fit**: `vitseg.train.fit` on a `vitseg.datasets.PatchDataset` of random,
  augmented 256 x 256 patches cut from in-memory 10-band scenes (DataLoader, progress bar,
  loss bookkeeping), with one small validation tile and a checkpoint per epoch.

`fit` runs two epochs of ``--steps`` batches; the second (warm) epoch's training-loop
rate is compared with the bare loop's warm rate (``ratio`` = fit / bare; goal: overhead
``1 - ratio`` below 10 %). Runs alternate bare, fit, bare, ..., bare (``--rounds`` fit
runs); each fit run is compared with the mean of the two bare runs around it and the
median of those ratios is reported, with the CPU's bf16 flags. ``fit_wall`` also charges validation and checkpoint writes.

    .venv/bin/python bench/train.py                 # CPU, a few minutes
    python3 bench/train.py --device cuda --steps 40 --batch 16 --workers 0 6   # GPU, < 4 min

``fit`` cuts its patches from a few in-memory scenes; with 0 workers on a GPU the scenes
are uploaded once and the patches gathered there (PatchDataset.load_batch), with N
workers they are cut by persistent workers into pinned memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
import torch

import vitseg.compat
from vitseg.datasets import PatchDataset
from vitseg.losses import create_loss
from vitseg.models import (
    autocast_context,
    create_model,
    prepare_model,
    select_device,
    to_input,
)
from vitseg.train import TrainConfig, fit

ARCHS = {"unet": ("resnet34", 3), "segformer": ("mit_b0", 2)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(arch, *, device, bf16, bands, px, batch, steps, warmup, seed):
    encoder, classes = ARCHS[arch]
    torch.manual_seed(seed)
    model = create_model(arch, in_channels=bands, classes=classes, encoder=encoder)
    prepare_model(model, device, bf16=bf16)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    loss_fn = create_loss("ce", classes=classes).to(device)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, bands, px, px, generator=g)
    y = torch.randint(0, classes, (batch, px, px), generator=g)
    xb, yb = to_input(x, device, bf16=bf16), y.to(device)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast_context(device, bf16=bf16):
            out = model(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        opt.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def fit_loop(arch, *, device, bf16, bands, px, batch, steps, seed, workers, scenes):
    encoder, classes = ARCHS[arch]
    samples = steps * batch
    train = PatchDataset(scenes, patch_px=px, samples_per_epoch=samples, seed=seed)
    val = [(torch.from_numpy(scenes[0][0][:, :64, :64].copy()),
            torch.from_numpy(scenes[0][1][:64, :64].astype("int64")))]  # fmt: skip
    torch.manual_seed(seed)
    model = create_model(arch, in_channels=bands, classes=classes, encoder=encoder)
    cfg = TrainConfig(
        epochs=2, batch_size=batch, optimizer="sgd", lr=1e-3, samples_per_epoch=samples,
        num_workers=workers, seed=seed, device=str(device), bf16=bf16, progress=False,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = fit(model, train, val, config=cfg, run_dir=tmp)
        wall = time.perf_counter() - t0
    hist = res.history
    warm = hist.iloc[-1]
    # wall-clock rate of the warm epoch incl. validation + checkpoint: total minus epoch 1
    epoch2_wall = wall - float(hist.iloc[0]["seconds"])
    return float(warm["images_per_s"]), samples / epoch2_wall


def _cpu_flags() -> str:
    """The CPU's bf16-relevant flags (``amx_bf16``, ``avx512_bf16``, ...), for the record."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])  # fmt: skip
    keep = [f for f in flags if f in {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"}]
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                  if ln.startswith("model name")), "?")  # fmt: skip
    return f"{model}: {' '.join(keep) or 'none of amx_bf16/avx512_bf16/avx512f/avx2'}"


def make_scenes(n, side, bands, classes, seed):
    """``n`` labelled in-memory scenes of ``side`` x ``side`` pixels (what fit cuts from)."""
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((bands, side, side), dtype=np.float32),
         rng.integers(0, classes, (side, side), dtype=np.uint8))
        for _ in range(n)
    ]  # fmt: skip


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--bands", type=int, default=10)
    ap.add_argument("--px", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="default 4 on CPU, 16 on CUDA")
    ap.add_argument(
        "--steps", type=int, default=None, help="timed batches (default 6 CPU, 40 CUDA)"
    )
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="fit runs, each between two bare runs")
    ap.add_argument(
        "--workers", type=int, nargs="+", default=None,
        help="data-loader workers of the fit runs (default: 0 on CPU; 0 and 6 on CUDA)",
    )  # fmt: skip
    ap.add_argument("--scenes", type=int, default=None, help="scenes (default 2 CPU, 4 CUDA)")
    ap.add_argument("--scene-px", type=int, default=None, help="scene side (512 CPU, 1024 CUDA)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", default="", help="also write the table to this CSV")
    args = ap.parse_args(argv)
    device = select_device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch or (16 if cuda else 4)
    steps = args.steps or (40 if cuda else 6)
    workers = args.workers if args.workers is not None else ([0, 6] if cuda else [0])
    n_scenes = args.scenes or (4 if cuda else 2)
    side = args.scene_px or (1024 if cuda else 2 * args.px)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU x{torch.get_num_threads()} threads"
    print(f"device {device} ({name}); torch {torch.__version__}; "
          f"{batch} x {args.bands} x {args.px} x {args.px} per batch, {steps} timed steps; "
          f"fit cuts patches from {n_scenes} scenes of {side} x {side} px; "
          f"{vitseg.compat.huge_pages()}",
          flush=True)  # fmt: skip
    rows = []
    for arch in args.archs:
        scenes = make_scenes(n_scenes, side, args.bands, ARCHS[arch][1], args.seed)
        for prec in args.precisions:
            bf16 = prec == "bf16"
            common = dict(device=device, bf16=bf16, bands=args.bands, px=args.px, batch=batch,
                          steps=steps, seed=args.seed)  # fmt: skip
            # bare, fit, bare, fit, ..., bare: each fit run is set against the mean of the
            # bare runs right before and after it, and the median of the rounds' ratios
            # is reported, so that a shared machine's slow and fast spells (this VM's
            # speed swings up to 2x within seconds) bias both sides alike
            bares = [bare_loop(arch, warmup=args.warmup, **common)]
            row = {"arch": f"{arch} ({ARCHS[arch][0]})", "precision": prec}
            fits: dict[int, list[tuple[float, float, float]]] = {w: [] for w in workers}
            for _ in range(args.rounds):
                for w in workers:
                    fit_ips, fit_wall = fit_loop(arch, workers=w, scenes=scenes, **common)
                    fits[w].append((fit_ips, fit_wall, len(bares) - 1))
                bares.append(bare_loop(arch, warmup=args.warmup, **common))
            row["bare_img_s"] = float(np.median(bares))
            for w in workers:
                ratios = [ips / ((bares[i] + bares[i + 1]) / 2) for ips, _, i in fits[w]]
                fit_ips = float(np.median([f[0] for f in fits[w]]))
                fit_wall = float(np.median([f[1] for f in fits[w]]))
                row[f"fit_w{w}_img_s"] = fit_ips
                row[f"overhead_w{w}_pct"] = 100 * (1 - float(np.median(ratios)))
                row[f"fit_w{w}_wall_img_s"] = fit_wall
                print(f"  {row['arch']:<20} {prec}: bare {row['bare_img_s']:8.2f} img/s "
                      f"(runs {', '.join(f'{b:.2f}' for b in bares)}) | fit ({w} workers) "
                      f"{fit_ips:8.2f} img/s (overhead {row[f'overhead_w{w}_pct']:+.1f} %, rounds "
                      f"{', '.join(f'{100 * (1 - r):+.1f}' for r in ratios)}) | incl. validation"
                      f"+checkpoint {fit_wall:8.2f} img/s", flush=True)  # fmt: skip
            row.update(device=name, batch=batch, steps=steps)
            rows.append(row)
    table = pd.DataFrame(rows)
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
    cols = ["arch", "precision", "bare_img_s"]
    cols += [c for w in workers for c in (f"fit_w{w}_img_s", f"overhead_w{w}_pct")]
    flags = _cpu_flags()
    print(f"\n{name}, batch {batch}, {steps} steps, median of {args.rounds} rounds "
          f"(overhead = 1 - fit / bare; goal < 10 %); CPU flags: {flags}")  # fmt: skip
    print(table[cols].round(2).to_string(index=False))
    return table


if __name__ == "__main__":
    main()
