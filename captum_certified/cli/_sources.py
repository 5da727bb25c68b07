"""Models and data for the command line: the embedded default, factories, files, folders."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import torch
from torch import nn

from captum_certified.cli._config import ConfigError


def load_model(spec: str, seed: int = 0) -> nn.Module:
    """``"digits"`` (the embedded default) or ``"package.module:factory"`` returning a module.

    The module is imported the way ``python -m`` imports: the current folder comes first on
    the search path (for the import and the factory call only), so ``--model tinycnn:factory``
    works from the folder holding ``tinycnn.py`` without setting ``PYTHONPATH``.
    """
    if spec == "digits":
        from captum_certified.cli._digits import default_digits_model

        return default_digits_model(seed=0)
    if ":" not in spec:
        raise ConfigError(f"--model must be 'digits' or 'module:callable', got {spec!r}")
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(
                f"--model {spec!r} cannot be imported: {err} (searched the current folder "
                f"{cwd} first, then the installed packages)"
            ) from err
        model = factory()
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model factory {spec!r} must return a torch.nn.Module")
    return model.eval()


def check_model_named(recorded: str, named: list[str] | None, where: str) -> None:
    """Refuse to import a model that only a run folder names.

    ``attack`` and ``compare`` rebuild the model a run folder's config records; for a
    ``module:callable`` that means importing and calling code. A run folder is data (it may
    come from someone else), so the model must also be named on the command line
    (``--model``); ``digits`` is the embedded model and needs no confirmation.
    """
    if recorded == "digits" or (named and recorded in named):
        return
    if named:
        raise ConfigError(
            f"{where} was made with the model {recorded!r}, not the --model given "
            f"({', '.join(named)})"
        )
    raise ConfigError(
        f"{where} names the model {recorded!r}, code that would be imported and run; a run "
        f"folder is data, so name the model on the command line to run it: --model {recorded}"
    )


def load_data(spec: str, image_size: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples and labels.

    ``"digits"``: the test split of scikit-learn's digits (a seeded random permutation).
    ``"tensors:PATH"``: a file written by ``torch.save`` holding ``(x, y)`` or
    ``{"x": ..., "y": ...}``, used in the order given. ``"imagefolder:DIR"``: one sub-folder
    per class of image files, read with PIL as RGB in [0, 1] (resized to ``image_size`` if
    given, else all images must share one size), in an order drawn with ``seed`` that is
    balanced over classes (each class shuffled, then the classes taken in turn), so the first
    ``n`` examples cover the classes evenly.
    """
    if spec == "digits":
        from captum_certified.cli._digits import load_digits_split

        _, _, x, y = load_digits_split(seed=0)
        return x, y
    kind, _, location = spec.partition(":")
    if kind == "tensors" and location:
        path = Path(location)
        if not path.exists():
            raise ConfigError(f"--data file {path} does not exist")
        obj = torch.load(path, weights_only=True)
        if isinstance(obj, dict):
            obj = (obj.get("x"), obj.get("y"))
        if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
            raise ConfigError("--data tensors file must hold (x, y) or {'x': x, 'y': y}")
        x, y = obj
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or len(x) != len(y):
            raise ConfigError("--data tensors file must hold tensors x and y of equal length")
        x = x.float()
        finite = torch.isfinite(x.reshape(len(x), -1)).all(dim=1) if len(x) else x.new_ones(0)
        if not bool(finite.all()):
            bad = (~finite).nonzero().flatten().tolist()
            raise ConfigError(
                f"--data {path} holds NaN or infinite values in {len(bad)} example(s), the "
                f"first at index {bad[0]}; clean the data before certifying"
            )
        return x, y.long()
    if kind == "imagefolder" and location:
        return _load_image_folder(Path(location), image_size, seed)
    raise ConfigError(f"--data must be 'digits', 'tensors:PATH' or 'imagefolder:DIR', got {spec!r}")


def _load_image_folder(
    root: Path, image_size: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    if not root.is_dir():
        raise ConfigError(f"--data image folder {root} does not exist")
    try:
        from PIL import Image
    except ModuleNotFoundError as err:
        raise ConfigError("imagefolder data needs Pillow: pip install pillow") from err
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}
    files = [
        [f for f in sorted((root / name).iterdir()) if f.suffix.lower() in suffixes]
        for name in classes
    ]
    generator = torch.Generator().manual_seed(seed)
    files = [[c[i] for i in torch.randperm(len(c), generator=generator).tolist()] for c in files]
    order = [
        (label, c[i])
        for i in range(max((len(c) for c in files), default=0))
        for label, c in enumerate(files)
        if i < len(c)
    ]
    images, labels = [], []
    for label, file in order:
        with Image.open(file) as img:
            img = img.convert("RGB")
            if image_size:
                img = img.resize((image_size, image_size))
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            images.append(data.reshape(img.size[1], img.size[0], 3).permute(2, 0, 1))
            labels.append(label)
    if not images:
        raise ConfigError(f"--data image folder {root} holds no images in class sub-folders")
    sizes = sorted({tuple(i.shape[1:]) for i in images})
    if len(sizes) > 1:
        raise ConfigError(
            f"--data images differ in size ({', '.join('x'.join(map(str, s)) for s in sizes[:3])}"
            f"{', ...' if len(sizes) > 3 else ''}): pass --image-size"
        )
    return torch.stack(images).float() / 255.0, torch.tensor(labels)
