"""Dask scheduler selection: threads, a LocalCluster, or an existing cluster.

The ``dask_scheduler`` parameter of an experiment picks where the lazy work runs:

- ``""`` or ``"threads"``: dask's threaded scheduler in this process (no client);
- ``"local"``: a :class:`distributed.LocalCluster` of worker processes on this machine;
- ``"tcp://host:port"`` (or ``tls://``, ``ws://``...): connect to a running scheduler,
  which is how a user maps a whole country on a real cluster (the workers must see the
  same files, e.g. a shared or object-store path for outputs).
"""

from __future__ import annotations

from typing import Any

from vitseg.errors import ParamsError

__all__ = ["get_client"]

_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")


def get_client(scheduler: str = "", **kwargs: Any) -> Any:
    """Return a ``distributed.Client`` for ``scheduler``, or None for the threaded scheduler.

    Parameters
    ----------
    scheduler
        ``""`` / ``"threads"`` (None is returned: dask's default threads), ``"local"``
        (start a LocalCluster, one single-threaded worker process per core by default) or
        a scheduler address such as ``"tcp://10.0.0.5:8786"``.
    **kwargs
        Passed to :class:`distributed.LocalCluster` for ``"local"`` (e.g. ``n_workers``,
        ``threads_per_worker``, ``memory_limit``), or to :class:`distributed.Client` for an
        address (e.g. ``timeout``).

    Returns
    -------
    distributed.Client or None
        The client (it becomes dask's default scheduler; call ``client.close()`` and, for
        ``"local"``, ``client.cluster.close()`` when done), or None.

    Raises
    ------
    ParamsError
        For any other value.

    Examples
    --------
    >>> get_client("") is None
    True
    """
    value = (scheduler or "").strip()
    if value in {"", "threads"}:
        return None
    from distributed import Client, LocalCluster

    if value == "local":
        import os

        opts: dict[str, Any] = {
            "n_workers": max(1, os.cpu_count() or 1),
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
        opts.update(kwargs)
        cluster = LocalCluster(**opts)
        return Client(cluster)
    if value.startswith(_SCHEMES):
        return Client(value, **kwargs)
    raise ParamsError(
        f"dask_scheduler must be '' (threads), 'local' (LocalCluster) or a scheduler address "
        f"like 'tcp://host:8786'; got {scheduler!r}"
    )
