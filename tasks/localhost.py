"""This machine's processes and ports: what the serving check, the local Airflow stack, its test
driver and the tests share (psutil, an Airflow dependency, is imported on use)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterable


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (every local service binds to loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pids: Iterable[int]) -> set[int]:
    """The living processes among ``pids`` and all their descendants (a server's workers, a
    component's task processes), by pid."""
    import psutil

    found: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            found.add(pid)
            found.update(c.pid for c in proc.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return found


def dies_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess`` that has the kernel send the child ``sig`` when the
    process that started it dies (Linux ``PR_SET_PDEATHSIG``): a task process killed with
    SIGKILL, which runs no cleanup, then leaves no trainer or server running on its own. None
    where the kernel has no such call. Call it right before starting the child."""
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return None
    # Resolved here, in the parent: between fork and exec the child only calls into libc (an
    # import there could wait forever on a lock another thread of the parent held).
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent, number = os.getpid(), int(sig)

    def arm() -> None:  # runs in the child, between fork and exec
        prctl(1, number)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call: nobody will send it
            os.kill(os.getpid(), number)

    return arm
