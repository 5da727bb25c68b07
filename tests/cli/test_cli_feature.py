"""``captum-certified certify --certificate feature``: per-pixel certificates and heatmaps."""

import torch

from captum_certified.attr import SparseSmoothGrad
from captum_certified.certify import FeatureCertifier
from captum_certified.cli import default_digits_model, load_digits_split, main
from captum_certified.cli._results import parse_rows


def test_feature_certificate_run_matches_the_api(tmp_path, cache_dir):
    out = tmp_path / "run"
    args = ["certify", "--certificate", "feature", "--out", str(out), "--n-examples", "2"]
    args += ["--nt-samples", "100", "--nt-samples-batch-size", "50", "--noise-scale", "0.25"]
    args += ["--sparsity", "0.25", "--alpha", "0.001", "--radii", "0", "0.1", "--no-progress"]
    assert main(args) == 0
    rows = parse_rows((out / "results.tsv").read_text())
    model = default_digits_model()
    _, _, x, y = load_digits_split()
    for index in range(2):
        ssg = SparseSmoothGrad(model, sparsity=0.25)
        ssg.certifier = FeatureCertifier()
        _, cert = ssg.attribute(
            x[index : index + 1],
            target=int(y[index]),
            nt_samples=100,
            nt_samples_batch_size=50,
            stdevs=0.25,
            alpha=0.001,
            return_certificate=True,
            generator=torch.Generator().manual_seed(index),
        )
        got = [r for r in rows if r["index"] == index]
        assert [r["certified"] for r in got] == [
            float(cert.fraction_certified(r)[0]) for r in (0.0, 0.1)
        ]
        assert got[0]["metric"] == "fraction_certified" and got[0]["k_count"] == 64
        # at the reported radius at least half of the pixels are certified
        at = got[0]["radius_at_level"]
        assert at > 0 and float(cert.fraction_certified(at)[0]) >= 0.5
        png = out / "feature_maps" / f"example-{index:05d}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_feature_certificate_needs_sparse_smoothgrad(tmp_path, capsys):
    args = ["certify", "--certificate", "feature", "--method", "renyi"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "--certificate" in capsys.readouterr().err
