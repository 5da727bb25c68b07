"""Sequential certification: draw chunks per example until its target is decided."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from captum_certified._utils.validation import check_positive_int
from captum_certified.certify._core.sequence import BettingConfidenceSequence
from captum_certified.certify._core.target import (
    CONTINUE,
    CertificationTarget,
    sequential_decision,
)


def certify_sequentially(
    draw: Callable[[Tensor, int], Tensor],
    build: Callable[[Tensor, Tensor, Tensor, Tensor], object],
    target: CertificationTarget,
    *,
    batch_size: int,
    alpha: float,
    max_samples: int,
    chunk: int,
    binary: bool,
    fill_batch: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""Stream chunks for the examples still undecided; each stops when its target is decided.

    After every chunk the confidence sequence's band gives a certificate (``build``) and the
    swapped band a best case; ``sequential_decision`` says which examples are decided
    (certified or not for the overlap form, the radius known to ``precision`` or not for the
    radius form) and which go on.
    Decided examples leave the batch: ``draw`` is only asked for the others. With
    ``fill_batch``, while fewer than ``batch_size`` remain it is asked for several chunks per
    example at once (up to ``batch_size * chunk`` maps per call, the width of the first call),
    decided one chunk at a time. Chunks drawn after an example's stopping time are discarded
    unread (fresh noise, independent of what decided it): its band and ``samples_used`` count
    only the chunks up to its decision. The band returned for an example is the sequence's
    band at its stopping time, valid at any stopping time (never a fixed-n band).

    Args:
        draw (Callable): ``draw(active, n_chunk)`` returns the ``[0, 1]`` maps of ``n_chunk``
                    fresh noisy samples for the examples ``active`` (int64 indices), shape
                    ``(len(active), n_chunk, d)``.
        build (Callable): ``build(lower, upper, n, index)`` returns a top-K certificate for
                    the band of the examples ``index``.
        target (CertificationTarget): The question asked of each example.
        batch_size (int): Number of examples.
        alpha (float): Failure probability per example.
        max_samples (int): Budget ``N_max`` per example.
        chunk (int): Samples drawn per example and step.
        binary (bool): Maps are {0, 1}-valued.
        fill_batch (bool, optional): Keep the width of ``draw`` calls near
                    ``batch_size * chunk`` as examples finish (fewer, wider model calls: a gain
                    where a call's cost hardly grows with its width, as on a GPU; on a CPU the
                    chunks drawn past a stopping time are wasted work). Default: False

    Returns:
        tuple: ``(lower, upper, samples_used, decision, mean)``: the band of every example at
        its stopping time (float64 ``(bsz, d)``), the samples it used (int64 ``(bsz,)``), its
        decision code (int8: ``CERTIFIED`` 1 or ``CANNOT_CERTIFY`` 2 for the overlap form,
        ``RESOLVED`` 3 or ``UNRESOLVED`` 4 for the radius form) and its mean map (float64
        ``(bsz, d)``).
    """
    if not isinstance(target, CertificationTarget):
        raise TypeError(f"`stop_when` must be a CertificationTarget, got {type(target).__name__}")
    max_samples = check_positive_int(max_samples, "max_samples")
    chunk = min(check_positive_int(chunk, "chunk"), max_samples)
    seq: BettingConfidenceSequence | None = None
    lower = upper = mean = torch.empty(0)
    used = torch.zeros(batch_size, dtype=torch.int64)
    decision = torch.full((batch_size,), CONTINUE, dtype=torch.int8)
    active = torch.arange(batch_size)
    while active.numel():
        drawn = 0 if seq is None else int(seq.n[0])  # every active example has drawn as many
        # fill the forward batch: chunks for several decisions at once while few are active
        steps = 1 if seq is None or not fill_batch else max(1, batch_size // active.numel())
        sizes = [
            size
            for size in (min(chunk, max_samples - drawn - j * chunk) for j in range(steps))
            if size > 0
        ]
        maps = draw(active, sum(sizes))
        rows = torch.arange(active.numel())
        offset = 0
        for size in sizes:
            piece = maps[rows.to(maps.device), offset : offset + size]
            offset += size
            if seq is None:  # the width d is known from the first chunk
                d = piece.shape[-1]
                seq = BettingConfidenceSequence(
                    batch_size, d, alpha=alpha, max_samples=max_samples, binary=binary
                )
                lower = torch.zeros(batch_size, d, dtype=torch.float64)
                upper = torch.ones(batch_size, d, dtype=torch.float64)
                mean = torch.zeros(batch_size, d, dtype=torch.float64)
            codes = _decide(seq, piece, target, build, active, max_samples)
            done = codes != CONTINUE
            if bool(done.any()):
                idx = active[done]
                lo_d, up_d, n_d, mean_d = seq.pop(done)
                lower[idx], upper[idx], used[idx], mean[idx] = lo_d, up_d, n_d, mean_d
                decision[idx] = codes[done]
                active, rows = active[~done], rows[~done]
            if not active.numel():
                break
    assert bool((decision != CONTINUE).all())
    return lower, upper, used, decision, mean


def _decide(
    seq: BettingConfidenceSequence,
    maps: Tensor,
    target: CertificationTarget,
    build: Callable[[Tensor, Tensor, Tensor, Tensor], object],
    active: Tensor,
    max_samples: int,
) -> Tensor:
    """Add one chunk to the sequence and decide each active example (int8 codes)."""
    seq.update(maps)
    lo, up = seq.band()
    projected = None
    if target.futility == "projected":
        p_lo, p_up = seq.projected_band(max_samples, margin=float(target.forecast_margin))
        projected = build(p_lo, p_up, torch.full_like(seq.n, max_samples), active)
    return sequential_decision(
        target,
        build(lo, up, seq.n, active),
        build(up, lo, seq.n, active),
        seq.n,
        max_samples,
        projected,
    )
