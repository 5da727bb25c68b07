"""Does token-ablation smoothing certify token attributions? Measured on the VADER task.

Issue 24, section 2. Each noisy copy keeps k of the d = 16 tokens (the rest [MASK]); the
per-sample map is 1 on the top-K kept tokens by |gradient x embedding| (summed over the
embedding dimension) for the model's predicted class, 0 elsewhere. The conditional map
g_i = E[s_i | i kept] is estimated from n keep-sets (per-coordinate Clopper-Pearson at
alpha = 0.05) and certified with the l0 rule of captum_certified/certify/_core/token_ablation.py
(docs/certificates.rst, "Token ablation"). The unconditional map's certificate is reported too:
it is 0 by construction (q_i <= k/d = the total variation of one changed token).

    PYTHONPATH=. python benchmarks/bench_token_ablation.py            # ~2-4 min, 1 thread
    PYTHONPATH=. python benchmarks/bench_token_ablation.py --quick
"""

from __future__ import annotations

import argparse
import time

import torch

from captum_certified.certify._core.token_ablation import (
    ablation_topk_kept,
    conditional_band,
    conditional_delta,
    unconditional_delta,
)
from captum_certified.text import mask_tokens, sentiment_task, train_text_classifier


def per_sample_maps(model, ids, target, keep, k_top, mask_id, generator):
    """(rows, d) binary maps and (rows, d) kept indicators for the ablated copies of ids."""
    ablated = mask_tokens(ids, keep, mask_id, generator)
    kept = ablated != mask_id
    captured = {}

    def hook(module, args, out):
        out.retain_grad()
        captured["h"] = out

    handle = model.embedding.register_forward_hook(hook)
    try:
        logits = model(ablated)
        logits.gather(1, target[:, None]).sum().backward()
    finally:
        handle.remove()
    h = captured["h"]
    scores = (h.grad * h).sum(-1).abs().detach()
    scores = torch.where(kept, scores, torch.full_like(scores, -1.0))
    top = scores.topk(k_top, dim=1).indices
    maps = torch.zeros_like(scores).scatter_(1, top, 1.0)
    return maps * kept, kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    examples = 20 if args.quick else args.examples
    n = 500 if args.quick else args.samples
    task = sentiment_task()
    d = 16
    ids_all = task.encode(task.test_texts)[:examples]
    print(f"VADER sentiment task, d = {d} tokens, {examples} test sentences, n = {n}, alpha = 0.05")
    print(
        "k keep | acc(clean) acc(ablated) | K | rho | delta_c | unconditional | "
        "certified overlap (mean) | share > 0 | same, no sampling error | most possible (K-rho)/K"
        " | mean sorted g (top K+2)"
    )
    for keep in (4, 8):
        t0 = time.time()
        model = train_text_classifier(task, ablation_keep=keep)
        with torch.no_grad():
            test_ids = task.encode(task.test_texts)
            acc = (model(test_ids).argmax(1) == task.test_labels).float().mean().item()
            g = torch.Generator().manual_seed(1)
            abl = mask_tokens(test_ids, keep, task.tokenizer.mask_token_id, g)
            acc_abl = (model(abl).argmax(1) == task.test_labels).float().mean().item()
        for k_top in (2, 3):
            counts = torch.zeros(examples, d)
            trials = torch.zeros(examples, d)
            g = torch.Generator().manual_seed(0)
            for e in range(examples):
                ids = ids_all[e : e + 1]
                with torch.no_grad():
                    target = model(ids).argmax(1)
                rows = ids.repeat(n, 1)
                maps, kept = per_sample_maps(
                    model, rows, target.repeat(n), keep, k_top, task.tokenizer.mask_token_id, g
                )
                counts[e] = maps.sum(0)
                trials[e] = kept.float().sum(0)
            lower, upper = conditional_band(counts, trials, alpha=0.05)
            estimate = counts / trials.clamp_min(1)
            top_g = estimate.sort(dim=1, descending=True).values[:, : k_top + 2].mean(0)
            for rho in (1, 2):
                delta = conditional_delta(d, keep, rho)
                kept_cert = ablation_topk_kept(lower, upper, k_top, delta, rho).double()
                overlap = kept_cert / k_top
                optimistic = ablation_topk_kept(estimate, estimate, k_top, delta, rho).double()
                print(
                    f"{keep:6d} | {acc:.3f} {acc_abl:.3f} | {k_top} | {rho} | {delta:.3f} | "
                    f"0 (TV {unconditional_delta(d, keep, rho):.3f} >= max q) | "
                    f"{overlap.mean():.3f} | {(kept_cert > 0).double().mean():.2f} | "
                    f"{(optimistic / k_top).mean():.3f} | {(k_top - rho) / k_top:.3f} | "
                    + " ".join(f"{v:.2f}" for v in top_g.tolist())
                )
        print(f"  (k = {keep}: {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
