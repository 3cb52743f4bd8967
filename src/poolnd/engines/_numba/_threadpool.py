"""The engine's thread pool and its thread policy: how many threads a call gets, when it stays
serial, pinning, and what a forked child does (see the package docstring)."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numba


# elements of work below which threads cost more than they save (tests set it to 0)
_SERIAL_BELOW = int(os.environ.get("POOLND_NUMBA_SERIAL_BELOW", 1 << 15))
# below this much work a call also stays on one thread when the other threads are asleep (no
# parallel call in the last _WARM_S seconds): waking a sleeping thread on an idle vCPU took
# 0.5-1 ms here, more than the whole call (64x32x28x28 max pool: 0.8 ms serial, 1.4 ms on two
# woken threads, 0.3 ms on two warm ones)
_COLD_SERIAL_BELOW = int(os.environ.get("POOLND_NUMBA_COLD_SERIAL_BELOW",
                                        1 << 20 if _SERIAL_BELOW > 0 else 0))
_WARM_S = 0.002
_PIN = os.environ.get("POOLND_PIN_THREADS", "1") != "0"
_last_parallel = [-1.0]          # perf_counter() at the end of the last parallel call


def _threads() -> int:
    """How many threads a call may use: Numba's thread count, read without starting Numba's
    threading layer. ``numba.get_num_threads()`` launches that layer (OpenMP, TBB or workqueue),
    and a process that has launched GNU OpenMP aborts in every child it forks; so until the user
    starts the layer (``numba.set_num_threads`` does), poolnd reads ``NUMBA_NUM_THREADS``."""
    from numba.np.ufunc import parallel
    if parallel._is_initialized:
        return numba.get_num_threads()
    return numba.config.NUMBA_NUM_THREADS


def _serial(work: int) -> bool:
    """Whether a call of ``work`` output elements should stay on the calling thread."""
    if work < _SERIAL_BELOW:
        return True
    return work < _COLD_SERIAL_BELOW and time.perf_counter() - _last_parallel[0] > _WARM_S


class _Pool:
    """Runs a kernel over ``range(n)`` split into one contiguous chunk per thread. The kernels
    are ``nogil``, so Python threads run them in parallel; the thread count is Numba's
    (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``). Small problems run on the caller's
    thread alone.

    Where the OS allows it (Linux), each worker is pinned to its own CPU of the process's
    affinity set and the caller waits instead of taking a chunk: unpinned, the scheduler often
    woke the worker on the caller's own CPU, and the two chunks then shared one core while the
    other idled (a 3x3 pool of 16x64x112x112 took 6.3-6.8 ms that way in most calls, 3.4 ms
    pinned). ``POOLND_PIN_THREADS=0`` turns pinning off (the caller then takes a chunk)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._executor = None
        self._size = 0
        self._next_cpu = 0
        self._pin = _PIN and hasattr(os, "sched_setaffinity")

    def _pin_worker(self):
        with self._lock:
            i = self._next_cpu
            self._next_cpu += 1
        try:
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpus[i % len(cpus)]})
        except OSError:                      # a restricted container: run unpinned
            pass

    def _get(self, workers):
        with self._lock:
            if self._executor is None or self._size < workers:
                if self._executor is not None:
                    self._executor.shutdown(wait=False)
                self._next_cpu = 0
                self._executor = ThreadPoolExecutor(
                    workers, thread_name_prefix="poolnd",
                    initializer=self._pin_worker if self._pin else None)
                self._size = workers
            return self._executor

    def run(self, kernel, n, work, *args):
        nt = 1 if _serial(work) else min(_threads(), n)
        if nt <= 1:
            kernel(*args, 0, n)
            return
        bounds = [n * i // nt for i in range(nt + 1)]
        if self._pin:
            ex = self._get(nt)
            futures = [ex.submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(nt)]
        else:
            ex = self._get(nt - 1)
            futures = [ex.submit(kernel, *args, bounds[i], bounds[i + 1])
                       for i in range(1, nt)]
            kernel(*args, bounds[0], bounds[1])
        for f in futures:
            f.result()
        _last_parallel[0] = time.perf_counter()


_pool = _Pool()


def _forget_pool_in_child():
    """A forked child has none of the parent's worker threads: start a fresh pool there
    (otherwise its first parallel call would wait forever on threads that do not exist)."""
    _pool._executor = None
    _pool._size = 0
    _pool._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)
