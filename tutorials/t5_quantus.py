"""Tutorial 5: evaluate certified explanations with Quantus.

Quantus (``pip install quantus``; plain Quantus does not depend on torch, do not install the
``quantus[torch]`` extra over a CPU torch) evaluates explanations through an
``explain_func(model, inputs, targets, **kwargs) -> np.ndarray``.
``captum_certified.interop.quantus_explain_func`` builds one for any of our attribution classes.
We compare the plain gradient with Sparsified SmoothGrad on Quantus's ``MaxSensitivity``
(largest relative change ``||a(x) - a(x')|| / ||a(x)||`` over random perturbations
``x' = x + U(-0.2, 0.2)`` per pixel) and ``LocalLipschitzEstimate`` (largest
``||a(x) - a(x')|| / ||x - x'||`` over Gaussian perturbations).

Without Quantus the script computes the same two quantities with the same explain functions,
so it runs everywhere (the documentation build does not install Quantus).
"""

import matplotlib.pyplot as plt
import numpy as np
from captum.attr import Saliency

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli import default_digits_model, load_digits_split
from captum_certified.interop import quantus_explain_func

try:
    import quantus
except ImportError:
    quantus = None

model = default_digits_model()
x, y = (t[:8] for t in load_digits_split()[2:])
x_np, y_np = x.numpy(), y.numpy()
NR_SAMPLES = 10

explainers = {
    "gradient": quantus_explain_func(Saliency, seed=None, abs=True),
    # seed=0: every call uses the same noise (common random numbers), so the metric measures
    # how the smoothed map moves with the input, not the Monte-Carlo noise between two calls.
    "SparseSmoothGrad": quantus_explain_func(
        SparseSmoothGrad, method_kwargs={"sparsity": 0.2}, seed=0, nt_samples=512, stdevs=0.5
    ),
}


def by_hand(explain, perturb) -> np.ndarray:
    """MaxSensitivity's or the Lipschitz estimate's definition, without Quantus."""
    rng = np.random.default_rng(0)
    a = explain(model, x_np, y_np).reshape(len(x_np), -1)
    worst = np.zeros(len(x_np))
    for _ in range(NR_SAMPLES):
        x_p = perturb(rng).astype(np.float32)
        a_p = explain(model, x_p, y_np).reshape(len(x_np), -1)
        change = np.linalg.norm(a - a_p, axis=1)
        worst = np.maximum(worst, change / perturb.denominator(a, x_p))
    return worst


def uniform(rng):
    return x_np + rng.uniform(-0.2, 0.2, x_np.shape)


def gaussian(rng):
    return x_np + rng.normal(0.0, 0.1, x_np.shape)


uniform.denominator = lambda a, x_p: np.linalg.norm(a, axis=1)
gaussian.denominator = lambda a, x_p: np.linalg.norm((x_p - x_np).reshape(len(x_np), -1), axis=1)

results = {}
if quantus is not None:
    print(f"Quantus {quantus.__version__}")
    np.random.seed(0)  # Quantus draws its perturbations from numpy's global RNG
    for name, explain in explainers.items():
        options = dict(nr_samples=NR_SAMPLES, disable_warnings=True, normalise=False, abs=False)
        call = dict(model=model, x_batch=x_np, y_batch=y_np, explain_func=explain, device="cpu")
        sens = quantus.MaxSensitivity(**options)(**call)
        lips = quantus.LocalLipschitzEstimate(**options)(**call)
        results[name] = (np.asarray(sens), np.asarray(lips))
else:
    print("Quantus is not installed: computing the same metrics with the same explain functions")
    for name, explain in explainers.items():
        results[name] = (by_hand(explain, uniform), by_hand(explain, gaussian))

print(f"\n{'explanation':18s} {'MaxSensitivity':>15s} {'LocalLipschitz':>15s}   (mean over 8)")
for name, (sens, lips) in results.items():
    print(f"{name:18s} {sens.mean():15.3f} {lips.mean():15.3f}")

# Lower is more stable. These are *empirical* scores over a few random perturbations; the
# certificates of tutorial 1 bound the worst case over every perturbation of a given l2 norm.
# The two views agree in direction here: the smoothed, sparsified map moves much less than the
# gradient under the same perturbations.

fig, ax = plt.subplots(figsize=(5, 3.2))
names = list(results)
ax.boxplot([results[n][0] for n in names])
ax.set_xticks(range(1, len(names) + 1), names)
ax.set_ylabel("MaxSensitivity (lower = more stable)")
fig.tight_layout()
fig.savefig("t5_quantus.png", dpi=90)
plt.close(fig)
