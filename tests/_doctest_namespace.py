"""The names the package's docstring examples use, for ``pytest --doctest-modules``.

Captum-style examples start from a ``model`` and an input ``x`` they do not build. This
plugin (loaded by the repository's root ``conftest.py``) gives every doctest, fresh for each
docstring:

- ``model``/``net`` (an :class:`ImageClassifier`: conv, ReLU, pooling, 10 classes, any image
  size) with seeded weights, ``saliency = Saliency(model)``;
- ``x``/``images``: four ``(3, 16, 16)`` images in ``[0, 1]``, ``y``/``labels`` = 0, 1, 2, 3;
  ``x_adv`` (``x`` moved by at most 0.03 per pixel), ``x_other``/``y_other`` (``x``, ``y``
  reversed), ``attr``/``attr_perturbed`` (saliency maps of ``x`` and ``x_adv`` for ``y``);
- training: ``optimizer`` (SGD on ``model``), ``train_loader``/``val_loader`` (one batch);
- per module, the objects the class example builds and the method examples continue from
  (``cert``, ``usa``, ``ssg``), see :data:`MODULE_NAMES`.

Each doctest runs in a temporary directory, single-threaded, with the global torch RNG seeded
to 0 and restored afterwards, so the printed outputs are reproducible. Examples of optional
dependencies that are not installed (quantus) are skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from _pytest.doctest import DoctestItem
from torch import nn

from captum_certified.noise import LaplaceNoise, UniformBallNoise, UniformCubeNoise

#: modules whose examples need an optional package: skipped when it is missing
NEEDS = {"captum_certified.interop._core.quantus_adapter": "quantus"}

#: docstrings whose examples print a value without stating it (rdp.py and rdp_topk.py are being
#: split in issue 11): remove an entry once its example states its output
NOT_YET: set[str] = set()


class ImageClassifier(nn.Module):
    """A small CNN for ``(N, 3, H, W)`` images: conv, ReLU, 4 x 4 average pooling, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def _base() -> dict[str, Any]:
    from captum.attr import Saliency

    g = torch.Generator().manual_seed(1234)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = ImageClassifier().eval()
    x = torch.rand(4, 3, 16, 16, generator=g)
    y = torch.arange(4)
    x_adv = (x + 0.03 * (2 * torch.rand(x.shape, generator=g) - 1)).clamp(0, 1)
    saliency = Saliency(model)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    return {
        "torch": torch,
        "nn": nn,
        "ImageClassifier": ImageClassifier,
        "model": model,
        "net": model,
        "layer": model.conv,
        "x": x,
        "y": y,
        "images": x,
        "labels": y,
        "x_adv": x_adv,
        "x_other": x.flip(0),
        "y_other": y.flip(0),
        "saliency": saliency,
        "attr": saliency.attribute(x, target=y),
        "attr_perturbed": saliency.attribute(x_adv, target=y),
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.01),
        "train_loader": loader,
        "val_loader": loader,
    }


def _certify(explainer: Any, ns: dict[str, Any], **kwargs: Any) -> tuple[Any, Any]:
    """``explainer.attribute(x, ..., return_certificate=True)`` with a generator seeded to 0."""
    generator = torch.Generator().manual_seed(0)
    return explainer.attribute(ns["x"], return_certificate=True, generator=generator, **kwargs)


def _gaussian(ns: dict[str, Any]) -> dict[str, Any]:
    from captum_certified.attr import SparseSmoothGrad

    ssg = SparseSmoothGrad(ns["model"], sparsity=0.1)
    _, cert = _certify(ssg, ns, target=3, nt_samples=1024, stdevs=0.25, alpha=0.05)
    return {"ssg": ssg, "cert": cert}


def _renyi(ns: dict[str, Any]) -> dict[str, Any]:
    from captum_certified.attr import RenyiRobustSmooth

    rrs = RenyiRobustSmooth(ns["model"], sparsity=0.1)
    kwargs = {"nt_samples": 128, "noise": LaplaceNoise(), "noise_scale": 0.5, "alpha": 0.05}
    _, cert = _certify(rrs, ns, target=ns["y"], **kwargs)
    return {"rrs": rrs, "cert": cert}


def _uniform(ns: dict[str, Any]) -> dict[str, Any]:
    from captum_certified.attr import UniformSmoothedAttribution

    usa = UniformSmoothedAttribution(ns["model"])
    kwargs = {"nt_samples": 2048, "noise_scale": 2.0, "noise": UniformBallNoise(), "alpha": 0.05}
    _, cert = _certify(usa, ns, target=ns["y"], **kwargs)
    return {"usa": usa, "cert": cert}


def _cube(ns: dict[str, Any]) -> dict[str, Any]:
    from captum.attr import Saliency

    from captum_certified.attr import CertifiedWrapper
    from captum_certified.certify import CubeTopKCertifier
    from captum_certified.transforms import TopKBinarize

    cw = CertifiedWrapper(
        Saliency(ns["model"]),
        noise=UniformCubeNoise(),
        transform=TopKBinarize(0.1),
        certifier=CubeTopKCertifier(),
    )
    _, cert = _certify(cw, ns, target=0, nt_samples=256, noise_scale=0.5)
    return {"cert": cert}


def _feature(ns: dict[str, Any]) -> dict[str, Any]:
    from captum.attr import Saliency

    from captum_certified.attr import CertifiedWrapper
    from captum_certified.certify import FeatureCertifier
    from captum_certified.transforms import TopKBinarize

    cw = CertifiedWrapper(
        Saliency(ns["model"]), transform=TopKBinarize(0.25), certifier=FeatureCertifier()
    )
    attr, cert = _certify(cw, ns, target=ns["y"], nt_samples=100, stdevs=0.25, alpha=0.001)
    return {"attr": attr, "cert": cert}


#: per module: builders of the names its method examples take from its class example
MODULE_NAMES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "captum_certified.attr._core.uniform_smoothed": _uniform,
    "captum_certified.certify._core.cosine_certificate": _uniform,
    "captum_certified.certify._core.cosine_certifier": _uniform,
    "captum_certified.certify._core.gaussian_certificate": _gaussian,
    "captum_certified.certify._core.gaussian_certifier": _gaussian,
    "captum_certified.certify._core.rdp_certificate": _renyi,
    "captum_certified.certify._core.cube_certificate": _cube,
    "captum_certified.certify._core.cube_certifier": _cube,
    "captum_certified.certify._core.feature_certificate": _feature,
    "captum_certified.certify._core.feature_certifier": _feature,
    "captum_certified.metrics._core.certified": lambda ns: {**_gaussian(ns), **_uniform(ns)},
    "captum_certified.metrics._core.certified_fraction": _feature,
}


@pytest.fixture(autouse=True)
def _doctest_setting(
    request: pytest.FixtureRequest,
    doctest_namespace: dict[str, Any],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Fresh names, a temporary directory, one thread and a seeded global RNG per doctest."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    module = request.node.dtest.globs["__name__"]
    if request.node.dtest.name in NOT_YET:
        pytest.skip("the example states no output yet (its module is being split, issue 11)")
    if module in NEEDS and importlib.util.find_spec(NEEDS[module]) is None:
        pytest.skip(f"{module}: its example needs {NEEDS[module]}, which is not installed")
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            names = _base()
            if module in MODULE_NAMES:
                names.update(MODULE_NAMES[module](names))
            doctest_namespace.update(names)
            torch.manual_seed(0)
            yield
    finally:
        for name in names:
            doctest_namespace.pop(name, None)
        torch.set_num_threads(threads)
