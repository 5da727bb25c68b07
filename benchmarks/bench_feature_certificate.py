"""Per-feature certificates (Anani et al. 2025) on the embedded digits CNN.

1. %certified vs l2 radius for several Captum methods (binary top-25 %, n = 100,
   alpha = 0.001, sigma = 0.15 and 0.25: the paper's settings), on correctly classified test
   digits; layer methods are upsampled to the input first.
2. Cost per example: the whole certified attribution (sampling + certificate), and the
   certificate step alone, FeatureCertifier against the top-K certificate
   (GaussianTopKCertifier + a certified-radius query) on the *same* streamed statistics.
3. The certified grid pointing game on 2x2 grids of digits of different classes, with a grid
   model that scores each class by the log-sum-exp of the CNN's logits over the four cells.

    python benchmarks/bench_feature_certificate.py [--examples 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from _harness import best_of
from captum.attr import (
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from torch import nn

from captum_certified.attr import CertifiedWrapper
from captum_certified.certify import FeatureCertifier, GaussianTopKCertifier
from captum_certified.cli import load_digits_split, train_digits_cnn
from captum_certified.metrics import (
    certified_fraction,
    certified_grid_pointing_game,
    make_grid_images,
)
from captum_certified.transforms import Compose, TopKBinarize, Upsample

RADII = torch.tensor([0.0, 0.05, 0.1, 0.15, 0.2, 0.3])


class Recording(FeatureCertifier):
    """FeatureCertifier that also keeps the statistics (to certify them again, timed)."""

    def certify(self, statistics, **kw):
        self.statistics, self.kw = statistics, kw
        return super().certify(statistics, **kw)


class GridModel(nn.Module):
    """A 2x2 grid of 8x8 digits -> class scores: log-sum-exp of the CNN's logits per cell."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = [x[:, :, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] for r in (0, 1) for c in (0, 1)]
        logits = torch.stack([self.cnn(cell) for cell in cells], dim=0)
        return torch.logsumexp(logits, dim=0)


def methods(model: nn.Module, x: torch.Tensor):
    sparse = TopKBinarize(0.25)
    out = {
        "Saliency": (Saliency(model), sparse, {}),
        "InputXGradient": (InputXGradient(model), sparse, {}),
        "IntegratedGradients": (IntegratedGradients(model), sparse, {"n_steps": 8}),
        "GuidedBackprop": (GuidedBackprop(model), sparse, {}),
        "Occlusion": (
            Occlusion(model),
            sparse,
            {"sliding_window_shapes": (1, 2, 2), "strides": (1, 1, 1)},
        ),
    }
    if hasattr(model, "features"):  # the grid model runs its layers once per cell: no layer map
        out["LayerGradCam"] = (
            LayerGradCam(model, model.features[3]),
            Compose(Upsample(to=x), sparse),
            {},
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid-only", action="store_true", help="only the pointing game")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, acc = train_digits_cnn(seed=0)
    for p in model.parameters():
        p.requires_grad_(False)
    _, _, x_test, y_test = load_digits_split(seed=0)
    with torch.no_grad():
        ok = model(x_test).argmax(1) == y_test
    x, y = x_test[ok][: args.examples], y_test[ok][: args.examples]
    n, alpha = args.samples, 0.001
    print(f"digits CNN test accuracy {acc:.3f}; {len(x)} examples, n={n}, alpha={alpha}, K=25%")
    header = "".join(f"{float(r):>7.2f}" for r in RADII)
    if not args.grid_only:
        curves_and_costs(model, x, y, n, alpha, header)
    grid_game(model, x_test, y_test, args.examples, n, alpha, header)


def curves_and_costs(model, x, y, n, alpha, header) -> None:
    print("\n%certified (important or unimportant) vs l2 radius, mean over examples")
    for sigma in (0.15, 0.25):
        print(f"\nsigma={sigma}  method               {header}   imp@0  attr s/ex")
        for name, (method, transform, extra) in methods(model, x).items():
            rec = Recording()
            cw = CertifiedWrapper(method, transform=transform, certifier=rec)
            t0 = time.perf_counter()
            _, cert = cw.attribute(
                x,
                target=y,
                nt_samples=n,
                nt_samples_batch_size=n,
                stdevs=sigma,
                alpha=alpha,
                return_certificate=True,
                generator=torch.Generator().manual_seed(0),
                **extra,
            )
            wall = time.perf_counter() - t0
            curve = certified_fraction(cert, RADII).mean(0)
            imp = certified_fraction(cert, 0.0, side="important").mean()
            row = "".join(f"{100 * float(v):7.1f}" for v in curve)
            print(f"             {name:<20} {row}   {100 * float(imp):5.1f}  {wall / len(x):.4f}")
            if sigma == 0.25 and name in ("Saliency", "LayerGradCam"):
                stats, kw = rec.statistics, rec.kw
                t_feat, _ = best_of(
                    lambda s=stats, k=kw: FeatureCertifier().certify(s, **k).fraction_curve(RADII)
                )
                topk = GaussianTopKCertifier()
                t_topk, _ = best_of(
                    lambda s=stats, k=kw, c=topk: c.certify(s, **k).certified_radius(
                        k=0.25, overlap=0.5
                    )
                )
                print(
                    f"             certificate step alone ({name}): FeatureCertifier "
                    f"{1e3 * t_feat / len(x):.3f} ms/ex (incl. 6-radius curve), top-K "
                    f"{1e3 * t_topk / len(x):.3f} ms/ex (incl. certified_radius)"
                )
    # the same samples through both certifiers, end to end
    print("\nend to end, Saliency, sigma=0.25 (same generator seed = same samples)")
    for label, certifier in (
        ("FeatureCertifier", FeatureCertifier()),
        ("GaussianTopKCertifier", GaussianTopKCertifier()),
    ):
        cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(0.25), certifier=certifier)
        t, _ = best_of(
            lambda cw=cw: cw.attribute(
                x,
                target=y,
                nt_samples=n,
                stdevs=0.25,
                alpha=alpha,
                return_certificate=True,
                generator=torch.Generator().manual_seed(0),
            )
        )
        print(f"  {label:<22} {1e3 * t / len(x):.2f} ms/example")


def grid_game(model, x_test, y_test, examples, n, alpha, header) -> None:
    grids, cells = make_grid_images(
        x_test, y_test, num_grids=examples, generator=torch.Generator().manual_seed(1)
    )
    target_cell = torch.arange(examples) % 4
    target = cells[torch.arange(examples), target_cell]
    grid_model = GridModel(model).eval()
    print(f"\ncertified grid pointing game, {examples} 2x2 grids (16x16), sigma=0.25, K=25%")
    print(f"  method               {header}   (certified-important share in the target cell)")
    for name, (method, transform, extra) in methods(grid_model, grids).items():
        if name == "Occlusion":
            extra = {"sliding_window_shapes": (1, 2, 2), "strides": (1, 2, 2)}
        cw = CertifiedWrapper(method, transform=transform, certifier=FeatureCertifier())
        _, cert = cw.attribute(
            grids,
            target=target,
            nt_samples=n,
            stdevs=0.25,
            alpha=alpha,
            return_certificate=True,
            generator=torch.Generator().manual_seed(0),
            **extra,
        )
        scores = [
            float(
                certified_grid_pointing_game(cert, target_cell, (1, 16, 16), radius=float(r)).mean()
            )
            for r in RADII
        ]
        print(f"  {name:<20} " + "".join(f"{s:7.3f}" for s in scores))


if __name__ == "__main__":
    main()
