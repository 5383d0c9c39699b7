"""The extension contract for a model: one new module plus one registry line.

A model whose layers are named unlike any of grokjax's (`tok`, `head`) is
written as a module of its own (its Flax module and its `parts`), registered
with one line, trained by a sweep and measured: the measures find its
embedding and readout through its parts, and one it cannot serve is refused
in one line naming the model.
"""

import importlib.util
import textwrap

import jax
import numpy as np
import pytest

import grokjax as gj
from grokjax.analysis import fourier, measures

TOY_MODULE = textwrap.dedent('''
    """A bilinear model: logits = (E[x] * E[y]) W, its layers named tok and head."""
    import flax.linen as nn

    from grokjax.models.parts import Parts


    class Bilinear(nn.Module):
      num_tokens: int
      num_classes: int
      width: int = 32

      @nn.compact
      def __call__(self, tokens_BxL):
        e = nn.Embed(self.num_tokens, self.width, name="tok")
        h = e(tokens_BxL[:, 0]) * e(tokens_BxL[:, 2])  # x op y =
        return nn.Dense(self.num_classes, use_bias=False, name="head")(h)


    def parts(config, inputs):
      del config, inputs
      tok = lambda params: params["tok"]["embedding"]
      return Parts("--model=bilinear", embedding=tok, input_vectors=tok,
                   readout=lambda params: params["head"]["kernel"])
''')


@pytest.fixture
def bilinear(tmp_path, monkeypatch):
  path = tmp_path / "toy_bilinear.py"
  path.write_text(TOY_MODULE)
  spec = importlib.util.spec_from_file_location("toy_bilinear", path)
  toy = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(toy)
  # The one registry line.
  monkeypatch.setitem(gj.models.MODELS, "bilinear", gj.models.ModelSpec(
      "bilinear", ("table",), "(E[x] * E[y]) W",
      lambda c, task: toy.Bilinear(task.vocab_size, task.num_classes),
      parts=toy.parts))
  return toy


def test_a_new_model_trains_and_is_measured_through_its_parts(bilinear,
                                                             tmp_path):
  config = gj.Config(task="x+y", p=11, model="bilinear", seed=(0, 1),
                     steps=40, eval_every=20, chunk_steps=20,
                     snapshot_count=2, weight_decay=(0.1,))
  workdir = str(tmp_path / "run")
  result = gj.sweep(config, workdir=workdir, log=None)
  # The step's last-layer norm is the norm of its `head` (its readout part):
  # at step 0 it is the initial head's (the record is on the parameters the
  # step starts from).
  first = gj.io.load_snapshot(workdir, 0)
  want = np.linalg.norm(np.asarray(first.params["head"]["kernel"]),
                        axis=(1, 2))
  np.testing.assert_allclose(result.history["step_last_layer_norm"][:, 0],
                             want, rtol=1e-6)
  m = gj.analysis.compute_measures(workdir, ["fourier", "embedding"],
                                   log=None)
  last = gj.io.load_snapshot(workdir, int(m["step"][-1]))
  tok = np.asarray(last.params["tok"]["embedding"])[:, :11]  # [E, p, width]
  np.testing.assert_allclose(
      m["frequency_norms"][:, -1],
      jax.vmap(fourier.frequency_norms)(tok), rtol=1e-6)
  assert np.isfinite(m["med"]).all()
  with pytest.raises(gj.ConfigError, match=(
      r"^--measures=complexity: needs the model's relu_layers, which "
      r"--model=bilinear does not offer \(it offers: embedding, "
      r"input_vectors, readout\); drop it from --measures$")):
    measures.check_measures(["complexity"], config)
