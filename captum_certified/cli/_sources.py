"""Models and data for the command line: the embedded default, factories, files, folders."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from captum_certified.cli._config import ConfigError


def load_model(spec: str, seed: int = 0) -> nn.Module:
    """``"digits"`` (the embedded default) or ``"package.module:factory"`` returning a module."""
    if spec == "digits":
        from captum_certified.cli._digits import default_digits_model

        return default_digits_model(seed=0)
    if ":" not in spec:
        raise ConfigError(f"--model must be 'digits' or 'module:callable', got {spec!r}")
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"--model {spec!r} cannot be imported: {err}") from err
    model = factory()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model factory {spec!r} must return a torch.nn.Module")
    return model.eval()


def load_data(spec: str, image_size: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples and labels.

    ``"digits"``: the test split of scikit-learn's digits. ``"tensors:PATH"``: a file written
    by ``torch.save`` holding ``(x, y)`` or ``{"x": ..., "y": ...}``. ``"imagefolder:DIR"``:
    one sub-folder per class of image files, read with PIL as RGB in [0, 1] (resized to
    ``image_size`` if given, else all images must share one size).
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
        return x.float(), y.long()
    if kind == "imagefolder" and location:
        return _load_image_folder(Path(location), image_size)
    raise ConfigError(f"--data must be 'digits', 'tensors:PATH' or 'imagefolder:DIR', got {spec!r}")


def _load_image_folder(root: Path, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not root.is_dir():
        raise ConfigError(f"--data image folder {root} does not exist")
    try:
        from PIL import Image
    except ModuleNotFoundError as err:
        raise ConfigError("imagefolder data needs Pillow: pip install pillow") from err
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in suffixes:
                continue
            with Image.open(file) as opened:
                img = opened.convert("RGB")
                if image_size:
                    img = img.resize((image_size, image_size))
                data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
                images.append(data.reshape(img.size[1], img.size[0], 3).permute(2, 0, 1))
                labels.append(label)
    if not images:
        raise ConfigError(f"--data image folder {root} holds no images in class sub-folders")
    if len({tuple(i.shape) for i in images}) > 1:
        raise ConfigError("--data images differ in size: pass --image-size")
    return torch.stack(images).float() / 255.0, torch.tensor(labels)
