"""Tutorial 3: make any Captum method certified with CertifiedWrapper.

``CertifiedWrapper`` smooths any Captum attribution over input noise. With the identity
transform it is Captum's ``NoiseTunnel`` (same numbers from the same random state); with a
per-sample transform into [0, 1] (here: the 0/1 indicator of the top 20 % of the map) it also
returns a certificate for the expected smoothed map. We do this for Integrated Gradients and
for a layer method, Grad-CAM on the second convolution.
"""

import matplotlib.pyplot as plt
import torch
from captum.attr import IntegratedGradients, LayerGradCam, NoiseTunnel

from captum_certified.attr import CertifiedWrapper
from captum_certified.cli import default_digits_model, load_digits_split
from captum_certified.transforms import TopKBinarize

model = default_digits_model()
x, y = (t[:4] for t in load_digits_split()[2:])
baselines = torch.zeros_like(x)

# --- 1. a drop-in NoiseTunnel, with a generator -----------------------------------------------
ig = CertifiedWrapper(IntegratedGradients(model))
smooth_ig = ig.attribute(x, nt_type="smoothgrad", nt_samples=8, stdevs=0.2, target=y,
                         baselines=baselines, n_steps=16,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
torch.manual_seed(0)
captum_ig = NoiseTunnel(IntegratedGradients(model)).attribute(
    x, nt_type="smoothgrad", nt_samples=8, stdevs=0.2, target=y, baselines=baselines, n_steps=16
)
print("same numbers as captum's NoiseTunnel:", torch.allclose(smooth_ig, captum_ig, atol=1e-6))

# --- 2. certified Integrated Gradients --------------------------------------------------------
# The transform makes each noisy sample's map a 0/1 map of its top 20 % of |IG| (TopKBinarize
# ranks the absolute values); the certificate is about E[transform(IG(x + eps))].
cert_ig_map, cert_ig = ig.attribute(
    x, nt_samples=512, nt_samples_batch_size=128, stdevs=0.5, target=y, baselines=baselines,
    n_steps=16, transform=TopKBinarize(0.2), return_certificate=True,
    generator=torch.Generator().manual_seed(1),
)  # fmt: skip
radii = torch.tensor([0.0, 0.05, 0.1, 0.2])
print("\nIntegrated Gradients, certified top-20 % overlap at l2 radii 0, 0.05, 0.1, 0.2:")
print(cert_ig.overlap_curve(0.2, radii))

# --- 3. a layer method: Grad-CAM on the second convolution ------------------------------------
# The noise is added to the input; the map lives on the layer's 8x8 grid. The certificate is
# about that layer map under l2 perturbations of the *input*.
gradcam = CertifiedWrapper(LayerGradCam(model, model.features[2]))
cam_map, cert_cam = gradcam.attribute(
    x, nt_samples=512, nt_samples_batch_size=128, stdevs=0.5, target=y,
    transform=TopKBinarize(0.2), return_certificate=True,
    generator=torch.Generator().manual_seed(2),
)  # fmt: skip
print("\nGrad-CAM map shape:", tuple(cam_map.shape), "| certified top-20 % overlap:")
print(cert_cam.overlap_curve(0.2, radii))
for name, cert in (("IG", cert_ig), ("Grad-CAM", cert_cam)):
    half = cert.certified_radius(0.2, 0.5)
    print(f"radius keeping half of the top-K, {name}:", [round(r, 3) for r in half.tolist()])

# Any Captum method works the same way (Saliency, InputXGradient, DeepLift, GuidedBackprop,
# LayerConductance, ...): pass its own arguments (baselines, n_steps, layer options) to
# attribute() as you would to NoiseTunnel. Only the transform decides what is certified: it
# must map each sample's attribution into [0, 1].

# --- figure ---------------------------------------------------------------------------------
rows = [("input", x), ("SmoothGrad(IG)", smooth_ig.abs()), ("certified IG", cert_ig_map),
        ("certified Grad-CAM", cam_map)]  # fmt: skip
fig, axes = plt.subplots(len(rows), 4, figsize=(7.5, 7.8))
for r, (name, maps) in enumerate(rows):
    for i in range(4):
        axes[r, i].imshow(maps[i, 0].detach(), cmap="gray" if r == 0 else "viridis")
        axes[r, i].set_title(name, fontsize=8)
        axes[r, i].set_xticks([])
        axes[r, i].set_yticks([])
fig.tight_layout()
fig.savefig("t3_any_captum_method.png", dpi=90)
plt.close(fig)
