"""Tutorial 1: certify an explanation in five lines.

A small CNN trained on scikit-learn's real 8x8 handwritten digits (1797 images, no download;
trained once with a fixed seed and cached) is explained with Sparsified SmoothGrad, and we read
off how much of each explanation's top-K is *certified* to survive any l2 perturbation of the
input of a given size.
"""

import matplotlib.pyplot as plt
import torch

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli import default_digits_model, load_digits_split

# --- the five lines -------------------------------------------------------------------------
model = default_digits_model()  # DigitsCNN in eval mode, 1x8x8 inputs in [0, 1], 10 classes
x, y = (t[:4] for t in load_digits_split()[2:])  # four test digits and their labels
ssg = SparseSmoothGrad(model, sparsity=0.2)  # per noisy sample: 1 on the top 20 % of |grad|
attr, cert = ssg.attribute(x, target=y, nt_samples=2048, stdevs=0.5, return_certificate=True,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
print(cert.overlap_curve(0.2, torch.tensor([0.0, 0.1, 0.2, 0.3])))

# --- what the numbers mean --------------------------------------------------------------------
# `attr` estimates gbar(x) = E[s(x + eps)], eps ~ N(0, 0.5^2 I), where s is the 0/1 map of the
# top-20 % pixels of |grad| at one noisy input. With probability >= 1 - alpha (alpha = 0.05)
# over the 2048 samples, for every radius rho queried, at least the printed fraction of the
# top-K (K = 20 % of the 64 pixels = 12) of gbar(x) stays in the top-K of gbar(x + delta) for
# EVERY delta with ||delta||_2 <= rho. Rows are digits, columns radii. A 0 means "nothing
# certified", never a guess.
print(cert)
print("labels:", y.tolist())
radius_half = cert.certified_radius(0.2, 0.5)
print("largest l2 radius keeping half of the top-K:", [round(r, 3) for r in radius_half.tolist()])

# The radius is in input units: pixels are in [0, 1], so rho = 0.2 is, for example, a change
# of 0.2 / sqrt(64) = 0.025 on every pixel, or of 0.2 on a single pixel.
# The certificate assumes the same absolute sigma at x and x + delta, an eval-mode model (no
# batch statistics) and maps computed independently per example; the user guide lists the
# conditions ("what exactly is certified").

# --- figure: digits, certified maps, certified overlap vs radius -------------------------------
radii = torch.linspace(0, 0.4, 41)
curve = cert.overlap_curve(0.2, radii)
fig = plt.figure(figsize=(11, 4.4))
grid = fig.add_gridspec(2, 6)
for i in range(4):
    top = fig.add_subplot(grid[0, i])
    top.imshow(x[i, 0], cmap="gray")
    top.set_title(f"digit {y[i].item()}")
    bottom = fig.add_subplot(grid[1, i])
    bottom.imshow(attr[i, 0], cmap="viridis", vmin=0, vmax=1)
    bottom.set_title("certified map")
    for ax in (top, bottom):
        ax.set_xticks([])
        ax.set_yticks([])
ax = fig.add_subplot(grid[:, 4:])
for i in range(4):
    ax.step(radii, curve[i], where="post", label=f"digit {y[i].item()}")
ax.set_xlabel("l2 radius of the perturbation")
ax.set_ylabel("certified top-K overlap (K = 12)")
ax.set_ylim(0, 1.02)
ax.legend()
fig.tight_layout()
fig.savefig("t1_certified_maps.png", dpi=90)
plt.close(fig)
