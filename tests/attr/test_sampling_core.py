"""The one sampling core: graph mode, bounded-memory loss gradients, attack maps = engine maps."""

import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from captum_certified.attr import CertifiedWrapper, DifferentiableExplainer, SparseSmoothGrad
from captum_certified.attr._core.sampling import chunk_sizes
from captum_certified.attr._core.smoothed_guide import smoothed_map


def _model() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 10), nn.Softplus(beta=3.0), nn.Linear(10, 3))
    return net.double()


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _loss(m: torch.Tensor) -> torch.Tensor:
    # a nonlinear function of the map, as the attacks use
    w = torch.linspace(-1.0, 1.0, m.shape[1], dtype=m.dtype)
    return ((m / m.sum(1, keepdim=True)) * w).sum(1) + (m**2).sum(1)


def test_chunk_sizes():
    assert list(chunk_sizes(10, 4)) == [4, 4, 2]
    assert list(chunk_sizes(8, 4)) == [4, 4]
    assert list(chunk_sizes(3, None)) == [3]
    assert list(chunk_sizes(3, 16)) == [3]
    # lazy (issue 29): 3e11 samples in chunks of 512 materialise no list of 6e8 sizes
    sizes = chunk_sizes(3 * 10**11, 512)
    assert not isinstance(sizes, list) and next(sizes) == 512


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_graph_mode_equals_streaming_and_noise_tunnel(nt_type):
    # float32: NoiseTunnel draws float32 noise whatever the input dtype
    model, x = _model().float(), _x().float()
    kw = dict(nt_type=nt_type, nt_samples=7, stdevs=0.3, target=[0, 2])
    cw = CertifiedWrapper(Saliency(model))
    xs = x.clone().requires_grad_()
    graph = cw.attribute(xs, create_graph=True, generator=torch.Generator().manual_seed(3), **kw)
    stream = cw.attribute(x, generator=torch.Generator().manual_seed(3), **kw)
    assert graph.requires_grad and not stream.requires_grad
    # the engine streams float64 sums, the graph sums in float32
    torch.testing.assert_close(graph.detach(), stream, rtol=1e-5, atol=1e-6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        ref = NoiseTunnel(Saliency(model)).attribute(x, **kw)
    # same noise; float32 sums in another order
    torch.testing.assert_close(graph.detach(), ref, rtol=1e-5, atol=1e-6)


def test_loss_gradient_equals_the_full_graph_gradient_and_advances_the_generator_once():
    model, x = _model(), _x(3)
    cw = CertifiedWrapper(Saliency(model))
    kw = dict(nt_samples=11, nt_samples_batch_size=4, stdevs=0.2, target=[0, 1, 2])
    xs = x.clone().requires_grad_()
    g_full = torch.Generator().manual_seed(5)
    loss_full = _loss(cw.attribute(xs, create_graph=True, generator=g_full, **kw))
    (grad_full,) = torch.autograd.grad(loss_full.sum(), xs)
    g_chunk = torch.Generator().manual_seed(5)
    loss, (grad,) = cw.loss_gradient(x, _loss, generator=g_chunk, **kw)
    torch.testing.assert_close(loss, loss_full.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, grad_full, rtol=1e-10, atol=1e-12)
    assert grad.abs().max() > 1e-3  # a real second-order signal, not zeros
    # the generator ends where one pass over the noise leaves it
    assert torch.equal(g_chunk.get_state(), g_full.get_state())
    # finite-difference check of one coordinate: the same noise (same seed) at x +- h e_j
    h, j = 1e-6, (1, 4)
    e = torch.zeros_like(x)
    e[j] = h

    def f(z):
        m = cw.attribute(z, generator=torch.Generator().manual_seed(5), **kw)
        return _loss(m).sum()

    fd = (f(x + e) - f(x - e)) / (2 * h)
    assert abs(fd.item() - grad[j].item()) < 1e-6 * max(1.0, abs(fd.item()))


def test_loss_gradient_with_respect_to_parameters():
    model, x = _model(), _x()
    cw = CertifiedWrapper(Saliency(model))
    kw = dict(nt_samples=9, nt_samples_batch_size=2, stdevs=0.2, target=[1, 0])
    params = list(model.parameters())
    full = _loss(
        cw.attribute(x, create_graph=True, generator=torch.Generator().manual_seed(2), **kw)
    )
    ref = torch.autograd.grad(full.sum(), params, allow_unused=True)
    assert ref[-1] is None  # the last bias does not move the gradient map
    _, grads = cw.loss_gradient(
        x, _loss, wrt=params, generator=torch.Generator().manual_seed(2), **kw
    )
    for g, r, p in zip(grads, ref, params):
        torch.testing.assert_close(
            g, torch.zeros_like(p) if r is None else r, rtol=1e-10, atol=1e-12
        )
    assert all(p.grad is None for p in params)


def test_graph_mode_refusals():
    cw = CertifiedWrapper(Saliency(_model()))
    with pytest.raises(ValueError, match="create_graph"):
        CertifiedWrapper(IntegratedGradients(_model())).attribute(
            _x(), target=0, create_graph=True, return_convergence_delta=True
        )
    with pytest.raises(ValueError, match="nt_type"):
        cw.loss_gradient(_x(), _loss, target=0, nt_type="vargrad")
    with pytest.raises(TypeError, match="loss_fn"):
        cw.loss_gradient(_x(), "l2", target=0)


def test_attack_evaluation_map_is_the_certified_map():
    # The attack's evaluation of "sparse_smoothgrad" is SparseSmoothGrad itself, same noise.
    model = _model()
    x = _x().float()
    model = model.float()
    target = torch.tensor([0, 2])
    ours = smoothed_map(
        model,
        (x,),
        target,
        (),
        "binary_topk",
        n=300,
        chunk=64,
        stdevs=0.25,
        generator=torch.Generator().manual_seed(9),
        create_graph=False,
        sparsity=2,
    )[0]
    ref = SparseSmoothGrad(model, sparsity=2).attribute(
        x,
        target=target,
        nt_samples=300,
        nt_samples_batch_size=64,
        stdevs=0.25,
        generator=torch.Generator().manual_seed(9),
    )
    assert torch.equal(ours, ref)


def test_attack_step_memory_does_not_store_the_guide_noise():
    # ExplainerRun keeps seeds, not noise tensors: its size does not grow with n_guide.
    exp = DifferentiableExplainer("sparse_smoothgrad", {"n_guide": 4096, "sparsity": 2})
    run = exp.start((_x(),), torch.Generator().manual_seed(0))
    assert not any(isinstance(v, torch.Tensor) for v in vars(run).values())
    g1, g2 = run.guide_generator(), run.guide_generator()
    assert torch.equal(g1.get_state(), g2.get_state())  # fixed noise replays


def test_chunked_attack_direction_equals_the_full_graph_direction():
    # The attacks' direction (chunk by chunk, bounded memory) equals the gradient through the
    # full graph of the same guide map (same noise: same seed, same chunking).
    model = _model()
    x = _x()
    exp = DifferentiableExplainer(
        "sparse_smoothgrad", {"n_guide": 12, "sparsity": 2, "nt_samples_batch_size": 5}
    )
    run = exp.start((x,), torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1])
    xs = (x.clone().requires_grad_(),)
    loss, (grad,) = exp.loss_gradient(model, xs, target, (), False, run, lambda m: _loss(m[0]))
    full = _loss(exp.graph(model, xs, target, (), False, run)[0])
    (ref,) = torch.autograd.grad(full.sum(), xs)
    torch.testing.assert_close(loss, full.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref, rtol=1e-10, atol=1e-12)
    assert grad.abs().max() > 1e-3
