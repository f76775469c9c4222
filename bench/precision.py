"""fp32 versus bf16 (autocast + channels_last) on this CPU, and what ``bf16="auto"`` chooses.

Measures in one process, alternating the two precisions round by round (so a slow spell of
the machine hits both): U-Net ResNet-34 inference (``vitseg.models.predict_logits``), a
U-Net ResNet-34 training step and a SegFormer mit_b0 training step, 10 bands, 256 x 256
windows, batch 8, random weights. Prints the CPU flags that decide bf16, the choice and
reason of ``bf16="auto"``, images/s per precision, km²/s for inference (a 256 px window
at 10 m is 6.5536 km²) and the bf16/fp32 ratio, plus the argmax agreement of the two
precisions on the same inputs.

    .venv/bin/python bench/precision.py                 # ~3-5 min on 2 cores
    .venv/bin/python bench/precision.py --rounds 1 --steps 2   # quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

import vitseg.compat  # noqa: F401
from vitseg.losses import create_loss
from vitseg.models import (
    BF16_CPU_FLAGS,
    autocast_context,
    bf16_decision,
    cpu_flags,
    create_model,
    predict_logits,
    prepare_model,
    to_input,
)

WINDOW_KM2 = 256 * 256 * 100 / 1e6


def _model(arch, bands, bf16):
    encoder, classes = {"unet": ("resnet34", 3), "segformer": ("mit_b0", 2)}[arch]
    torch.manual_seed(0)
    model = create_model(arch, in_channels=bands, classes=classes, encoder=encoder)
    return prepare_model(model, "cpu", bf16=bf16), classes


def infer_rate(x, *, bf16, steps, warmup):
    model, _ = _model("unet", x.shape[1], bf16)
    model.eval()
    for _ in range(warmup):
        predict_logits(model, x, bf16=bf16)
    t0 = time.perf_counter()
    for _ in range(steps):
        predict_logits(model, x, bf16=bf16)
    return steps * x.shape[0] / (time.perf_counter() - t0)


def train_rate(arch, x, *, bf16, steps, warmup):
    model, classes = _model(arch, x.shape[1], bf16)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = create_loss("ce", classes=classes)
    y = torch.randint(0, classes, (x.shape[0], x.shape[2], x.shape[3]))
    xb = to_input(x, torch.device("cpu"), bf16=bf16)
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast_context("cpu", bf16=bf16):
            out = model(xb)
        loss_fn(out, y).backward()
        opt.step()
    return steps * x.shape[0] / (time.perf_counter() - t0)


def agreement(x):
    model, _ = _model("unet", x.shape[1], False)
    model.eval()
    a = predict_logits(model, x, bf16=False).argmax(1)
    b = predict_logits(model, x, bf16=True).argmax(1)
    return float((a == b).float().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--bands", type=int, default=10)
    ap.add_argument("--px", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4, help="timed batches per measurement")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating fp32/bf16 rounds (median)")
    args = ap.parse_args(argv)

    flags = sorted(cpu_flags() & {*BF16_CPU_FLAGS, "avx512f", "avx2", "amx_tile"})
    use, reason = bf16_decision("cpu", "auto")
    print(f"CPU flags (bf16-relevant): {' '.join(flags) or 'none'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f'bf16="auto" -> {"bf16" if use else "fp32"} ({reason})')
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.bands, args.px, args.px, generator=g)
    tasks = {
        "U-Net resnet34 inference": lambda b: infer_rate(x, bf16=b, steps=args.steps, warmup=args.warmup),
        "U-Net resnet34 training step": lambda b: train_rate("unet", x, bf16=b, steps=args.steps, warmup=args.warmup),
        "SegFormer mit_b0 training step": lambda b: train_rate("segformer", x, bf16=b, steps=args.steps, warmup=args.warmup),
    }  # fmt: skip
    rows = []
    for name, fn in tasks.items():
        rates = {False: [], True: []}
        for _ in range(args.rounds):
            for b in (False, True):
                rates[b].append(fn(b))
        fp32, bf16 = statistics.median(rates[False]), statistics.median(rates[True])
        rows.append((name, fp32, bf16))
        extra = (f" ({fp32 * WINDOW_KM2:.0f} vs {bf16 * WINDOW_KM2:.0f} km²/s)"
                 if "inference" in name else "")  # fmt: skip
        print(f"  {name:32s} fp32 {fp32:6.2f} img/s | bf16 {bf16:6.2f} img/s | "
              f"bf16/fp32 {bf16 / fp32:4.2f}x{extra}", flush=True)  # fmt: skip
    print(f"argmax agreement bf16 vs fp32 (U-Net, random weights, {args.batch} windows): "
          f"{100 * agreement(x):.2f} %")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
