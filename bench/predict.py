"""Benchmark large-area prediction: km² per second, share of bf16 matmul peak, peak memory.

Usage (from the repo root)::

    .venv/bin/python bench/predict.py                      # CPU: U-Net 256/1024, SegFormer 256
    .venv/bin/python bench/predict.py --device cuda        # on a GPU
    .venv/bin/python bench/predict.py --base-px 1024 --scales 1 4   # quicker

What it measures, in one run:

1. the bf16 (and fp32) matmul peak of this machine (square matmuls of ``--matmul-n`` and
   twice that, all cores, max of 5 bursts);
2. per configuration ``arch:tile`` (U-Net resnet34, SegFormer mit_b0; random weights,
   10 bands, 3 classes; ``--batch-size`` windows of 256 px, fewer of larger windows so
   that a batch holds about as many pixels): the model alone on in-memory ``tile`` x
   ``tile`` windows (median batch time after 2 warm-ups; km²/s of Sentinel-2 10 m
   pixels, and its FLOP rate as a share of the matmul peak, FLOPs counted with torch's
   FlopCounterMode), run two ways: one stream of batches using every core
   ("one_stream") and one stream per dask worker side by side, each with its share of
   the cores, as the whole path runs it; "model_alone" is the better of the two, over
   the very windows the whole path ran (counted in that run: overlapping windows cover
   ``window_px/scene_px`` times the scene, 1.27 for 256 px windows over a 2048 px scene),
   and the bar for "whole/alone"; ``whole/alone_per_window_px`` is the older ratio that
   charged the overlap to the path (it cannot exceed ``1 / window_px/scene_px``). Then
   the whole path: local 10-band COG -> lazy cube ->
   ``predict_cube`` (same tile and batch, overlap 32, blending) -> class, confidence and
   probability COGs (``write_scene_maps`` defaults: uint8 probability and confidence
   codes of 0.004). The model alone is measured right before
   and right after the whole path, and the ratio uses their mean, so that a shared
   machine's slow and fast spells bias both sides alike. Each whole-path run is a fresh
   subprocess; its peak RSS (``ru_maxrss``) is reported. "whole" is the second of two
   runs over the same scene in that process (weights loaded, oneDNN kernels picked for
   every window shape, as for the model alone and as when scene after scene is
   mapped); "cold" is a single run in a fresh process, start-up included (what one
   scene costs);
3. for ``--memory-config``: the whole path on 1x, 4x and 16x the base area, to show that
   peak memory stays flat (goal: 16x <= 1.25 x 1x) and time grows linearly.

The input scenes are smooth simulated reflectance fields (uint16 DN, scale 1e-4, like
Sentinel-2 L2A) written as COGs beforehand (not timed). The 1x scene (2048 px, 419 km²)
spans four prediction chunks, as any scene larger than ~10 km across does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KM2_PER_PX = 1e-4  # a 10 m pixel is 100 m²


def _make_input(path: Path, px: int) -> None:
    """Write a ``px`` x ``px`` 10-band uint16 COG of smooth fields (streamed)."""
    import dask.array as da
    import numpy as np
    import xarray as xr

    from vitseg.constants import S2_BANDS_10
    from vitseg.predict import write_cog

    def field(block: Any, block_info: Any = None) -> Any:
        (b0, b1), (r0, r1), (c0, c1) = block_info[None]["array-location"]
        yy, xx = np.mgrid[r0:r1, c0:c1].astype("float32")
        out = np.empty((b1 - b0, r1 - r0, c1 - c0), "uint16")
        for i, b in enumerate(range(b0, b1)):
            v = 0.15 + 0.1 * np.sin(xx / (37.0 + 5 * b)) * np.cos(yy / (53.0 - 3 * b))
            v += 0.05 * np.sin((xx + yy) / 11.0)
            out[i] = np.clip(v * 10000, 1, 65535).astype("uint16")
        return out

    arr = da.zeros((10, px, px), chunks=(10, 1024, 1024), dtype="uint16").map_blocks(
        field, dtype="uint16"
    )
    cube = xr.DataArray(
        arr, dims=("band", "y", "x"),
        coords={"band": list(S2_BANDS_10), "y": 700_000.0 - 10 * (np.arange(px) + 0.5),
                "x": 600_000.0 + 10 * (np.arange(px) + 0.5)},
    ).rio.write_crs("EPSG:32630")  # fmt: skip
    write_cog(cube, path, nodata=0, overviews=False)


def _model(arch: str) -> Any:
    import torch

    import vitseg.compat  # noqa: F401
    from vitseg.models import create_model

    torch.manual_seed(0)
    return create_model(arch, in_channels=10, classes=3).eval()


def _worker(args: argparse.Namespace) -> None:
    """Whole path in this (fresh) process; print JSON with seconds, model-alone rates, RSS.

    With ``--rounds N`` the model alone (the very model object the whole path uses) and
    the whole path alternate: alone, whole, alone, ... , alone.
    """
    import dask

    import vitseg.predict as vp
    from vitseg.predict import (
        _get_model,
        _payload,
        open_map,
        predict_cube,
        write_scene_maps,
    )

    model = _model(args.arch)
    window_px = [0]  # pixels of the windows the path's forward passes took (last run)
    forward = vp._forward

    def counting_forward(*a: Any, **k: Any) -> Any:
        out = forward(*a, **k)
        window_px[0] += int(out.shape[0] * out.shape[2] * out.shape[3])
        return out

    vp._forward = counting_forward  # type: ignore[assignment]

    def run(out_dir: str) -> float:
        window_px[0] = 0
        t0 = time.perf_counter()
        cube = open_map(args.input).rename({"class": "band"}).astype("float32")
        probs = predict_cube(
            model, cube * 1e-4, tile=args.tile, overlap=args.overlap,
            batch_size=args.batch_size, device=args.device,
        )  # fmt: skip
        with dask.config.set(scheduler="threads", num_workers=args.dask_workers):
            write_scene_maps(probs, out_dir, prefix=f"{args.arch}_{args.px}", overwrite=True)
        return time.perf_counter() - t0

    if not args.warm:
        print(json.dumps({"seconds": [run(args.out_dir)], "alone_km2_s": [], "one_km2_s": [],
                          "window_px": window_px[0], **_rss()}))  # fmt: skip
        return
    run(str(Path(args.out_dir) / "warm-up"))  # steady state, as when scene after scene is mapped
    net, dev, use16 = _get_model(_payload(model), args.device, "auto")  # the path's own copy
    rates = [_alone_rate(net, dev, use16, args)]
    seconds = []
    for _ in range(args.rounds):
        seconds.append(run(args.out_dir))
        rates.append(_alone_rate(net, dev, use16, args))
    alone, one = [max(r) for r in rates], [r[0] for r in rates]
    print(json.dumps({"seconds": seconds, "alone_km2_s": alone, "one_km2_s": one,
                      "window_px": window_px[0], **_rss()}))  # fmt: skip


def _rss() -> dict[str, float]:
    return {"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _alone_rate(net: Any, dev: Any, use16: bool, args: argparse.Namespace) -> tuple[float, float]:
    """km²/s of ``net`` alone on in-memory windows, run two ways: ``(one, split)``.

    One stream (each batch uses every core; median of ``--repeats`` batches) and, on
    the CPU, one stream per dask worker side by side, each with its share of the cores
    (as the whole path runs it: on this 2-core VM two 1-thread streams did 1.2-2.1x the
    work of one 2-thread stream in bench/results/predict_cpu_2core.txt, since OpenMP
    threads wait for their slowest member; ``split`` is ``one`` on a GPU). The better of
    the two is the bar the whole path is held to.
    """
    import torch

    from vitseg.models import autocast_context, to_input

    px_km2 = args.batch_size * args.tile**2 * KM2_PER_PX

    def stream(n_batches: int, threads: int | None, barrier: Any = None) -> float:
        if threads:
            torch.set_num_threads(threads)  # per thread: this stream's share of the cores
        x = to_input(torch.randn(args.batch_size, 10, args.tile, args.tile), dev, bf16=use16)
        times = []
        with torch.inference_mode(), autocast_context(dev, bf16=use16):
            for _ in range(2):  # warm-up: oneDNN picks and caches its kernels per shape
                net(x)
            if barrier is not None:
                barrier.wait()  # the streams' timed batches run side by side
            for _ in range(n_batches):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                net(x).float().softmax(1).cpu()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
        return sorted(times)[len(times) // 2]

    one = px_km2 / stream(args.repeats, None)
    n = int(args.dask_workers)
    if dev.type != "cpu" or n < 2:
        return float(one), float(one)
    import concurrent.futures
    import threading

    share = max(1, torch.get_num_threads() // n)
    barrier = threading.Barrier(n)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:  # fresh threads: own counts
        medians = list(pool.map(lambda _: stream(args.repeats, share, barrier), range(n)))
    split = n * px_km2 / max(medians)  # n batches at a time, each in its stream's median time
    return float(one), float(split)


def _batch(args: argparse.Namespace, tile: int) -> int:
    """Windows per batch at ``tile`` px: about as many pixels as the 256 px batch."""
    return max(1, round(int(args.batch_size) * (256 / tile) ** 2))


def _whole_path(
    args: argparse.Namespace,
    arch: str,
    tile: int,
    px: int,
    inp: Path,
    out: Path,
    *,
    warm: bool = True,
    rounds: int = 1,
) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--worker", "--arch", arch, "--px", str(px), "--input", str(inp),
        "--out-dir", str(out), "--tile", str(tile), "--overlap", str(args.overlap),
        "--batch-size", str(_batch(args, tile)), "--device", args.device,
        "--dask-workers", str(args.dask_workers), "--repeats", str(args.repeats),
        "--rounds", str(rounds), *(["--warm"] if warm else []),
    ]  # fmt: skip
    # Keep GDAL's block cache small (default 5 % of RAM), so RSS reflects the pipeline.
    # glibc's malloc keeps its defaults: MALLOC_TRIM_THRESHOLD_ (which dask.distributed
    # sets for its workers) turns off the adaptive mmap threshold, so every large tensor
    # is mapped and faulted in anew; it made the model alone ~1.6x slower here.
    env = {"GDAL_CACHEMAX": "128", **os.environ}
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode:
        raise RuntimeError(f"worker failed:\n{res.stderr[-3000:]}")
    rec: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    rec["km2"] = px * px * KM2_PER_PX
    rates = [rec["km2"] / sec for sec in rec["seconds"]]
    # The model alone is timed in km² of window pixels per second; the path's windows
    # overlap, so it must run the model over more pixels than the scene has (e.g. 81
    # windows of 256 px over a 2048 px scene, 1.27x). Convert the model-alone rate to
    # km² of *scene* per second for the very windows the path ran: the bar for "the
    # whole path as fast as the model". The old per-window-pixel ratio is kept too.
    rec["windows_per_scene_px"] = rec["window_px"] / (px * px) if rec["window_px"] else 1.0
    over = rec["windows_per_scene_px"]
    alone = [a / over for a in rec["alone_km2_s"]]
    one = [a / over for a in rec["one_km2_s"]]
    px_alone = rec["alone_km2_s"]

    def ratio(bar: list[float]) -> float:
        # each whole-path run against the mean of the model-alone rates right around it
        r = [w / ((a + b) / 2) for w, a, b in zip(rates, bar, bar[1:], strict=False)]
        return _median(r) if r else float("nan")

    rec["km2_per_s"] = _median(rates)
    rec["ratio"], rec["ratio_one"], rec["ratio_px"] = ratio(alone), ratio(one), ratio(px_alone)
    rec["alone"] = _median(alone) if alone else float("nan")
    rec["one"] = _median(one) if one else float("nan")
    rec["seconds"] = _median(rec["seconds"])
    return rec


def _median(values: list[float]) -> float:
    v = sorted(values)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2


def _matmul_peak(device: str, n: int, dtype_name: str) -> float:
    """Best FLOP/s of square matmuls (``n`` and ``2n``) in ``dtype_name``, all cores.

    The max over 5 bursts of 3 products per size: a peak, so that a loaded machine
    (other jobs on the cores) biases it as little as possible.
    """
    import torch

    dtype = getattr(torch, dtype_name)
    best = 0.0
    for size in (n, 2 * n):
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        torch.mm(a, b)  # warm-up (oneDNN / cuBLAS kernel selection)
        for _ in range(5):
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            reps = 3
            for _ in range(reps):
                torch.mm(a, b)
            if device == "cuda":
                torch.cuda.synchronize()
            best = max(best, reps * 2 * size**3 / (time.perf_counter() - t))
    return best


def _flops_per_px(arch: str, tile: int) -> float:
    """FLOPs per output pixel of ``arch`` on ``tile`` px windows (torch's FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        _model(arch)(torch.zeros(1, 10, tile, tile))
    return float(fc.get_total_flops()) / tile**2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--configs", nargs="+", default=["unet:256", "unet:1024", "segformer:256"],
                   help="arch:tile pairs for the throughput table")  # fmt: skip
    p.add_argument("--base-px", type=int, default=2048, help="side of the 1x scene (px)")
    p.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16], help="area multiples")
    p.add_argument("--memory-config", default="unet:256", help="arch:tile of the scaling runs")
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8, help="windows of 256 px per batch")
    p.add_argument("--repeats", type=int, default=7, help="model-alone batches (median)")
    p.add_argument("--rounds", type=int, default=5, help="whole-path runs, each between two "
                   "model-alone measurements; the median ratio is reported")  # fmt: skip
    p.add_argument("--matmul-n", type=int, default=2048)
    p.add_argument("--dask-workers", type=int, default=2)
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir)")
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--arch", help=argparse.SUPPRESS)
    p.add_argument("--tile", type=int, default=256, help=argparse.SUPPRESS)
    p.add_argument("--px", type=int, help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    p.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return

    import torch

    work = Path(args.workdir or tempfile.mkdtemp(prefix="vitseg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    dev = "cuda" if args.device in {"cuda", "auto"} and torch.cuda.is_available() else "cpu"
    print(f"device {dev}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.1f}; workdir {work}")  # fmt: skip
    import vitseg.compat
    from vitseg.models import bf16_decision, cpu_flags

    flags = sorted(cpu_flags() & {"amx_bf16", "avx512_bf16", "avx512f", "avx2"})
    print(f"CPU flags: {' '.join(flags) or 'none'}; {bf16_decision(dev)[1]}; "
          f"{vitseg.compat.huge_pages()} (the workers import vitseg before torch allocates)")  # fmt: skip
    peak_bf16 = _matmul_peak(dev, args.matmul_n, "bfloat16")
    peak_fp32 = _matmul_peak(dev, args.matmul_n, "float32")
    print(f"matmul peak ({args.matmul_n}^2): bf16 {peak_bf16 / 1e12:.2f} TFLOP/s, "
          f"fp32 {peak_fp32 / 1e12:.2f} TFLOP/s")  # fmt: skip

    inputs: dict[int, Path] = {}
    for s in sorted({1, *args.scales}):
        px = round(args.base_px * s**0.5)
        inputs[px] = work / f"input_{px}.tif"
        if not inputs[px].exists():
            _make_input(inputs[px], px)

    rows = []
    base_px = args.base_px
    from vitseg.models import select_device, use_bf16

    bf16 = use_bf16(select_device(args.device), "auto")
    for config in args.configs:
        arch, tile = _config(config)
        whole = _whole_path(
            args, arch, tile, base_px, inputs[base_px], work / "out", rounds=args.rounds
        )
        cold = _whole_path(args, arch, tile, base_px, inputs[base_px], work / "out", warm=False)
        flops = _flops_per_px(arch, tile)
        rows.append({
            "model": arch, "tile": tile, "batch": _batch(args, tile),
            "model_alone_km2_s": whole["alone"], "one_stream_km2_s": whole["one"],
            "whole_path_km2_s": whole["km2_per_s"], "whole/alone": whole["ratio"],
            "whole/one_stream": whole["ratio_one"], "window_px/scene_px":
            whole["windows_per_scene_px"], "whole/alone_per_window_px": whole["ratio_px"],
            "cold_whole_km2_s": cold["km2_per_s"],
            "gflop_per_px": flops / 1e9,
            "share_of_bf16_peak": whole["alone"] * whole["windows_per_scene_px"] / KM2_PER_PX
            * flops / peak_bf16,
            "bf16": bf16, "whole_maxrss_mb": whole["maxrss_mb"], "load1": os.getloadavg()[0],
        })  # fmt: skip
    print(f"\nThroughput (scene {base_px} x {base_px} px = {base_px**2 * KM2_PER_PX:.1f} km², "
          f"overlap {args.overlap}, {dev}; medians of {args.rounds} rounds, each whole-path "
          "run set against the model alone measured right before and after it)")  # fmt: skip
    _print_table(rows)

    mem_rows = []
    arch, tile = _config(args.memory_config)
    for s in args.scales:
        px = round(args.base_px * s**0.5)
        rec = _whole_path(args, arch, tile, px, inputs[px], work / "out")
        mem_rows.append({"scale": f"{s}x", "px": f"{px}x{px}", "km2": rec["km2"],
                         "seconds": rec["seconds"], "km2_s": rec["km2_per_s"],
                         "maxrss_mb": rec["maxrss_mb"], "load1": os.getloadavg()[0]})  # fmt: skip
    base = mem_rows[0]
    for r in mem_rows:
        r["rss_vs_1x"] = r["maxrss_mb"] / base["maxrss_mb"]
        r["time_vs_1x_per_area"] = (r["seconds"] / base["seconds"]) / (r["km2"] / base["km2"])
    print(f"\nScaling of the whole path ({arch}, tile {tile}, fresh process per size)")
    _print_table(mem_rows)


def _config(text: str) -> tuple[str, int]:
    """``"unet:1024"`` -> ``("unet", 1024)``."""
    arch, _, tile = text.partition(":")
    return arch, int(tile or 256)


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    cells = [[f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
