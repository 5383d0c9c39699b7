"""Local complexity of a ReLU MLP (Humayun, Balestriero & Baraniuk 2024, "Deep networks always grok").

The input space of a ReLU network is cut into linear regions by every
neuron's hyperplane {pre-activation = 0}. The local complexity at a data point
x is the number of those hyperplanes that cross a small neighbourhood of x:
the cross-polytope with vertices x +- r v_j for random orthonormal directions
v_j. As the official code computes it (AhmedImtiazPrio/grok-adversarial:
`local_complexity.py`, `samplers.py` and `train_mlp_mnist.py`): every vertex
is carried through the network; the units of **every linear layer, the
readout included**, are counted whose output's sign is not the same at all
vertices (`get_intersection_from_activation_batched`: a sign that differs
from the first vertex's); the count is summed over layers and averaged over
the data points; the radius r is absolute (the paper's MNIST runs use 0.05,
0.1, 0.5, 1 and 5 on pixels in [0, 1]; CIFAR-10 0.005) and the neighbourhood
has 50 vertices (25 directions, `hull_n = 50`). It rises while the network
memorizes and falls again as it generalizes (the paper's "delayed
robustness"). A variant scales r by the data's RMS norm
(`radius_scale="data_rms"`, not the paper's).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

from grokjax.settings import check_at_least, check_choice, setting

# The official MNIST configuration's hull_n: vertices of the neighbourhood.
NUM_VERTICES = 50
RADIUS_SCALES = ("absolute", "data_rms")


@dataclasses.dataclass(frozen=True)
class ComplexitySettings:
  """The complexity measure's (Humayun et al. 2024's local complexity)."""
  complexity_points: int = setting(128, "local complexity: input points it "
                                   "is averaged over")
  complexity_radius: float = setting(0.05, "local complexity: radius of the "
                                     "neighbourhood, absolute (Humayun et "
                                     "al. 2024 use 0.05-5 on MNIST pixels "
                                     "in [0, 1])")
  complexity_radius_scale: str = setting(
      "absolute", "local complexity: absolute radius (the paper's) or "
      "data_rms: times the RMS norm of the inputs (a variant)")
  complexity_vertices: int = setting(NUM_VERTICES, "local complexity: "
                                     "vertices of the cross-polytope (2 per "
                                     "direction; the paper's 50)")

  def check(self) -> None:
    check_choice("complexity_radius_scale", self.complexity_radius_scale,
                 RADIUS_SCALES)
    if not self.complexity_radius > 0:
      raise ValueError(f"--complexity_radius={self.complexity_radius}: must "
                       "be > 0")
    if self.complexity_vertices < 2:
      raise ValueError(f"--complexity_vertices={self.complexity_vertices}: "
                       "must be >= 2 (2 per direction)")
    check_at_least(self, 1, "complexity_points")


def local_complexity(layers: Sequence[tuple[jax.Array, jax.Array]],
                     points_BxN: jax.Array, radius: float, key: jax.Array,
                     num_vertices: int = NUM_VERTICES) -> jax.Array:
  """Mean over points of the number of units, over all linear layers, whose sign changes over the neighbourhood.

  layers: (kernel [n_in, n_out], bias [n_out]) of every linear layer in
    order, the readout last; a ReLU follows every layer but the last.
  radius: r, absolute (in the input's units).
  num_vertices: 2 k vertices x +- r v_j for k = num_vertices // 2 random
    orthonormal directions (capped at the input dimension).
  """
  n = points_BxN.shape[-1]
  k = max(1, min(num_vertices // 2, n))
  q, _ = jnp.linalg.qr(jax.random.normal(key, (n, k), jnp.float32))
  offsets = radius * jnp.concatenate([q.T, -q.T], axis=0)  # [2k, n]
  h = points_BxN.astype(jnp.float32)[:, None, :] + offsets[None]
  count = jnp.zeros(points_BxN.shape[0], jnp.float32)
  for i, (kernel, bias) in enumerate(layers):
    pre = jnp.einsum("bvn,nh->bvh", h, kernel.astype(jnp.float32))
    pre = pre + bias.astype(jnp.float32)[None, None, :]
    sign = jnp.sign(pre)
    crosses = jnp.any(sign != sign[:, :1], axis=1)
    count = count + jnp.sum(crosses, axis=-1)
    h = jax.nn.relu(pre) if i < len(layers) - 1 else pre
  return jnp.mean(count)


__all__ = ["NUM_VERTICES", "local_complexity"]
