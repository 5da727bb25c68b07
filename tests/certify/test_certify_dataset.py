"""certify_dataset: 2 gloo ranks give bit-identical results to one process; resumable (issue 25)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from captum_certified.attr import SparseSmoothGrad
from captum_certified.certify import certify_dataset

N_EXAMPLES = 5
KWARGS = dict(nt_samples=24, nt_samples_batch_size=8, stdevs=0.3)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4))


def _data():
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(N_EXAMPLES, 1, 4, 4, generator=gen)
    y = torch.randint(4, (N_EXAMPLES,), generator=gen)
    return torch.utils.data.TensorDataset(x, y)


class Recording:
    """SparseSmoothGrad that logs which examples this process computed."""

    def __init__(self, model: nn.Module, sparsity: int) -> None:
        self.ssg = SparseSmoothGrad(model, sparsity=sparsity)
        self.log: Path | None = None

    def attribute(self, inputs, *args, **kwargs):
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(f"{float(inputs.sum()):.6f}\n")
        return self.ssg.attribute(inputs, *args, **kwargs)


def _summary(result):
    attr, cert = result
    return {"attr": attr, "overlap": cert.topk_overlap(k=4, radius=0.05)}


def _worker(rank: int, world: int, init_file: str, out: str, logs: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        method = Recording(_model(), sparsity=4)
        method.log = Path(logs) / f"rank-{rank}.txt"
        got = certify_dataset(method, _data(), out, seed=7, summarize=_summary, **KWARGS)
        assert (got is None) == (rank != 0)
    finally:
        dist.destroy_process_group()


def _single(out: Path, log: Path | None = None):
    method = Recording(_model(), sparsity=4)
    method.log = log
    return certify_dataset(method, _data(), out, seed=7, summarize=_summary, **KWARGS)


def _assert_identical(a, b):
    assert len(a) == len(b) == N_EXAMPLES
    for ra, rb in zip(a, b):
        assert torch.equal(ra["attr"], rb["attr"])
        assert torch.equal(ra["overlap"], rb["overlap"])


@pytest.mark.skipif(
    "fork" not in mp.get_all_start_methods(), reason="the 2 ranks are forked (Linux)"
)
def test_two_ranks_give_the_results_of_one_process(tmp_path):
    assert not dist.is_initialized()
    one = _single(tmp_path / "one")
    # different examples really got different noise (so the comparison below has teeth)
    assert not torch.equal(one[0]["attr"], one[1]["attr"])
    logs = tmp_path / "logs"
    logs.mkdir()
    # fork: the ranks inherit the imported modules (spawn re-imports torch and captum in each
    # rank, a minute on a busy 2-core machine); each rank runs single-threaded
    mp.start_processes(
        _worker,
        args=(2, str(tmp_path / "init"), str(tmp_path / "two"), str(logs)),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    files = sorted((tmp_path / "two" / "examples").glob("*.pt"))
    assert [f.name for f in files] == [f"{i}.pt" for i in range(N_EXAMPLES)]
    two = [torch.load(tmp_path / "two" / "examples" / f"{i}.pt") for i in range(N_EXAMPLES)]
    _assert_identical(one, two)
    # each rank computed its own share: 3 examples on rank 0 (0, 2, 4), 2 on rank 1
    counts = [len((logs / f"rank-{r}.txt").read_text().splitlines()) for r in (0, 1)]
    assert counts == [3, 2]
    # the same seed on another example index gives other noise: results are per example
    other = certify_dataset(
        SparseSmoothGrad(_model(), sparsity=4),
        _data(),
        tmp_path / "seed8",
        seed=8,
        summarize=_summary,
        **KWARGS,
    )
    assert not torch.equal(other[0]["attr"], one[0]["attr"])


def test_an_interrupted_run_resumes_with_identical_results(tmp_path):
    full = _single(tmp_path / "full")
    out = tmp_path / "run"
    log = tmp_path / "log.txt"
    first = _single(out, log)
    _assert_identical(full, first)
    # simulate an interruption: two examples were not written
    os.remove(out / "examples" / "1.pt")
    os.remove(out / "examples" / "3.pt")
    log.unlink()
    resumed = _single(out, log)
    assert len(log.read_text().splitlines()) == 2  # only the missing ones were computed
    _assert_identical(full, resumed)


def test_another_configuration_in_the_same_folder_is_refused(tmp_path):
    _single(tmp_path / "run")
    with pytest.raises(ValueError, match=r"another configuration.*nt_samples|attribute_kwargs"):
        certify_dataset(
            SparseSmoothGrad(_model(), sparsity=4),
            _data(),
            tmp_path / "run",
            seed=7,
            summarize=_summary,
            nt_samples=25,
            stdevs=0.3,
        )


def test_bad_arguments_are_refused_naming_them(tmp_path):
    ssg = SparseSmoothGrad(_model(), sparsity=4)
    with pytest.raises(TypeError, match="`method`"):
        certify_dataset(object(), _data(), tmp_path)
    with pytest.raises(TypeError, match="`data`"):
        certify_dataset(ssg, 3, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`seed`"):
        certify_dataset(ssg, _data(), tmp_path, seed=-1)
    with pytest.raises(ValueError, match="`generator`"):
        certify_dataset(ssg, _data(), tmp_path, generator=torch.Generator())
