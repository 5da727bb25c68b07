"""ResNet-50 and ViT-B/16 at ImageNet shapes, written here from their published architectures.

No torchvision, no downloads: the layers follow the papers (and torchvision's layout, so a
user's checkpoint would load with the same parameter names up to the module prefix).

- ResNet-50: He et al., "Deep residual learning for image recognition", CVPR 2016, Table 1
  (bottleneck blocks [3, 4, 6, 3], widths 64 / 128 / 256 / 512, expansion 4), with the stride
  on the 3x3 convolution ("ResNet v1.5", as torchvision), 3x224x224 -> 1000 classes,
  25.6 M parameters, 4.1 GMAC per image.
- ViT-B/16: Dosovitskiy et al., "An image is worth 16x16 words", ICLR 2021, Table 1 (patch 16,
  width 768, depth 12, 12 heads, MLP 3072, pre-norm, class token, learned position
  embeddings), 3x224x224 -> 1000 classes, 86.6 M parameters, 17.6 GMAC per image.

The weights are random (seeded): the throughput of a forward/backward pass does not depend
on the values of the weights (the same dense kernels run on any numbers; there is no
data-dependent sparsity or early exit in these architectures), so random weights time the
same as trained ones. The ``width`` / ``depth`` / ``image_size`` arguments shrink the models
for the smoke test only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from _harness import init_resnet_weights
from torch import Tensor, nn


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride here) -> 1x1 expand, batch norm, identity or projection."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + identity)


class ResNet50(nn.Module):
    """ResNet-50 (``blocks=(3, 4, 6, 3)``, ``width=64``); smaller values for tests only."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        width: int = 64,
        blocks: tuple[int, int, int, int] = (3, 4, 6, 3),
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages = []
        in_planes = width
        for i, count in enumerate(blocks):
            planes = width * 2**i
            layer = [Bottleneck(in_planes, planes, stride=1 if i == 0 else 2)]
            in_planes = planes * Bottleneck.expansion
            layer += [Bottleneck(in_planes, planes) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(in_planes, num_classes)
        init_resnet_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + MSA(LN(x)), then x + MLP(LN(x)) (GELU)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        qkv = self.qkv(self.ln_1(x)).reshape(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (b, heads, t, d_head)
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    """Vision transformer; the defaults are ViT-B/16 at 224x224."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        image_size: int = 224,
        patch: int = 16,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
    ) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"`image_size` {image_size} is not a multiple of `patch` {patch}")
        self.conv_proj = nn.Conv2d(3, dim, patch, stride=patch)
        tokens = (image_size // patch) ** 2 + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=math.sqrt(1.0 / m.in_features))
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # (b, patches, dim)
        cls = self.class_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embedding
        return self.head(self.ln(self.blocks(x))[:, 0])


def resnet50(tiny: bool = False) -> ResNet50:
    """ResNet-50, or (``tiny``) a width-4, one-block-per-stage version for the smoke test."""
    return ResNet50(width=4, blocks=(1, 1, 1, 1)) if tiny else ResNet50()


def vit_b16(tiny: bool = False) -> ViT:
    """ViT-B/16, or (``tiny``) a 32x32, one-block, width-16 version for the smoke test."""
    if tiny:
        return ViT(image_size=32, patch=16, dim=16, depth=1, heads=2, mlp_dim=32)
    return ViT()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
