"""`torchrun --nproc_per_node=2 -m captum_certified train` trains the same model as 1 process."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["natural", "ssr"])
def test_two_processes_give_the_weights_of_one(tmp_path, loss):
    if not torch.distributed.is_available() or shutil.which("torchrun") is None:
        pytest.skip("torch.distributed / torchrun unavailable")
    args = ["train", "--loss", loss, "--epochs", "1", "--threads", "1", "--no-progress"]
    one = subprocess.run(
        [sys.executable, "-m", "captum_certified", *args, "--out", str(tmp_path / "one")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            "torchrun",
            "--nproc_per_node=2",
            "--standalone",
            "-m",
            "captum_certified",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert two.returncode == 0, two.stderr
    assert two.stdout.count(f"{loss}: 1 epochs") == 1  # only rank 0 reports and writes
    a = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    # 22 Adam steps on the same global batches; only the float order of the gradient
    # all-reduce differs (measured: 2.6e-7 natural, 1.5e-6 SSR, weights of size ~0.4)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-4)
    # and training did move the weights: the comparison is not vacuous
    from captum_certified.cli._train import new_model

    start = new_model("digits", 0).state_dict()
    assert max(float((a[k] - start[k]).abs().max()) for k in a) > 1e-2


def test_global_batch_must_split_evenly(tmp_path):
    from captum_certified.cli._config import ConfigError
    from captum_certified.cli._train import TrainConfig, run_train

    os.environ["WORLD_SIZE"] = "3"  # refused before any process group is joined
    try:
        with pytest.raises(ConfigError, match="divisible"):
            run_train(TrainConfig(loss="natural", epochs=1, batch_size=64, out=str(tmp_path)))
    finally:
        del os.environ["WORLD_SIZE"]
