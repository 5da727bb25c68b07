"""AttributionalTrainer: training reduces the loss, kill-and-resume gives the same weights."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_certified.train import AttributionalTrainer, IGNormLoss


def _setup(tmp_path, loss_fn=None):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(48, 1, 4, 4, generator=g)
    y = (x.flatten(1)[:, :3].argmax(1)).long()
    loader = DataLoader(
        TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(2)
    )
    if loss_fn is None:
        loss_fn = IGNormLoss(
            radius=0.1,
            step_num=2,
            step_size=0.05,
            n_steps=4,
            approx_factor=2,
            weight=0.5,
            generator=torch.Generator().manual_seed(3),
            reduction="mean",
        )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    trainer = AttributionalTrainer(
        model,
        loss_fn,
        opt,
        loader,
        loader,
        scheduler=sched,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    return trainer, model


class _Killer:
    """Wraps a loss and raises on its n-th call (a simulated kill)."""

    def __init__(self, loss_fn, n):
        self.loss_fn, self.n, self.calls = loss_fn, n, 0

    def __call__(self, model, x, y):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.loss_fn(model, x, y)


def test_kill_and_resume_gives_the_same_weights(tmp_path):
    full, full_model = _setup(tmp_path / "full")
    history = full.fit(epochs=3)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    assert 0 <= history[-1]["accuracy"] <= 1

    killed, _ = _setup(tmp_path / "killed")
    killed.loss_fn = _Killer(killed.loss_fn, 6 + 3)  # 6 batches per epoch: dies in epoch 2
    with pytest.raises(KeyboardInterrupt):
        killed.fit(epochs=3)
    assert killed.epoch == 1

    resumed, resumed_model = _setup(tmp_path / "killed")  # a fresh process
    resumed.fit(epochs=3)
    assert resumed.epoch == 3
    for a, b in zip(full_model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in history]


def test_trainer_argument_errors(tmp_path):
    trainer, model = _setup(tmp_path)
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit(epochs=0)
    with pytest.raises(TypeError, match="model"):
        AttributionalTrainer("net", trainer.loss_fn, trainer.optimizer, [])
    with pytest.raises(TypeError, match="loss_fn"):
        AttributionalTrainer(model, 3, trainer.optimizer, [])
