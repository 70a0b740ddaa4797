"""Executors: chunks evaluated serially, on a local process pool or on Dask distributed."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pathlib
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from typing import Any, Literal

import numpy as np

from .._workers import exit_with_parent
from ._chunks import ChunkResult, evaluate_chunk
from ._observable import callable_name
from ._plan import Plan, default_chunk_size, split_into_chunks

ExecutorName = Literal["serial", "processes", "dask"]

_EXECUTORS = ("serial", "processes", "dask")


def choose_executor(
    executor: str | None, client: Any, scheduler: str | None, workers: int | None
) -> ExecutorName:
    """The executor the options ask for, after checking that they fit together."""
    if executor is None:
        executor = "dask" if client is not None or scheduler is not None else "serial"
    if executor not in _EXECUTORS:
        raise ValueError(f"executor must be one of {list(_EXECUTORS)}, got {executor!r}")
    if executor != "dask" and (client is not None or scheduler is not None):
        raise ValueError(f"client= and scheduler= need executor='dask', got executor={executor!r}")
    if client is not None and scheduler is not None:
        raise ValueError("give either client= or scheduler=, not both")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string, got {scheduler!r}")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if executor == "serial" or client is not None or scheduler is not None:
            raise ValueError(
                "workers= sets the size of a local pool: it applies to executor='processes' "
                "and to executor='dask' without client= or scheduler="
            )
    return executor  # type: ignore[return-value]


def check_picklable(observable: Callable[..., Any], fixed_params: Mapping[str, Any]) -> None:
    """Refuse at once what worker processes could not receive."""
    try:
        pickle.dumps(observable)
    except Exception as exc:
        raise TypeError(
            f"executor='processes' sends the observable to worker processes, but "
            f"{callable_name(observable)!r} cannot be pickled ({exc}). Define it with def "
            "at module level (not a lambda or a nested function), or use "
            "executor='serial' or executor='dask'"
        ) from exc
    for key, value in fixed_params.items():
        try:
            pickle.dumps(value)
        except Exception as exc:
            raise TypeError(
                f"executor='processes' sends fixed_params to worker processes, but "
                f"fixed_params[{key!r}] cannot be pickled ({exc}). Build it inside the "
                "observable, or use executor='dask', which pickles closures too"
            ) from exc


def run_chunks(
    executor: ExecutorName,
    observable: Callable[..., Any],
    plan: Plan,
    calls: np.ndarray,
    collect: Callable[[ChunkResult], None],
    *,
    chunk_size: int | None,
    workers: int | None,
    client: Any,
    scheduler: str | None,
    finished: Sized,
    saved_in: pathlib.Path | None,
) -> None:
    """Evaluate the observable at the given calls of the plan, chunk by chunk.

    Each chunk's result goes to `collect` as soon as it is finished, in the order the
    chunks finish. `finished` holds the chunks done so far and `saved_in` is the
    checkpoint directory: both are named when a worker process dies.
    """
    if not calls.size:
        return
    if executor == "serial":
        size = chunk_size or default_chunk_size(calls.size, 1)
        for indices in split_into_chunks(calls, size):
            collect(evaluate_chunk(observable, plan, indices))
    elif executor == "processes":
        count = workers or os.cpu_count() or 1
        size = chunk_size or default_chunk_size(calls.size, count)
        chunks = split_into_chunks(calls, size)
        _run_processes(observable, plan, chunks, count, collect, finished, saved_in)
    else:
        with _connect_dask(client, scheduler, workers) as dask_client:
            count = max(1, sum(dask_client.nthreads().values()))
            size = chunk_size or default_chunk_size(calls.size, count)
            _run_dask(dask_client, observable, plan, split_into_chunks(calls, size), collect)


def _run_processes(
    observable: Callable[..., Any],
    plan: Plan,
    chunks: Sequence[np.ndarray],
    workers: int,
    collect: Callable[[ChunkResult], None],
    finished: Sized,
    saved_in: pathlib.Path | None,
) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent)
    clean_exit = False
    try:
        with _explain_missing_main_guard("executor='processes'"):
            futures = [pool.submit(evaluate_chunk, observable, plan, chunk) for chunk in chunks]
        try:
            for future in as_completed(futures):
                collect(future.result())
        except BrokenProcessPool as exc:
            saved = (
                f"; they are saved in {str(saved_in)!r}: run the same sweep again to resume"
                if saved_in is not None
                else ""
            )
            guard = ""
            if multiprocessing.get_start_method() != "fork":
                guard = (
                    ". Worker processes are started with the "
                    f"{multiprocessing.get_start_method()!r} method, which imports the main "
                    "script again: if it has no " + _MAIN_GUARD + " guard around the sweep, "
                    "each worker starts the sweep itself and dies"
                )
            raise RuntimeError(
                f"a worker process died (killed or out of memory) with {len(finished)} "
                f"chunks finished{saved}{guard}"
            ) from exc
        clean_exit = True
    finally:
        # After an error or Ctrl-C, do not wait for chunks whose results would be lost.
        pool.shutdown(wait=clean_exit, cancel_futures=True)


_MAIN_GUARD = 'if __name__ == "__main__":'
_BOOTSTRAPPING = "bootstrapping phase"


@contextlib.contextmanager
def _explain_missing_main_guard(what: str) -> Iterator[None]:
    """Turn multiprocessing's bootstrapping error into advice about the main guard."""
    try:
        yield
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and _BOOTSTRAPPING not in str(cause):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise RuntimeError(
            f"{what} starts worker processes, and this process is itself a worker that is "
            "still importing the main script: the script runs the sweep at import time. "
            "Worker processes started with 'spawn' (the default on Windows and macOS, and "
            "for Dask's LocalCluster) or 'forkserver' import the main script again, so the "
            f"code that starts the sweep must sit under {_MAIN_GUARD}, e.g.\n\n"
            f"    {_MAIN_GUARD}\n        result = run_sweep(...)\n"
        ) from exc


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "executor='dask' needs Dask distributed: pip install 'mesoscopic[dask]'"
        ) from exc
    return distributed


