"""What this process can train on: GPU presence, CPU count, a description for the registry."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import lru_cache


@lru_cache(maxsize=1)
def gpu_names() -> tuple[str, ...]:
    """Names of visible NVIDIA GPUs (empty when none, or when CUDA_VISIBLE_DEVICES hides them)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return ()
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip()) if out.returncode == 0 else ()


def use_gpu(mode: str) -> bool:
    """``auto``: a GPU when one is visible; ``on``: require one (clear error); ``off``: CPU."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"gpu must be auto, on or off; got {mode!r}")
    if mode == "off":
        return False
    present = bool(gpu_names())
    if mode == "on" and not present:
        raise ValueError("gpu=on but no NVIDIA GPU is visible to this process (nvidia-smi)")
    return present


def describe(gpu: bool) -> dict:
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "gpu": list(gpu_names()) if gpu else [],
    }
