"""The package's one sampling loop: chunked noise -> method -> transform -> statistics or graph.

Every smoothed map of the package (the engine's certified maps, the attacks' guide and
evaluation maps, the training losses) is computed by :func:`sample_chunks`: it draws the noise
of ``n`` samples per example in chunks of at most ``chunk`` samples, adds it to the
repeat-interleaved inputs (Captum's ``NoiseTunnel`` layout ``[x0 + e0, ..., x0 + e(c-1), x1 +
e0, ...]``) and applies a per-sample function (the wrapped attribution method) to each chunk.
Three consumers sit on top of it:

- :func:`stream_moments` (certification): per-example running statistics of the transformed
  maps, no graph, memory bounded by the chunk size;
- :func:`smoothed_graph` (``create_graph=True``): the differentiable mean (or second moment,
  or variance) of the transformed maps, with the graph of every chunk kept;
- :func:`smoothed_loss_gradient`: the value of ``loss_fn(mean map)`` and its gradient with
  respect to the inputs (or any tensors), chunk by chunk in two passes over the same noise,
  so memory is bounded by the chunk size, never by ``n``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor

from captum_certified.attr._core.noise_scale import expand_scale
from captum_certified.certify import StreamingMoments
from captum_certified.noise import NoiseDistribution
from captum_certified.transforms import AttributionTransform

Tensors = tuple[Tensor, ...]

#: ``per_sample(noisy_inputs, n_chunk, create_graph) -> outputs``: the attribution of every
#: noisy row (``bsz * n_chunk`` rows, example-major), one tensor per output. With
#: ``create_graph`` the outputs must keep their graph to ``noisy_inputs``.
PerSample = Callable[[Tensors, int, bool], Tensors]


def chunk_sizes(n: int, chunk: int | None) -> Iterator[int]:
    """Sizes of the chunks of ``n`` samples: ``chunk`` (all of ``n`` if None) and a rest,
    generated lazily (``n / chunk`` may be huge; nothing is materialised)."""
    size = n if chunk is None else max(1, min(n, chunk))
    for _ in range(n // size):
        yield size
    if n % size:
        yield n % size


def single_chunk(n: int, chunk: int | None) -> bool:
    """Whether ``n`` samples take one chunk of ``chunk``."""
    return chunk is None or chunk >= n


def noisy_copies(
    inputs: Tensors,
    scales: Tensors,
    noise: NoiseDistribution,
    n: int,
    generator: torch.Generator | None,
    *,
    keep_graph: bool = False,
) -> Tensors:
    """``n`` noisy copies of every example, rows ``[x0 + e0, ..., x0 + e(n-1), x1 + e0, ...]``.

    The graph to ``inputs`` is kept with ``keep_graph``; otherwise the copies are detached.
    """
    shapes = [(x.shape[0] * n,) + tuple(x.shape[1:]) for x in inputs]
    expanded = [expand_scale(s, x, n) for s, x in zip(scales, inputs)]
    eps = noise.sample(
        shapes, expanded, generator=generator, dtype=inputs[0].dtype, device=inputs[0].device
    )
    base = inputs if keep_graph else tuple(x.detach() for x in inputs)
    return tuple(x.repeat_interleave(n, dim=0) + e for x, e in zip(base, eps))


def sample_chunks(
    inputs: Tensors,
    scales: Tensors,
    noise: NoiseDistribution,
    n: int,
    chunk: int | None,
    generator: torch.Generator | None,
    per_sample: PerSample,
    *,
    create_graph: bool = False,
    requires_grad: bool = False,
) -> Iterator[tuple[int, Tensors]]:
    """The sampling loop: yields ``(n_chunk, per_sample(noisy chunk))`` chunk by chunk.

    Noise is drawn lazily, one chunk at a time, from ``generator`` (so draws ``per_sample``
    makes from the same generator, e.g. baselines, interleave with the noise as in the
    engine). With ``create_graph`` the noisy copies keep the graph to ``inputs``; otherwise
    they are detached leaves. With ``requires_grad`` copies that do not require grad yet (no
    graph to keep) are made to (gradient methods).
    """
    for n_chunk in chunk_sizes(n, chunk):
        noisy = noisy_copies(inputs, scales, noise, n_chunk, generator, keep_graph=create_graph)
        if requires_grad:
            noisy = tuple(t if t.requires_grad else t.requires_grad_() for t in noisy)
        yield n_chunk, per_sample(noisy, n_chunk, create_graph)


def flatten_outputs(outs: Tensors, transform: AttributionTransform) -> Tensor:
    """The per-sample outputs as one ``(rows, d)`` map (all outputs concatenated), transformed."""
    return transform.from_outputs(tuple(outs))


def output_shapes(
    transform: AttributionTransform, shapes: Sequence[torch.Size], width: int
) -> list[torch.Size]:
    """Per-example shapes of the transformed map; one flat map when a transform changes the
    width without declaring its layout."""
    out = transform.output_shapes(list(shapes))
    if sum(int(torch.Size(s).numel()) for s in out) != width:
        return [torch.Size([width])]
    return out


def unflatten_outputs(flat: Tensor, shapes: Sequence[torch.Size]) -> Tensors:
    """Split a ``(bsz, d)`` map back into one tensor per output of shape ``(bsz, *shape)``."""
    sizes = [int(torch.Size(s).numel()) for s in shapes]
    return tuple(
        part.reshape((flat.shape[0],) + tuple(s))
        for part, s in zip(flat.split(sizes, dim=1), shapes)
    )


def stream_moments(
    chunks: Iterable[tuple[int, Tensors]],
    batch: int,
    transform: AttributionTransform,
    *,
    flat: bool,
    second_moment: bool,
    check: Callable[[Tensor], None] | None = None,
) -> tuple[list[StreamingMoments], list[torch.Size]]:
    """Certification path: stream per-example statistics of the (transformed) per-sample maps.

    With ``flat`` the outputs are concatenated and transformed (one statistic over all
    features, as certificates need); otherwise each output keeps its own shape and statistic
    (identity transform). ``check`` sees every transformed chunk (certifiers' range checks).

    Returns:
        The statistics, and the per-example shape of every output.
    """
    stats: list[StreamingMoments] = []
    shapes: list[torch.Size] = []
    for n_chunk, outs in chunks:
        if not stats:
            shapes = [o.shape[1:] for o in outs]
            stats = [StreamingMoments(second_moment) for _ in range(1 if flat else len(outs))]
        if flat:
            maps = flatten_outputs(tuple(o.detach() for o in outs), transform)
            if check is not None:
                check(maps)
            stats[0].update(maps.reshape(batch, n_chunk, -1))
        else:
            for s, o in zip(stats, outs):
                s.update(o.detach().reshape((batch, n_chunk) + o.shape[1:]))
    return stats, shapes


def _accumulate(
    chunks: Iterable[tuple[int, Tensors]],
    batch: int,
    transform: AttributionTransform,
    second: bool,
) -> tuple[Tensor, Tensor | None, list[torch.Size], int]:
    total: Tensor | None = None
    total_sq: Tensor | None = None
    shapes: list[torch.Size] = []
    n = 0
    for n_chunk, outs in chunks:
        shapes = [o.shape[1:] for o in outs]
        maps = flatten_outputs(outs, transform).reshape(batch, n_chunk, -1)
        part = maps.sum(dim=1)
        total = part if total is None else total + part
        if second:
            part_sq = maps.square().sum(dim=1)
            total_sq = part_sq if total_sq is None else total_sq + part_sq
        n += n_chunk
    assert total is not None
    return total, total_sq, shapes, n


def smoothed_graph(
    chunks: Iterable[tuple[int, Tensors]],
    batch: int,
    transform: AttributionTransform,
    nt_type: str = "smoothgrad",
) -> Tensors:
    """Graph path: the mean (``"smoothgrad"``), mean square (``"smoothgrad_sq"``) or variance
    (``"vargrad"``, ``E[a^2] - E[a]^2`` as NoiseTunnel computes it) of the transformed
    per-sample maps, differentiable through every chunk (``chunks`` from
    :func:`sample_chunks` with ``create_graph=True``). Memory grows with the number of samples:
    use :func:`smoothed_loss_gradient` when only a gradient is needed."""
    with torch.enable_grad():
        total, total_sq, shapes, n = _accumulate(chunks, batch, transform, nt_type != "smoothgrad")
        mean = total / n
        if nt_type == "smoothgrad":
            out = mean
        else:
            assert total_sq is not None
            out = total_sq / n if nt_type == "smoothgrad_sq" else total_sq / n - mean.square()
    return unflatten_outputs(out, output_shapes(transform, shapes, out.shape[1]))


def replayable(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """A generator whose state can be replayed: ``generator`` itself, or (None) a fresh one
    seeded from the global RNG."""
    if generator is not None:
        return generator
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator(device=device).manual_seed(seed)


def generator_at(state: Tensor, like: torch.Generator) -> torch.Generator:
    """A new generator on ``like``'s device, set to ``state``."""
    g = torch.Generator(device=like.device)
    g.set_state(state)
    return g


def smoothed_loss_gradient(
    make_chunks: Callable[[torch.Generator, bool], Iterable[tuple[int, Tensors]]],
    generator: torch.Generator,
    batch: int,
    transform: AttributionTransform,
    loss_fn: Callable[[Tensors], Tensor],
    wrt: Sequence[Tensor],
    *,
    single_pass: bool = False,
) -> tuple[Tensor, Tensors]:
    r"""Bounded-memory gradient of ``loss_fn(mean map)`` with respect to ``wrt``.

    Pass 1 computes the mean map ``m = (1/n) sum_t s_t`` without a graph; ``v = d loss / d m``
    is taken on a detached copy; pass 2 replays the same noise (``generator`` reset to its
    starting state) and, chunk by chunk, backpropagates ``<v, (1/n) sum_{t in chunk} s_t>``
    into ``wrt``, freeing each chunk's graph before the next. The result equals
    ``autograd.grad(loss_fn(m).sum(), wrt)`` of the full graph (up to summation order) when
    ``loss_fn`` depends on ``wrt`` only through ``m``.

    Args:
        make_chunks: ``(generator, create_graph) -> chunks`` (a :func:`sample_chunks` call).
        generator: Noise source; its state at the call is replayed in pass 2, and it is left
                    advanced by one pass.
        batch: Examples in the batch.
        transform: Per-sample transform (applied to the flattened outputs).
        loss_fn: Maps the mean map (one tensor per output) to a ``(bsz,)`` or scalar loss.
        wrt: Tensors to differentiate (the inputs, or parameters).
        single_pass: The noise fits in one chunk: keep its graph and differentiate once
                    (same values, no second pass).

    Returns:
        The loss (detached) and one gradient per ``wrt`` tensor (zeros where unused).
    """
    if single_pass:
        with torch.enable_grad():
            maps = smoothed_graph(make_chunks(generator, True), batch, transform)
            loss = loss_fn(maps)
            g = torch.autograd.grad(loss.sum(), list(wrt), allow_unused=True)
        return loss.detach(), tuple(
            torch.zeros_like(w) if gi is None else gi for gi, w in zip(g, wrt)
        )
    start = generator.get_state()
    with torch.no_grad():
        total, _, shapes, n = _accumulate(make_chunks(generator, False), batch, transform, False)
    with torch.enable_grad():
        mean = (total / n).detach().requires_grad_()
        loss = loss_fn(unflatten_outputs(mean, shapes))
        (v,) = torch.autograd.grad(loss.sum(), mean, allow_unused=True)
    grads = [torch.zeros_like(w) for w in wrt]
    if v is None:
        return loss.detach(), tuple(grads)
    v = v / n
    with torch.enable_grad():
        for n_chunk, outs in make_chunks(generator_at(start, generator), True):
            part = flatten_outputs(outs, transform).reshape(batch, n_chunk, -1).sum(dim=1)
            g = torch.autograd.grad((part * v).sum(), list(wrt), allow_unused=True)
            for i, gi in enumerate(g):
                if gi is not None:
                    grads[i] += gi
    return loss.detach(), tuple(grads)
