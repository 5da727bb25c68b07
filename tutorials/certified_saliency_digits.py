"""Certified Sparsified SmoothGrad on real handwritten digits.

We train a small CNN on scikit-learn's 8x8 digits (1797 real images, no download), explain a few
test digits with SparseSmoothGrad, and read off how much of each explanation's top-K is
*certified* to survive any l2 perturbation of a given radius.
"""

import torch
from captum.attr import Saliency

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli import load_digits_split, train_digits_cnn

# --- data and model -------------------------------------------------------------------------
# A two-layer CNN trained for a few seconds with a fixed seed (see captum_certified.cli).
model, accuracy = train_digits_cnn(seed=0)
_, _, x_test, y_test = load_digits_split(seed=0)
print(f"test accuracy: {accuracy:.3f}")

# --- certified explanations -----------------------------------------------------------------
x, y = x_test[:6], y_test[:6]
ssg = SparseSmoothGrad(model, sparsity=0.2)  # top 20 % of |gradient| per noisy sample
attr, cert = ssg.attribute(
    x,
    target=y,
    nt_samples=4096,
    nt_samples_batch_size=512,
    stdevs=0.5,
    return_certificate=True,
    alpha=0.05,
    generator=torch.Generator().manual_seed(0),
)
print(cert)

K = 0.2  # top 20 % of the 64 pixels
radii = torch.tensor([0.0, 0.05, 0.1, 0.2, 0.3])
curve = cert.overlap_curve(K, radii)
print("\ncertified top-K overlap (rows: digits, columns: l2 radius)")
print("radius  " + "  ".join(f"{r:5.2f}" for r in radii.tolist()))
for label, row in zip(y.tolist(), curve):
    print(f"digit {label} " + "  ".join(f"{v:5.2f}" for v in row.tolist()))
print("\nlargest radius keeping half of the top-K:", cert.certified_radius(K, 0.5).numpy().round(3))

# --- compare: the plain gradient is not certified, and small noise already moves it ----------
saliency = Saliency(model)
clean = saliency.attribute(x.clone().requires_grad_(), target=y).reshape(6, -1)
g = torch.Generator().manual_seed(1)
x_noisy = (x + 0.05 * torch.randn(x.shape, generator=g)).requires_grad_()
noisy = saliency.attribute(x_noisy, target=y).reshape(6, -1)
k = int(K * 64)
kept = [
    len(set(clean[i].topk(k).indices.tolist()) & set(noisy[i].topk(k).indices.tolist())) / k
    for i in range(6)
]
print(
    "plain saliency, top-K kept under one random perturbation (l2 ~ 0.4):",
    [round(v, 2) for v in kept],
)
