"""The deep nets: CIFAR ResNets (post-activation "plain" and pre-activation) and a ReLU MLP.

Every model's forward(x, features=True) returns (logits, [block1, ..., block5]): the post-ReLU
activations leaving each of the four stages and the pooled penultimate vector (MLP: its five hidden
layers), the features whose sparsity the paper tracks.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from largestep.config import ConfigError

from deep_nets.flags import MODELS  # noqa: F401  (the names, where the command line lists them)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class PlainBlock(nn.Module):
    """Post-activation basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    """Pre-activation basic block: conv(relu(bn(conv(relu(bn(x)))))) + shortcut(relu(bn(x)))."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def activation(self, x):
        return F.relu(self.bn1(x))

    def forward_from(self, x, act):
        out = self.conv1(act)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + (x if self.shortcut is None else self.shortcut(act))

    def forward(self, x):
        return self.forward_from(x, self.activation(x))


class ResNet(nn.Module):
    """CIFAR ResNet: 3x3 stem of `width` channels, four stages of width, 2, 4, 8 x width (strides 1, 2, 2, 2)."""

    def __init__(self, blocks_per_stage, width: int = 64, num_classes: int = 10, in_channels: int = 3,
                 preact: bool = False):
        super().__init__()
        self.preact = preact
        block = PreActBlock if preact else PlainBlock
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.stem_bn = None if preact else nn.BatchNorm2d(width)
        stages, c_in = [], width
        for k, n in enumerate(blocks_per_stage):
            c_out = width * 2 ** k
            stages.append(nn.Sequential(*[block(c_in if i == 0 else c_out, c_out, 2 if (i == 0 and k > 0) else 1)
                                          for i in range(n)]))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.final_bn = nn.BatchNorm2d(c_in) if preact else None
        self.linear = nn.Linear(c_in, num_classes)

    def forward(self, x, features: bool = False):
        out = self.stem(x)
        blocks = []
        if self.preact:
            # a pre-activation stage's output is not rectified; its ReLU features are the activation that the
            # next stage's first block (or the final BN-ReLU) computes from it
            for k, stage in enumerate(self.stages):
                first = stage[0]
                act = first.activation(out)
                if k > 0 and features:
                    blocks.append(act)
                out = first.forward_from(out, act)
                for b in stage[1:]:
                    out = b(out)
            out = F.relu(self.final_bn(out))
            if features:
                blocks.append(out)
        else:
            out = F.relu(self.stem_bn(out))
            for stage in self.stages:
                out = stage(out)
                if features:
                    blocks.append(out)
        pooled = F.adaptive_avg_pool2d(out, 1).flatten(1)
        logits = self.linear(pooled)
        return (logits, blocks + [pooled]) if features else logits


class MLP(nn.Module):
    """ReLU MLP on flattened inputs: five hidden layers of `width` units (blocks 1-5), then a linear layer."""

    def __init__(self, in_features: int, width: int, num_classes: int, depth: int = 5):
        super().__init__()
        dims = [in_features] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.linear = nn.Linear(width, num_classes)
        for layer in self.hidden:  # He init: PyTorch's default shrinks the signal ~3x per layer, stalling 5 layers
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x, features: bool = False):
        out, blocks = x.flatten(1), []
        for layer in self.hidden:
            out = F.relu(layer(out))
            blocks.append(out)
        logits = self.linear(out)
        return (logits, blocks) if features else logits


def build_model(name: str, width: int, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    if name == "mlp":
        return MLP(int(torch.Size(input_shape).numel()), width, num_classes)
    if len(input_shape) != 3:
        raise ConfigError(f"model {name} needs image inputs (channels, height, width); this data set has "
                         f"inputs of shape {tuple(input_shape)}: use --model=mlp")
    stages = {"resnet18_plain": (2, 2, 2, 2), "resnet18": (2, 2, 2, 2), "resnet34_plain": (3, 4, 6, 3),
              "resnet_tiny": (1, 1, 1, 1)}
    if name not in stages:
        raise ConfigError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return ResNet(stages[name], width, num_classes, input_shape[0], preact=(name == "resnet18"))
