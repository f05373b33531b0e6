"""Waiting on a dask cluster without hanging: futures are gathered in short waits, and a cluster
that has had no workers for :data:`NO_WORKERS_GRACE_S` seconds (or whose client closed) ends
the wait with an error instead of blocking forever (dask itself waits for workers to return)."""

from __future__ import annotations

import time

NO_WORKERS_GRACE_S = 30.0
"""How long a cluster may have no workers before pending work is given up."""

_POLL_S = 0.5


def check_client(client):
    """``client`` if it is a ``dask.distributed.Client`` (or None); a TypeError otherwise."""
    if client is None:
        return None
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover (dask is a dependency of the tests)
        Client = None
    if Client is None or not isinstance(client, Client):
        hint = (f" To use the scheduler at {client!r}, pass client=distributed.Client({client!r})."
                if isinstance(client, str) else "")
        raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}.{hint}")
    if client.status not in ("running", "connecting", "newly-created"):
        raise ValueError(f"The dask client is {client.status!r}; pass a running client.")
    return client


def _n_workers(client) -> int:
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 (a lost scheduler raises many types)
        return 0


def gather(client, futures: list, *, what: str = "the fit") -> list:
    """``client.gather(futures)``, giving up (RuntimeError) when the cluster loses all its workers
    for :data:`NO_WORKERS_GRACE_S` seconds or the client closes. Task errors are re-raised as is."""
    from distributed import wait

    futures = list(futures)
    no_workers_since = None
    while True:
        try:
            wait(futures, timeout=_POLL_S)
            return client.gather(futures)
        except TimeoutError:
            pass
        if client.status not in ("running", "connecting"):
            raise RuntimeError(f"The dask client closed ({client.status!r}) while running {what}.")
        if _n_workers(client) == 0:
            now = time.monotonic()
            no_workers_since = now if no_workers_since is None else no_workers_since
            if now - no_workers_since >= NO_WORKERS_GRACE_S:
                client.cancel(futures)
                raise RuntimeError(
                    f"The dask cluster has had no workers for {NO_WORKERS_GRACE_S:.0f} s while running {what}, so "
                    "it cannot finish. Restart the workers (or the cluster) and fit again, or fit without client=."
                )
        else:
            no_workers_since = None
