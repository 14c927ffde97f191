"""This machine's processes and ports: what the serving check, the local Airflow stack, its test
driver and the tests share (psutil, an Airflow dependency, is imported on use)."""

from __future__ import annotations

import socket
from collections.abc import Iterable


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
