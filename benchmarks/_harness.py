"""Shared benchmark harness: the model zoo, a peak-RSS probe and fresh-process workers.

Used by the scripts in this folder (run by hand, never by the test suite)::

    from _harness import MALLOC_ENV, PeakRSS, best_of, build, environment, run_worker
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import captum_certified

# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """Two conv layers + linear, 1x28x28 -> 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet18(nn.Module):
    """Standard ResNet-18 (He et al. 2016; torchvision layout), 3x224x224 -> 1000 classes."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers = []
        in_planes = 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(
                nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes))
            )
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(512, num_classes)
        init_resnet_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int]] = {
    # name: (constructor, input shape without batch, number of classes)
    "SmallCNN": (SmallCNN, (1, 28, 28), 10),
    "ResNet-18": (ResNet18, (3, 224, 224), 1000),
}


def build(model_name: str, batch: int) -> tuple[nn.Module, Tensor, Tensor]:
    ctor, shape, classes = MODELS[model_name]
    torch.manual_seed(0)
    model = ctor().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((batch,) + shape, generator=gen)
    y = torch.randint(classes, (batch,), generator=gen)
    return model, x, y


# --------------------------------------------------------------------------------------------
# Memory measurement (one fresh subprocess per configuration)
# --------------------------------------------------------------------------------------------

# glibc: serve every allocation >= 64 KiB by mmap and give freed memory back at once, so the
# process RSS follows the live tensors (no dynamic mmap threshold, no cached free heap).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Peak RSS above the RSS at entry, in MiB (``ru_maxrss`` fallback without /proc)."""

    def __enter__(self) -> PeakRSS:
        gc.collect()
        _malloc_trim()
        self.exact = _reset_hwm() and _status_kib("VmRSS") is not None
        self.base = (
            _status_kib("VmRSS")
            if self.exact
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        )
        return self

    def __exit__(self, *exc: object) -> None:
        peak = (
            _status_kib("VmHWM")
            if self.exact
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        )
        self.mib = (peak - self.base) / 1024.0


def git_revision() -> str:
    """Short commit of the checkout holding captum_certified (+ "dirty"), read-only git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(captum_certified.__file__)))
    try:
        rev = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                root,
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "captum_certified",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "git revision unknown"
    return f"git {rev}{' + uncommitted changes' if dirty else ''}"


def run_worker(script: str, spec: dict) -> dict | None:
    """Run ``script --memory-worker SPEC`` in a fresh process with :data:`MALLOC_ENV`; the
    worker prints one JSON line last. None (stderr printed) if it fails."""
    proc = subprocess.run(
        [sys.executable, os.path.abspath(script), "--memory-worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **MALLOC_ENV},
    )
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Best-of-``repeats`` wall seconds of ``fn()`` and its last output (no warm-up call)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def best_interleaved(
    fns: Sequence[Callable[[], Any]], repeats: int
) -> tuple[list[float], list[float]]:
    """Best-of-``repeats`` wall and process-CPU seconds of each function, after one warm-up
    call each, the functions interleaved round-robin (so machine load hits them alike)."""
    for fn in fns:
        fn()
    wall = [float("inf")] * len(fns)
    cpu = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[i] = min(wall[i], time.perf_counter() - t0)
            cpu[i] = min(cpu[i], time.process_time() - c0)
    return wall, cpu


def environment() -> str:
    """One line: versions, revision, machine, threads and load (print it above every table)."""
    import captum

    return (
        f"python {platform.python_version()}, torch {torch.__version__}, captum "
        f"{captum.__version__}, captum_certified {captum_certified.__version__} "
        f"({git_revision()}), {platform.machine()}; torch.get_num_threads() = "
        f"{torch.get_num_threads()}, os.cpu_count() = {os.cpu_count()}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )


def init_resnet_weights(model: nn.Module) -> None:
    """He et al.'s initialisation of a ResNet (conv: Kaiming fan-out; BatchNorm: 1 and 0)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
