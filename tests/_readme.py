"""The README's Python blocks and the checks appended to each (tests/test_readme.py runs them
from the checkout, tests/test_wheel.py from the installed wheel)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)

# Checks appended to each block (same order as in the README); each compares the block's
# results with an independent reference where one exists.
CHECKS = [
    # Quickstart: shapes, ranges, monotonicity in the radius, the advertised sample count.
    """
assert attr.shape == x.shape and attr.min() >= 0 and attr.max() <= 1
ov = cert.topk_overlap(k=0.2, radius=0.1)
ov0 = cert.topk_overlap(k=0.2, radius=0.0)
assert ov.shape == (2,) and ((ov >= 0) & (ov <= 1)).all() and (ov0 >= ov).all()
assert cert.n == 512
r = cert.certified_radius(k=0.2, overlap=0.5)
assert (cert.topk_overlap(k=0.2, radius=r * 0.999) >= 0.5).all()
print("CHECKED")
""",
    # CertifiedWrapper: identical to Captum's NoiseTunnel from the same random state.
    """
from captum.attr import NoiseTunnel
torch.manual_seed(0)
ref = NoiseTunnel(IntegratedGradients(model)).attribute(
    x, nt_type="smoothgrad", nt_samples=16, stdevs=0.25, target=3,
    baselines=torch.zeros_like(x), n_steps=8)
assert torch.allclose(sg, ref, rtol=1e-5, atol=1e-7)
assert sg_bin.shape == x.shape and cert_ig.bound == "clopper_pearson"
assert sorted(torch.unique(sg_bin * 64).round().tolist())[0] >= 0
print("CHECKED")
""",
    # Metrics and attacks: the attack stays in the l_inf ball and the box.
    """
assert (x_adv - x01).abs().max() <= 8 / 255 + 1e-6
assert x_adv.min() >= 0 and x_adv.max() <= 1
ti = M.topk_intersection(clean, attacked, k=0.1, protocol="ghorbani")
assert ti.shape == (2,) and ((ti >= 0) & (ti <= 1)).all()
c = M.certified_topk_intersection(cert, k=0.2, radius=0.1)
assert torch.equal(c, cert.topk_overlap(k=0.2, radius=0.1))
print("CHECKED")
""",
]
