"""GPU readiness (issue 25): noise on the device from a device generator, statistics on the
device, no host synchronisation inside the sampling loop, the fast path on CUDA.

Skipped without a CUDA device; ``benchmarks/gpu_check.sh`` runs them (``pytest -m cuda``).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from captum.attr import Saliency
from torch import nn

from captum_certified.attr import CertifiedWrapper, FastForward, SparseSmoothGrad
from captum_certified.certify import certify_dataset

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

DEVICE = "cuda"


def _model() -> nn.Module:
    torch.manual_seed(0)
    return (
        nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(128, 10),
        )
        .eval()
        .to(DEVICE)
    )


def _x() -> torch.Tensor:
    return torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)).to(DEVICE)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator(device=DEVICE).manual_seed(seed)


CALL = dict(target=torch.tensor([1, 2]), nt_samples=64, nt_samples_batch_size=16, stdevs=0.25)


def test_seeded_runs_on_the_device_are_identical_and_stay_on_the_device():
    ssg = SparseSmoothGrad(_model(), sparsity=0.1)
    call = {**CALL, "target": CALL["target"].to(DEVICE)}
    a1, c1 = ssg.attribute(_x(), generator=_gen(), return_certificate=True, **call)
    a2, c2 = ssg.attribute(_x(), generator=_gen(), return_certificate=True, **call)
    a3 = ssg.attribute(_x(), generator=_gen(1), **call)
    assert a1.device.type == "cuda"
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)
    assert torch.equal(c1.topk_overlap(k=0.1, radius=0.05), c2.topk_overlap(k=0.1, radius=0.05))
    # the noise was drawn by the device generator: it advanced
    g = _gen()
    ssg.attribute(_x(), generator=g, **call)
    assert not torch.equal(g.get_state(), _gen().get_state())


def _syncs(fn) -> int:
    """Synchronising CUDA calls made by ``fn`` (torch's sync debug mode, as warnings)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_the_sampling_loop_does_not_synchronise_with_the_host():
    # setup (argument checks) may read values once; the loop must not, so 1 chunk and 8
    # chunks make the same number of synchronising calls
    ssg = SparseSmoothGrad(_model(), sparsity=0.1)
    target = CALL["target"].to(DEVICE)

    def run(n):
        return lambda: ssg.attribute(
            _x(),
            target=target,
            nt_samples=n,
            nt_samples_batch_size=16,
            stdevs=0.25,
            generator=_gen(),
        )

    run(16)()  # warm-up
    assert _syncs(run(16)) == _syncs(run(128))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_on_cuda_is_certified_and_returns_float32(dtype):
    fast = FastForward(_model(), autocast=dtype)
    attr, cert = SparseSmoothGrad(fast, sparsity=0.1).attribute(
        _x(), generator=_gen(), return_certificate=True, **{**CALL, "target": 1}
    )
    assert attr.dtype == torch.float32 and attr.device.type == "cuda"
    assert cert.n == 64
    with pytest.raises(TypeError, match="dtype"):
        SparseSmoothGrad(fast, sparsity=0.1).attribute(
            _x().to(dtype), return_certificate=True, **{**CALL, "target": 1}
        )


def test_compiled_forward_and_backward_match_eager():
    model = _model()
    cw = CertifiedWrapper(Saliency(model))
    eager = cw.attribute(_x(), generator=_gen(), **{**CALL, "target": 1})
    compiled = CertifiedWrapper(Saliency(FastForward(model, compile=True))).attribute(
        _x(), generator=_gen(), **{**CALL, "target": 1}
    )
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)


def test_certify_dataset_on_the_device_is_reproducible(tmp_path):
    data = torch.utils.data.TensorDataset(torch.rand(3, 3, 16, 16), torch.tensor([0, 1, 2]))
    ssg = SparseSmoothGrad(_model(), sparsity=0.1)

    def run(out):
        return certify_dataset(
            ssg,
            data,
            out,
            device=DEVICE,
            nt_samples=32,
            stdevs=0.25,
            summarize=lambda r: r[0],
        )

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(a, b))
