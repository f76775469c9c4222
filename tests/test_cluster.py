"""Tests for vitseg.cluster and prediction on a real LocalCluster (2 processes over TCP)."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401
import torch
import xarray as xr
from rio_cogeo.cogeo import cog_validate

import vitseg._modelship
import vitseg.predict
from vitseg.cluster import get_client
from vitseg.errors import ParamsError
from vitseg.predict import predict_cube, write_scene_maps


def test_threads_means_no_client() -> None:
    assert get_client("") is None
    assert get_client("threads") is None
    assert get_client(" ") is None


@pytest.mark.parametrize("bad", ["locale", "http://host:8786", "cluster"])
def test_bad_scheduler(bad: str) -> None:
    with pytest.raises(ParamsError, match="dask_scheduler must be"):
        get_client(bad)


def _loads() -> int:
    return vitseg._modelship._LOADS


def test_local_cluster_predicts_like_threads(tmp_path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1)
    ).eval()
    values = np.random.default_rng(0).normal(size=(2, 4, 96, 96)).astype("float32")
    cube = xr.DataArray(
        values, dims=("time", "band", "y", "x"),
        coords={"band": ["B02", "B03", "B04", "B08"], "y": 1000.0 - 10 * np.arange(96),
                "x": 10.0 * np.arange(96)},
    ).rio.write_crs("EPSG:32630")  # fmt: skip
    probs = predict_cube(net, cube, tile=32, overlap=16, chunk_size=32, device="cpu", bf16=False)
    local = probs.values  # threads scheduler, this process
    n_tasks = probs.data.npartitions
    client = get_client(
        "local", n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        protocol="tcp", memory_limit="2GiB",
    )  # fmt: skip
    try:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert len(client.scheduler_info()["workers"]) == 2
        # A second client through the "tcp://..." path, as a user with a cluster would.
        remote = get_client(client.scheduler.address, set_as_default=False)
        remote.close()
        before = dict(client.run(_loads))
        assert set(before.values()) == {0}
        distributed_result = probs.compute().values  # runs on the cluster (default client)
        np.testing.assert_allclose(distributed_result, local, atol=1e-6)
        loads = client.run(_loads)
        # Weights went to each worker once (one graph key, one rebuild per process),
        # not once per task: 18 tasks, at most 2 loads.
        assert n_tasks == 18 and 1 <= sum(loads.values()) <= 2
        assert all(v <= 1 for v in loads.values())
        # COG writing under the cluster (distributed lock, shared local folder).
        out = write_scene_maps(probs.isel(time=1), tmp_path, prefix="scene")
        assert all(cog_validate(str(p))[0] for p in out.values())
        assert sum(client.run(_loads).values()) <= 2  # same model: still no reload
    finally:
        client.close()
        client.cluster.close()


def test_model_weights_are_scattered_once_per_client() -> None:
    """Scene after scene on a cluster, the weights travel to the workers once."""
    import numpy as np
    import torch
    import xarray as xr

    from vitseg._modelship import _SCATTERED
    from vitseg.predict import predict_cube

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1)).eval()
    cube = xr.DataArray(
        np.random.default_rng(0).random((1, 2, 64, 64), dtype="float32"),
        dims=("time", "band", "y", "x"),
        coords={"y": 700_000.0 - 10 * np.arange(64), "x": 600_000.0 + 10 * np.arange(64)},
    ).rio.write_crs("EPSG:32630")  # fmt: skip
    client = get_client("local", n_workers=1, threads_per_worker=1)
    try:
        first = predict_cube(net, cube, tile=32, overlap=8, device="cpu").compute()
        keys = {k: f.key for k, f in _SCATTERED.items() if k[0] == client.id}
        second = predict_cube(net, cube, tile=32, overlap=8, device="cpu").compute()
        assert len(keys) == 1  # one scattered payload for these weights on this client
        assert {k: f.key for k, f in _SCATTERED.items() if k[0] == client.id} == keys
        np.testing.assert_array_equal(first.values, second.values)
    finally:
        client.close()
        client.cluster.close()