@contextlib.contextmanager
def _connect_dask(client: Any, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    distributed = _import_distributed()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        yield client
        return
    if scheduler is not None:
        try:
            connected = distributed.Client(scheduler)
        except OSError as exc:
            raise OSError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); check that it "
                "runs and that the address is tcp://host:port"
            ) from exc
        with connected:
            yield connected
        return
    try:
        with _explain_missing_main_guard("executor='dask' with a LocalCluster"):
            # The scheduler's HTTP server always starts: a free port on the loopback
            # interface keeps it private and clear of other clusters on this machine.
            cluster = distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address="127.0.0.1:0",
            )
    except RuntimeError as exc:
        if "Nanny failed to start" not in str(exc):
            raise
        # The workers' own errors go to their stderr; this process only sees that they died.
        raise RuntimeError(
            f"the Dask LocalCluster could not start its worker processes ({exc}). They are "
            "started with 'spawn', which imports the main script again: a script that "
            f"runs the sweep at import time needs {_MAIN_GUARD} around it (the workers' "
            "errors are printed above)"
        ) from exc
    with cluster, distributed.Client(cluster) as local:
        yield local


def _run_dask(
    client: Any,
    observable: Callable[..., Any],
    plan: Plan,
    chunks: Sequence[np.ndarray],
    collect: Callable[[ChunkResult], None],
) -> None:
    distributed = _import_distributed()
    # Shipped once to every worker rather than once per chunk.
    [observable_ref, plan_ref] = client.scatter([observable, plan], broadcast=True, hash=False)
    futures = [
        client.submit(evaluate_chunk, observable_ref, plan_ref, chunk, pure=False)
        for chunk in chunks
    ]
    try:
        for future in distributed.as_completed(futures):
            collect(future.result())
            future.release()
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.cancel([observable_ref, plan_ref])
