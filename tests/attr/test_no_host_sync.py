"""No value is read on the host inside the sampling loop (issue 25), checked on the CPU.

On a GPU every such read (``bool(t)``, ``t.item()``, ``t.tolist()``, ``t.cpu()``, ...) stops the
loop until the device catches up. A torch-function mode counts them here: the number must not
grow with the number of chunks. The only exempt read is ``topk_mask``'s tie shortcut, which
runs on the CPU only (``tests/transforms/test_transforms.py`` checks the other branch).
"""

from __future__ import annotations

import traceback

import pytest
import torch
from captum.attr import Saliency
from torch import nn
from torch.overrides import TorchFunctionMode

from captum_certified.attr import CertifiedWrapper, NoiseTunnel, SparseSmoothGrad
from captum_certified.certify import FeatureCertifier
from captum_certified.transforms import TopKBinarize

HOST_READS = {
    torch.Tensor.__bool__,
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
    torch.Tensor.cpu,
    torch.Tensor.numpy,
}


class CountHostReads(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.where: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS:
            caller = traceback.extract_stack(limit=2)[0]  # the frame doing the read
            if not caller.filename.endswith("selection.py"):  # the CPU-only tie shortcut
                self.where.append(f"{caller.filename.split('/')[-1]}:{caller.lineno}")
        return func(*args, **(kwargs or {}))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def _reads(method, n: int, target: int = 1, **kwargs) -> list[str]:
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    counter = CountHostReads()
    with counter:
        method.attribute(
            x,
            target=target,
            nt_samples=n,
            nt_samples_batch_size=4,
            stdevs=0.2,
            generator=torch.Generator().manual_seed(0),
            **kwargs,
        )
    return counter.where


@pytest.mark.parametrize(
    "make, certify",
    [
        (lambda m: NoiseTunnel(Saliency(m)), False),
        (lambda m: SparseSmoothGrad(m, sparsity=0.1), False),
        (lambda m: SparseSmoothGrad(m, sparsity=0.1), True),
        (
            lambda m: CertifiedWrapper(
                Saliency(m), transform=TopKBinarize(0.1), certifier=FeatureCertifier()
            ),
            True,
        ),
    ],
)
def test_host_reads_do_not_grow_with_the_number_of_chunks(make, certify):
    method = make(_model())
    kwargs = {"return_certificate": True} if certify else {}
    one, many = _reads(method, 4, **kwargs), _reads(method, 32, **kwargs)  # 1 and 8 chunks
    assert one == many, f"reads per chunk: {sorted(set(many) - set(one)) or many}"


def test_the_counter_has_teeth():
    # a loop that reads a value per chunk is seen
    def per_chunk_read(x):
        out = nn.Flatten()(x).sum(1, keepdim=True)
        bool(out.sum() > 0)
        return out

    method = NoiseTunnel(Saliency(per_chunk_read))
    assert len(_reads(method, 32, target=0)) > len(_reads(method, 4, target=0))
