"""Facts about the machine and the torch build, printed as the header of every benchmark run."""

from __future__ import annotations

import os
import platform

import torch


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def header_lines() -> list:
    """A few lines naming the CPU, cores, load, torch build and thread settings."""
    try:
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "unknown"
    return [
        f"cpu: {cpu_model()} ({usable_cores()} usable cores, {os.cpu_count()} logical CPUs)",
        f"load average (1, 5, 15 min) at start: {load}  (other processes share these cores: compare ratios, not absolute rates)",
        f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, MKL {torch.backends.mkl.is_available()}, "
        f"oneDNN {torch.backends.mkldnn.is_available()}; python {platform.python_version()}",
        f"torch threads: {torch.get_num_threads()} intra-op (default of this process; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}), {torch.get_num_interop_threads()} inter-op",
    ]
