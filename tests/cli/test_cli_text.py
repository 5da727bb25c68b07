"""The command line on text: a module:factory returning (model, tokenizer) and a text file."""

import pytest
import torch
from captum.attr import Saliency

from captum_certified.attr import CertifiedWrapper
from captum_certified.attr._core.layer_noise import to_layer_space
from captum_certified.cli import main
from captum_certified.cli._results import parse_rows
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize

FACTORY = """
import torch
from captum_certified.text import TokenTransformerClassifier, WordTokenizer

def factory():
    torch.manual_seed(0)
    tokenizer = WordTokenizer(["good", "great", "bad", "awful", "the", "movie", "was", "plot"])
    return TokenTransformerClassifier(len(tokenizer)).eval(), tokenizer

def no_tokenizer():
    return factory()[0]
"""

LINES = "1\tthe movie was good and great\n0\tthe plot was awful\nthe movie was bad\n"
ARGS = ["--nt-samples", "64", "--noise-scale", "0.1", "--sparsity", "2", "--k", "2"]


@pytest.fixture
def text_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text_models.py").write_text(FACTORY)
    (tmp_path / "reviews.txt").write_text(LINES)
    return tmp_path


def test_certify_a_text_file_through_a_factory(text_run):
    out = text_run / "run"
    args = ["certify", "--model", "text_models:factory", "--data", "text:reviews.txt"]
    code = main([*args, "--out", str(out), "--radii", "0", "0.05", "--no-progress", *ARGS])
    assert code == 0
    rows = parse_rows((out / "results.tsv").read_text())
    assert sorted({r["index"] for r in rows}) == [0, 1, 2]
    # the same numbers through the API: noise at the embedding, per-token top-2, the CLI's seed
    import text_models

    model, tokenizer = text_models.factory()
    ids = tokenizer([line.split("\t")[-1] for line in LINES.splitlines()])
    for index in range(3):
        x = ids[index : index + 1]
        with torch.no_grad():
            predicted = int(model(x).argmax(1))
        label = [1, 0, predicted][index]  # an unlabelled line explains the prediction
        call = to_layer_space(Saliency(model), model.embedding, (x,), {"target": label})
        cw = CertifiedWrapper(call.method, transform=Compose(TokenReduce("l2"), TopKBinarize(2)))
        g = torch.Generator().manual_seed(0 * 1_000_003 + index)
        _, cert = cw.attribute(
            call.inputs[0],
            nt_samples=64,
            stdevs=0.1,
            return_certificate=True,
            generator=g,
            **call.kwargs,
        )
        mine = [r for r in rows if r["index"] == index]
        assert [r["label"] for r in mine] == [label, label]
        for r in mine:
            assert r["certified"] == pytest.approx(float(cert.topk_overlap(2, r["radius"])[0]))


@pytest.mark.parametrize(
    "model, data, lines, message",
    [
        ("text_models:no_tokenizer", "text:reviews.txt", None, "needs a tokenizer"),
        ("text_models:factory", "text:missing.txt", None, "does not exist"),
        ("text_models:factory", "text:reviews.txt", "x\tthe movie\n", "must be an integer"),
        ("text_models:factory", "text:reviews.txt", "\n\n", "holds no lines"),
    ],
)
def test_text_errors_name_the_option(text_run, capsys, model, data, lines, message):
    if lines is not None:
        (text_run / "reviews.txt").write_text(lines)
    args = ["certify", "--model", model, "--data", data, "--out", str(text_run / "o"), *ARGS]
    assert main([*args, "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_text_with_another_method_is_refused(text_run, capsys):
    args = ["certify", "--model", "text_models:factory", "--data", "text:reviews.txt"]
    code = main([*args, "--method", "renyi", "--noise", "laplace", "--out", "o", *ARGS])
    assert code == 2
    assert "token ids supports --method sparse_smoothgrad" in capsys.readouterr().err
