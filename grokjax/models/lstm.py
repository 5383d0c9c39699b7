"""An LSTM classifier on token sequences (text): embedding, one LSTM layer, a readout of the final state."""

from __future__ import annotations

import flax.linen as nn
import jax

from grokjax.models.parts import Parts


class LSTMClassifier(nn.Module):
  """Tokens [B, L] -> logits [B, V] from the LSTM's last hidden state.

  The text task left-pads documents and ends each with CLS, so the final
  state has read the whole document.
  """
  vocab_size: int
  num_classes: int
  embed_dim: int = 128
  hidden: int = 128

  @nn.compact
  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens_BxL)
    (_, h_BxH), _ = nn.RNN(nn.OptimizedLSTMCell(self.hidden), return_carry=True,
                          name="lstm")(x)
    return nn.Dense(self.num_classes, name="readout")(h_BxH)


def parts(config, inputs: str) -> Parts:
  """The LSTM's parts (`grokjax.models.parts`): its token embedding `embed`
  and its readout `readout`."""
  del config, inputs
  embedding = lambda params: params["embed"]["embedding"]
  return Parts("--model=lstm", embedding=embedding, input_vectors=embedding,
               readout=lambda params: params["readout"]["kernel"])


__all__ = ["LSTMClassifier", "parts"]
