"""Local complexity of a ReLU MLP (Humayun, Balestriero & Baraniuk 2024, "Deep networks always grok").

The input space of a ReLU network is cut into linear regions by every
neuron's hyperplane {pre-activation = 0}. The local complexity at a data point
x is the number of those hyperplanes that cross a small neighbourhood of x:
here the cross-polytope with vertices x +- r v_j for k random orthonormal
directions v_j. A neuron of layer l crosses it when its pre-activation takes
both signs over the vertices, each vertex carried exactly through layers
1 .. l - 1. The measure is the mean over data points of the count summed over
hidden layers: it rises while the network memorizes and falls again as it
generalizes (the paper's "delayed robustness"). A network without hidden
ReLU units, or whose units never switch near the data, has zero.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp


def local_complexity(layers: Sequence[tuple[jax.Array, jax.Array]],
                     points_BxN: jax.Array, radius: float, key: jax.Array,
                     num_directions: int | None = None) -> jax.Array:
  """Mean number of hidden ReLU hyperplanes crossing the cross-polytope of radius r at each point.

  layers: (kernel [n_in, n_out], bias [n_out]) of each hidden layer in order
    (the readout, which has no ReLU, is not among them).
  num_directions: k (default: the input dimension, capped at 64).
  """
  n = points_BxN.shape[-1]
  k = min(n, 64) if num_directions is None else min(num_directions, n)
  q, _ = jnp.linalg.qr(jax.random.normal(key, (n, k), jnp.float32))
  offsets = radius * jnp.concatenate([q.T, -q.T], axis=0)  # [2k, n]
  h = points_BxN.astype(jnp.float32)[:, None, :] + offsets[None]
  count = jnp.zeros(points_BxN.shape[0], jnp.float32)
  for kernel, bias in layers:
    pre = jnp.einsum("bvn,nh->bvh", h, kernel.astype(jnp.float32))
    pre = pre + bias.astype(jnp.float32)[None, None, :]
    crosses = jnp.any(pre > 0, axis=1) & jnp.any(pre < 0, axis=1)
    count = count + jnp.sum(crosses, axis=-1)
    h = jax.nn.relu(pre)
  return jnp.mean(count)


def mlp_inputs_and_layers(params: Any, model: Any, tokens_BxL: jax.Array
                          ) -> tuple[jax.Array, list[tuple[jax.Array, jax.Array]]]:
  """The first hidden layer's input vectors and the hidden (kernel, bias) layers of a grokjax MLP.

  The input is [E(x), E(y)] (concat), E(x) + E(y) (sum), E(x) * E(y)
  (product), the one-hot [onehot(x), onehot(y)] (onehot), or the pixel
  vector itself (features: image tasks).
  """
  if model.activation != "relu":
    raise ValueError(f"local complexity needs ReLU units; this MLP uses "
                     f"--activation={model.activation}")
  if model.input == "features":
    inputs = tokens_BxL.astype(jnp.float32)
  elif model.input == "onehot":
    operands = tokens_BxL[:, jnp.array(model.operand_positions)]
    inputs = jax.nn.one_hot(operands, model.num_tokens).reshape(
        operands.shape[0], -1)
  else:
    operands = tokens_BxL[:, jnp.array(model.operand_positions)]
    e = params["embed"]["embedding"][operands]  # [B, P, D]
    inputs = {"sum": lambda: jnp.sum(e, axis=1),
              "product": lambda: jnp.prod(e, axis=1),
              "concat": lambda: e.reshape(e.shape[0], -1)}[model.input]()
  layers = []
  for i in range(len(model.hidden)):
    layer = params[f"hidden_{i}"]
    kernel = layer["kernel"]
    bias = layer.get("bias", jnp.zeros(kernel.shape[-1], kernel.dtype))
    layers.append((kernel, bias))
  return inputs, layers


__all__ = ["local_complexity", "mlp_inputs_and_layers"]
