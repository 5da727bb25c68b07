"""Tutorial 2: attack an explanation and watch the certificate hold.

An attacker looks for a small l2 perturbation of a digit that keeps the model's prediction but
moves the explanation's top-K. We attack two explanations of the same digits with Levine et
al.'s l2 attack (projected normalized-gradient steps on a softplus surrogate of the ReLU
network, step halving until the label holds, restarts):

1. the plain gradient (Captum's ``Saliency``), which has no certificate;
2. Sparsified SmoothGrad, attacked through its Monte-Carlo guide, at the radius where its
   certificate promises that at least half of the top-K stays.
"""

import matplotlib.pyplot as plt
import torch
from captum.attr import Saliency

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli import default_digits_model, load_digits_split
from captum_certified.metrics import topk_intersection
from captum_certified.robust import AttributionL2Attack

model = default_digits_model()
x, y = (t[:4] for t in load_digits_split()[2:])
K, SIGMA, SPARSITY, N = 0.2, 0.5, 0.2, 2048  # K = 12 of the 64 pixels

# --- the certified explanation and its radius -------------------------------------------------
ssg = SparseSmoothGrad(model, sparsity=SPARSITY)
clean_ssg, cert = ssg.attribute(
    x, target=y, nt_samples=N, stdevs=SIGMA, return_certificate=True,
    generator=torch.Generator().manual_seed(0),
)  # fmt: skip
rho = cert.certified_radius(K, 0.5)  # per digit: half of the top-K certified up to rho
print("digits:", y.tolist())
print("attack radius rho (certified overlap 0.5):", [round(r, 3) for r in rho.tolist()])

# --- attack 1: the plain gradient, inside the same l2 balls ------------------------------------
saliency = Saliency(model)
clean_sal = saliency.attribute(x.clone().requires_grad_(), target=y)
attack_sal = AttributionL2Attack(
    model, explainer="saliency", k=K, lower_bound=0.0, upper_bound=1.0, softplus_beta=10.0
)
x_sal = attack_sal.perturb(x, radius=rho, step_num=30, target=y, num_restarts=2,
                           generator=torch.Generator().manual_seed(1))  # fmt: skip
attacked_sal = saliency.attribute(x_sal.clone().requires_grad_(), target=y)
kept_sal = topk_intersection(clean_sal, attacked_sal, k=K, reduce_channels="abs")
print("\nplain gradient, top-K kept after the attack:", [round(v, 2) for v in kept_sal.tolist()])

# --- attack 2: Sparsified SmoothGrad, same radii -------------------------------------------------
attack_ssg = AttributionL2Attack(
    model, explainer="sparse_smoothgrad", k=K, lower_bound=0.0, upper_bound=1.0,
    softplus_beta=10.0,
    explainer_kwargs={"n_guide": 64, "stdevs": SIGMA, "sparsity": SPARSITY},
)  # fmt: skip
x_ssg = attack_ssg.perturb(x, radius=rho, step_num=30, target=y, num_restarts=2,
                           generator=torch.Generator().manual_seed(2))  # fmt: skip
# Re-estimate the attacked map with fresh samples (the certificate is about the expected maps;
# these are estimates of them, so small differences are Monte-Carlo noise).
attacked_ssg = ssg.attribute(
    x_ssg, target=y, nt_samples=N, stdevs=SIGMA, generator=torch.Generator().manual_seed(3)
)
kept_ssg = topk_intersection(clean_ssg, attacked_ssg, k=K)
print("SparseSmoothGrad, top-K kept after the attack:", [round(v, 2) for v in kept_ssg.tolist()])
print("SparseSmoothGrad, certified lower bound:     ", [0.5] * len(y))
norms = (x_ssg - x).flatten(1).norm(dim=1)
print("perturbation norms <= rho:", bool((norms <= rho + 1e-6).all()))
with torch.no_grad():
    print("labels kept:", bool((model(x_ssg).argmax(1) == y).all()))

# Read the printed lines side by side: inside balls where the smoothed map is certified to keep
# at least half of its top-K, the attack removes part of the plain gradient's top-K (on these
# small digits the gradient is fairly stable too, so the loss is partial), while the smoothed map
# keeps at least the certified half (here, more). The certificate is a worst-case guarantee; an
# attack only gives an upper bound on robustness, so the certified value is below what attacks
# reach.
# A certificate can only be tested from the attacker's side; the test suite does this with
# stronger attacks and a statistically sound judge (tests/attr/test_sparse_smoothgrad_attack.py).

# --- figure ---------------------------------------------------------------------------------------
rows = [
    ("gradient", clean_sal.abs()),
    ("gradient, attacked", attacked_sal.abs()),
    ("SparseSmoothGrad", clean_ssg),
    ("SSG, attacked", attacked_ssg),
]
fig, axes = plt.subplots(len(rows), 4, figsize=(7.5, 7.8))
for r, (name, maps) in enumerate(rows):
    for i in range(4):
        axes[r, i].imshow(maps[i, 0].detach(), cmap="viridis")
        axes[r, i].set_xticks([])
        axes[r, i].set_yticks([])
        kept = kept_sal if r < 2 else kept_ssg
        axes[r, i].set_title(name if r % 2 == 0 else f"{name}\nkept {kept[i]:.2f}", fontsize=8)
fig.tight_layout()
fig.savefig("t2_attack_vs_certificate.png", dpi=90)
plt.close(fig)
