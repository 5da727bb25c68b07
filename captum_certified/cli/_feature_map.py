"""``--certificate feature``: per-feature certificates and their tri-valued heatmap."""

from __future__ import annotations

from pathlib import Path

import torch

from captum_certified.attr import CertifiedWrapper
from captum_certified.certify import FeatureCertifier
from captum_certified.cli._run_folder import check_not_link, save_figure


def certify_features(
    explainer: CertifiedWrapper, x: torch.Tensor, radii: list[float], level: float, **call
) -> tuple[dict, torch.Tensor]:
    """Per-feature certificate of one example; the ``certified`` column is the share of
    features certified (important or unimportant) at each radius, ``radius_at_level`` the
    largest radius at which at least ``level`` of them are."""
    explainer.certifier = FeatureCertifier()
    attr, cert = explainer.attribute(x, **call)
    fractions = [float(cert.fraction_certified(r)[0]) for r in radii]
    radius = cert.feature_radius()[0].sort(descending=True).values
    needed = max(1, int(round(level * cert.num_features)))
    boundary = float(radius[needed - 1])
    # certified strictly below a feature's radius: report one float64 step below it
    at_level = (
        float(torch.nextafter(torch.tensor(boundary), torch.tensor(0.0)))
        if 0 < boundary < float("inf")
        else boundary
    )
    d = cert.num_features
    result = {
        "map": attr.detach(),
        "metric": "fraction_certified",
        "certified": fractions,
        "certified_count": [round(f * d) for f in fractions],
        "k_count": d,
        "radius_at_level": at_level,
    }
    return result, cert.certified_map(radii[0] if radii else 0.0)[0].reshape(attr.shape[1:])


def plot_feature_map(
    x: torch.Tensor, tri: torch.Tensor, path: Path, title: str = ""
) -> Path | None:
    """Write the input next to its tri-valued map (+1 red important, -1 blue unimportant,
    0 white abstain); None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    image = x.detach().float().reshape(x.shape[-3:]).mean(0) if x.dim() >= 3 else x
    heat = tri.float().reshape(tri.shape[-2:]) if tri.dim() == 2 else tri.float().mean(0)
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
    axes[0].imshow(image.detach().cpu().tolist(), cmap="gray")
    axes[0].set_title("input")
    cmap = ListedColormap(["#3b6fb6", "#ffffff", "#c0392b"])
    axes[1].imshow(heat.detach().cpu().tolist(), cmap=cmap, vmin=-1, vmax=1)
    axes[1].set_title(title or "certified map")
    for ax in axes:
        ax.set_axis_off()
    check_not_link(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
    plt.close(fig)
    return path
