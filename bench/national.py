"""Time and memory to map one dry season of Ghana, from a measured slope on this machine.

1. Counts the Sentinel-2 tiles that cover Ghana: the 100 km MGRS grid squares of UTM zones
   30N and 31N that intersect the Natural Earth outline shipped in ``vitseg/data`` (each
   square is one Sentinel-2 tile of 109.8 km, 12,056 km² with its overlap).
2. Runs the whole prediction path (local 10-band uint16 COG -> ``open_map`` -> ``* 1e-4`` ->
   ``predict_cube`` (U-Net ResNet-34, tile 256, overlap 32, bf16 "auto") -> class,
   confidence and probability COGs with ``write_scene_maps``) for several scene counts on a
   ``dask.distributed.LocalCluster`` (``vitseg.cluster.get_client("local")``: one worker
   process per core), all scenes of a count as one workflow with one scene in flight per
   worker (``--in-flight``; a 1,024 px scene is one prediction block, so one scene at a
   time would leave all but one worker idle), and fits seconds = a + b x km² (least
   squares). The peak RSS of every worker is read from the workers themselves.
3. Extrapolates: Ghana's tiles x ``--observations`` per tile per season x 12,056 km², on
   this machine and on a cluster, and the number of cores (workers like these) that brings
   the season under one hour.

    .venv/bin/python bench/national.py                      # ~1 min on 2 cores
    .venv/bin/python bench/national.py --counts 2 4 --scene-px 1024 --observations 8
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TILE_KM2 = 109.8 * 109.8  # one Sentinel-2 MGRS tile
GHANA_KM2 = 238_533


def ghana_tiles() -> int:
    """Number of 100 km MGRS squares (zones 30N, 31N) that intersect Ghana."""
    import geopandas as gpd
    from shapely.geometry import box

    from vitseg.io import data_path

    ghana = gpd.read_file(data_path("ne_10m_ghana.geojson")).to_crs("EPSG:4326").union_all()
    n = 0
    for zone, (lon0, lon1) in {32630: (-6.0, 0.0), 32631: (0.0, 6.0)}.items():
        part = ghana.intersection(box(lon0, -10, lon1, 20))
        if part.is_empty:
            continue
        geom = gpd.GeoSeries([part], crs="EPSG:4326").to_crs(zone).iloc[0]
        x0, y0, x1, y1 = geom.bounds
        for x in range(int(x0 // 100_000) * 100_000, int(x1) + 1, 100_000):
            for y in range(int(y0 // 100_000) * 100_000, int(y1) + 1, 100_000):
                if geom.intersects(box(x, y, x + 100_000, y + 100_000)):
                    n += 1
    return n


def _worker_peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_count(client, model, inputs, out_dir, *, tile, overlap, batch_size, in_flight=1) -> float:
    """Map ``inputs`` (one COG per scene) and return the wall time.

    ``in_flight`` scenes are mapped at once, each by its own ``write_scene_maps`` call on
    the shared client: a 1,024 px scene is a single prediction block, so one scene at a
    time keeps only one single-threaded worker busy.
    """
    import concurrent.futures

    import dask

    from vitseg.predict import open_map, predict_cube, write_scene_maps

    def one(k: int, path: Path) -> None:
        cube = open_map(path).rename({"class": "band"}).astype("float32") * 1e-4
        probs = predict_cube(model, cube, tile=tile, overlap=overlap, batch_size=batch_size)
        with dask.config.set(scheduler=client.get if client is not None else "threads"):
            write_scene_maps(probs, out_dir, prefix=f"scene{k}", overwrite=True)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max(1, in_flight)) as pool:
        for fut in [pool.submit(one, k, path) for k, path in enumerate(inputs)]:
            fut.result()
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[2, 4, 8], help="scenes per run")
    ap.add_argument("--scene-px", type=int, default=1024)
    ap.add_argument("--observations", type=int, default=8, help="per tile per dry season")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--in-flight", type=int, default=None,
                    help="scenes mapped at once (default: one per worker)")  # fmt: skip
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from predict import _make_input  # bench/predict.py

    import vitseg.compat
    from vitseg.cluster import get_client
    from vitseg.models import bf16_decision, cpu_flags, create_model

    n_tiles = ghana_tiles()
    flags = sorted(cpu_flags() & {"amx_bf16", "avx512_bf16", "avx512f", "avx2"})
    print(
        f"CPU flags: {' '.join(flags)}; cores {os.cpu_count()}; {bf16_decision('cpu')[1]}; "
        f"{vitseg.compat.huge_pages()}"
    )
    print(
        f"Ghana ({GHANA_KM2:,} km²): {n_tiles} Sentinel-2 tiles (100 km MGRS squares, zones 30N/31N)"
    )
    scene_km2 = args.scene_px**2 * 100 / 1e6
    client = get_client("local")
    torch.manual_seed(0)
    model = create_model("unet", in_channels=10, classes=3, encoder="resnet34").eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = []
        for k in range(max(args.counts)):
            p = Path(tmp) / f"in{k}.tif"
            _make_input(p, args.scene_px)
            inputs.append(p)
        in_flight = args.in_flight or len(client.scheduler_info()["workers"])
        run_count(
            client,
            model,
            inputs[:in_flight],
            Path(tmp) / "warm",
            tile=args.tile,
            overlap=args.overlap,
            batch_size=args.batch_size,
            in_flight=in_flight,
        )  # fmt: skip  warm-up: every worker gets the weights and picks its kernels
        for n in args.counts:
            secs = run_count(client, model, inputs[:n], Path(tmp) / f"out{n}", tile=args.tile,
                             overlap=args.overlap, batch_size=args.batch_size,
                             in_flight=in_flight)  # fmt: skip
            rss = client.run(_worker_peak_rss_gb)
            rows.append((n, n * scene_km2, secs, max(rss.values())))
            print(f"  {n} scene(s), {n * scene_km2:7.1f} km²: {secs:6.1f} s "
                  f"({n * scene_km2 / secs:5.1f} km²/s); worker peak RSS {max(rss.values()):.2f} GB",
                  flush=True)  # fmt: skip
    client.close()
    client.cluster.close()
    km2 = np.array([r[1] for r in rows])
    sec = np.array([r[2] for r in rows])
    b, a = np.polyfit(km2, sec, 1)
    print(f"slope {b * 1000:.2f} s per 1,000 km² (+ {a:.1f} s fixed), from {len(rows)} runs; "
          f"rate {1 / b:.1f} km²/s on {os.cpu_count()} cores")  # fmt: skip
    season_km2 = n_tiles * args.observations * TILE_KM2
    here_h = (a + b * season_km2) / 3600
    cores_needed = math.ceil(b * season_km2 * (os.cpu_count() or 1) / 3600)
    print(f"one dry season: {n_tiles} tiles x {args.observations} observations x {TILE_KM2:,.0f} km² "
          f"= {season_km2:,.0f} km² of scenes")  # fmt: skip
    print(f"  on this machine: {here_h:.1f} h ({here_h / 24:.1f} days); worker memory stays at "
          f"{max(r[3] for r in rows):.2f} GB per worker (flat in the scene count)")  # fmt: skip
    print(f"  under one hour: a Dask cluster of about {cores_needed} such cores "
          f"({math.ceil(cores_needed / 2)} two-core workers), reading the COGs it needs")  # fmt: skip
    return {"tiles": n_tiles, "slope_s_per_km2": b, "intercept_s": a, "hours_here": here_h,
            "cores_for_1h": cores_needed, "rows": rows}  # fmt: skip


if __name__ == "__main__":
    main()
