"""What a model offers the measures, and where it keeps it: the model contract.

Each model module declares its `Parts` (a function of the run's config, in the
module that names the layers) and its registry row in `grokjax.models.MODELS`
carries it. The measures, the step's last-layer norm and the local
complexity ask for a part (`Parts.need`); none of them names a layer. A part
a model does not offer is None, and asking for it raises `NotOffered` with
one line naming the model and what it does offer.

Parts (arrays of one member's parameters, `params` as `model.init` returns
them under "params"):
- ``embedding(params) -> [tokens, d]``: the token embedding, a layer of its
  own (Gu et al.'s MED and RQI are about it);
- ``input_vectors(params) -> [rows, d]``: what each token of the first
  operand puts into the network, first operand's tokens first: the
  embedding, or the one-hot MLP's first kernel, whose row t is what that
  layer adds for token t (the Fourier measures read its first p rows);
- ``readout(params) -> [d, n]``: the last layer's weight matrix, whose first
  columns are the logits' (the unembedding; the embedding transposed when
  tied, a column per token);
- ``neurons(model, params, tokens [B, L]) -> [B, width]``: the activations
  of the last MLP layer at the position the answer is read from (Nanda et
  al.'s neurons);
- ``relu_layers(model, params, tokens [B, L]) -> (inputs [B, n], layers)``:
  the first linear layer's input vectors and every (kernel, bias) of a
  network of ReLU layers, readout last (Humayun et al.'s local complexity).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

PARTS = ("embedding", "input_vectors", "readout", "neurons", "relu_layers")


class NotOffered(ValueError):
  """A measure asked a model for a part it does not have."""


@dataclasses.dataclass(frozen=True)
class Parts:
  """A model's parts for one config (see the module doc); None: not offered.

  `model`: how the config names the model, for messages
  (``--model=mlp --mlp_input=onehot``).
  """
  model: str
  embedding: Callable[[Any], jax.Array] | None = None
  input_vectors: Callable[[Any], jax.Array] | None = None
  readout: Callable[[Any], jax.Array] | None = None
  neurons: Callable[[Any, Any, jax.Array], jax.Array] | None = None
  relu_layers: Callable[[Any, Any, jax.Array], tuple[jax.Array, list]] | None = None

  def offered(self) -> tuple[str, ...]:
    return tuple(p for p in PARTS if getattr(self, p) is not None)

  def missing(self, needs: tuple[str, ...]) -> str | None:
    """None when every part in `needs` is offered, else one line saying why not."""
    lacking = [p for p in needs if getattr(self, p) is None]
    if not lacking:
      return None
    return (f"needs the model's {' and '.join(lacking)}, which {self.model} "
            f"does not offer (it offers: {', '.join(self.offered()) or 'none'})")

  def need(self, part: str) -> Callable:
    if part not in PARTS:
      raise ValueError(f"{part!r} is not a model part; parts: {', '.join(PARTS)}")
    why = self.missing((part,))
    if why:
      raise NotOffered(why)
    return getattr(self, part)


def check_parts(parts: Parts, model, params, tokens: jax.Array,
                outputs: int) -> None:
  """Every offered part of `parts` resolves on `params` (abstract shapes
  are enough) with the shapes the module doc promises; ValueError naming
  the model and the part otherwise. The models' registry test runs it for
  every model, so a model whose layer names drift fails there."""
  def bad(part, got, want):
    raise ValueError(f"{parts.model}: its {part} part gives shape {got}, "
                     f"expected {want}")
  shape = lambda f, *a: jax.eval_shape(f, *a).shape
  for part in ("embedding", "input_vectors"):
    if getattr(parts, part) is not None:
      s = shape(getattr(parts, part), params)
      if len(s) != 2:
        bad(part, s, "[tokens, d]")
  if parts.readout is not None:  # tied embeddings: one column per token
    s = shape(parts.readout, params)
    if len(s) != 2 or s[1] < outputs:
      bad("readout", s, f"[d, >= {outputs}]")
  if parts.neurons is not None:
    s = shape(lambda p, t: parts.neurons(model, p, t), params, tokens)
    if len(s) != 2 or s[0] != tokens.shape[0]:
      bad("neurons", s, f"[{tokens.shape[0]}, width]")
  if parts.relu_layers is not None:
    inputs, layers = jax.eval_shape(
        lambda p, t: parts.relu_layers(model, p, t), params, tokens)
    width = inputs.shape[-1]
    for kernel, bias in layers:
      if kernel.shape[0] != width or bias.shape != kernel.shape[1:]:
        bad("relu_layers", kernel.shape, f"[{width}, n] with a bias [n]")
      width = kernel.shape[1]
    if width != outputs:
      bad("relu_layers", width, f"a readout of {outputs} outputs")


__all__ = ["PARTS", "NotOffered", "Parts", "check_parts"]
