"""Checkpoints are data: a pickled payload is never run, a checkpoint of another experiment is
refused, it is loaded once, and a killed write leaves no temporary file behind (issue 29)."""

import os
import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_certified.train import AttributionalTrainer, IGNormLoss

MARKER_NAME = "payload-ran"


class _Payload:
    """Unpickling this calls ``open(path, "w")``: the file appears iff the payload runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _trainer(tmp_path, lr=1e-2, checkpoint_dir=None):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(24, 1, 4, 4, generator=g)
    y = x.flatten(1)[:, :3].argmax(1).long()
    loader = DataLoader(
        TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(2)
    )
    loss_fn = IGNormLoss(
        radius=0.1,
        step_num=1,
        step_size=0.05,
        n_steps=2,
        approx_factor=1,
        weight=0.5,
        generator=torch.Generator().manual_seed(3),
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return AttributionalTrainer(
        model,
        loss_fn,
        opt,
        loader,
        loader,
        checkpoint_dir=checkpoint_dir or tmp_path / "ckpt",
        progress=False,
    )


def test_a_malicious_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / MARKER_NAME
    (tmp_path / "ckpt").mkdir()
    torch.save({"epoch": 0, "payload": _Payload(marker)}, tmp_path / "ckpt" / "last.pt")
    trainer = _trainer(tmp_path)
    with pytest.raises(Exception) as raised:
        trainer.fit(epochs=1)
    assert not marker.exists()  # 8d0fcd9: torch.load(weights_only=False) ran the payload
    assert raised.type is ValueError and "not a plain checkpoint" in str(raised.value)


def test_a_raw_pickle_is_not_loaded(tmp_path):
    marker = tmp_path / MARKER_NAME
    (tmp_path / "ckpt").mkdir()
    with open(tmp_path / "ckpt" / "last.pt", "wb") as f:
        pickle.dump({"epoch": 0, "payload": _Payload(marker)}, f, protocol=2)
    with pytest.raises(ValueError, match="not a plain checkpoint"):
        _trainer(tmp_path).fit(epochs=1)
    assert not marker.exists()


def test_a_real_checkpoint_with_a_payload_appended_runs_no_code(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(epochs=1)
    marker = tmp_path / MARKER_NAME
    path = tmp_path / "ckpt" / "last.pt"
    state = torch.load(path, weights_only=True)
    state["extra"] = _Payload(marker)
    torch.save(state, path)
    with pytest.raises(ValueError, match="not a plain checkpoint"):
        _trainer(tmp_path).fit(epochs=2)
    assert not marker.exists()


def test_the_checkpoint_is_loaded_once(tmp_path, monkeypatch):
    _trainer(tmp_path).fit(epochs=1)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    trainer = _trainer(tmp_path)
    assert trainer.resume()
    trainer.fit(epochs=2)
    assert len(calls) == 1 and calls[0]["weights_only"] is True
    assert [h["epoch"] for h in trainer.history] == [1, 2]


def test_a_checkpoint_of_another_experiment_is_refused(tmp_path):
    first = _trainer(tmp_path, lr=1e-2)
    first.fit(epochs=1)
    other = _trainer(tmp_path, lr=5e-2)
    with pytest.raises(ValueError, match="another experiment.*optimizer"):
        other.fit(epochs=2)
    assert other.optimizer.param_groups[0]["lr"] == 5e-2  # not overwritten
    assert other.history == [] and other.epoch == 0


def test_a_killed_checkpoint_write_leaves_no_temporary_file(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(epochs=1)
    folder = tmp_path / "ckpt"
    full = (folder / "last.pt").read_bytes()
    # what a write killed half-way leaves: 8d0fcd9's name, and this version's name
    (folder / f"last.tmp{os.getpid() + 1}").write_bytes(full[: len(full) // 2])
    (folder / ".last.pt.abc123.partial").write_bytes(full[: len(full) // 2])
    resumed = _trainer(tmp_path)
    resumed.fit(epochs=2)
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt"]
    assert resumed.epoch == 2
