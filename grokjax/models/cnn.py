"""Convolutional models for the image tasks: a small CNN and a ResNet-18 without BatchNorm.

Both take the task's flat pixel vectors [B, H * W * C] and reshape them to
images [B, H, W, C] (`image_shape`). Neither keeps batch statistics, so
training stays a pure function of the parameters (a member's step is one
`apply`), as the vmapped sweep needs: the ResNet's normalization is
``none`` (plain residual blocks; Gu et al. 2025 train ResNet-18 to grok) or
``group`` (GroupNorm, 8 groups), never BatchNorm.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax.models.parts import Parts
from grokjax.settings import check_choice, setting


RESNET_NORMS = ("none", "group")


@dataclasses.dataclass(frozen=True)
class CNNSettings:
  """--model=cnn."""
  cnn_channels: tuple = setting((32, 64), "--model=cnn: widths of its 3x3 "
                                "conv layers (each followed by 2x2 average "
                                "pooling)", kind="int_list")

  def check(self) -> None:
    if any(ch < 1 for ch in self.cnn_channels):
      raise ValueError(f"--cnn_channels={self.cnn_channels}: must be "
                       "positive")


@dataclasses.dataclass(frozen=True)
class ResNetSettings:
  """--model=resnet18."""
  resnet_norm: str = setting("none", "--model=resnet18: " + " or ".join(
      RESNET_NORMS) + " (GroupNorm); never BatchNorm")
  resnet_width: float = setting(1.0, "--model=resnet18: width multiplier of "
                                "64-128-256-512")

  def check(self) -> None:
    check_choice("resnet_norm", self.resnet_norm, RESNET_NORMS)
    if self.resnet_width <= 0:
      raise ValueError(f"--resnet_width={self.resnet_width}: must be "
                       "positive")


class CNN(nn.Module):
  """Conv 3x3 + ReLU + 2x2 average pooling per width, then a linear readout."""
  image_shape: tuple[int, int, int]
  num_classes: int
  channels: Sequence[int] = (32, 64)

  @nn.compact
  def __call__(self, x_BxD: jax.Array) -> jax.Array:
    x = x_BxD.reshape((x_BxD.shape[0],) + tuple(self.image_shape))
    for i, width in enumerate(self.channels):
      x = nn.relu(nn.Conv(width, (3, 3), name=f"conv_{i}")(x))
      if min(x.shape[1:3]) >= 2:
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(self.num_classes, name="readout")(x)


class BasicBlock(nn.Module):
  width: int
  stride: int
  norm: str

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    norm = ((lambda name: nn.GroupNorm(num_groups=8, name=name))
            if self.norm == "group" else (lambda name: lambda h: h))
    h = nn.Conv(self.width, (3, 3), strides=self.stride, use_bias=False,
                name="conv_1")(x)
    h = nn.relu(norm("norm_1")(h))
    h = nn.Conv(self.width, (3, 3), use_bias=False, name="conv_2")(h)
    h = norm("norm_2")(h)
    if self.stride != 1 or x.shape[-1] != self.width:
      x = nn.Conv(self.width, (1, 1), strides=self.stride, use_bias=False,
                  name="shortcut")(x)
    return nn.relu(x + h)


class ResNet18(nn.Module):
  """ResNet-18 (4 stages of 2 basic blocks, widths 64-512 times `width_factor`), no BatchNorm.

  The stem is a 3x3 convolution without pooling (small images: 8x8 digits,
  28x28 MNIST); stages 2-4 halve the resolution while it is >= 2.
  """
  image_shape: tuple[int, int, int]
  num_classes: int
  norm: str = "none"
  width_factor: float = 1.0

  @nn.compact
  def __call__(self, x_BxD: jax.Array) -> jax.Array:
    x = x_BxD.reshape((x_BxD.shape[0],) + tuple(self.image_shape))
    base = max(8, int(64 * self.width_factor))
    x = nn.relu(nn.Conv(base, (3, 3), use_bias=False, name="stem")(x))
    for stage in range(4):
      for block in range(2):
        stride = 2 if stage > 0 and block == 0 and min(x.shape[1:3]) >= 2 else 1
        x = BasicBlock(base * 2 ** stage, stride, self.norm,
                       name=f"stage_{stage}_block_{block}")(x)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="readout")(x)


def parts(config, inputs: str) -> Parts:
  """The CNN's and the ResNet's parts (`grokjax.models.parts`): the readout
  `readout` (pixels in: no embedding)."""
  del inputs
  return Parts(f"--model={config.model}",
               readout=lambda params: params["readout"]["kernel"])


__all__ = ["CNN", "ResNet18", "BasicBlock", "parts", "CNNSettings",
           "ResNetSettings", "RESNET_NORMS"]
