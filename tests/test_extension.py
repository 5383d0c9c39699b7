"""The extension contract: a task, a model, a regularizer or a measure is one
new module plus one registry line.

A model whose layers are named unlike any of grokjax's (`tok`, `head`) is
written as a module of its own (its Flax module and its `parts`), registered
with one line, trained by a sweep and measured: the measures find its
embedding and readout through its parts, and one it cannot serve is refused
in one line naming the model. Then a toy task ((x*y + x) mod p), a toy
regularizer (the embedding's update zeroed after the step) and a toy measure
(the embedding's Frobenius norm), each a module of its own registered with
one line (`tasks.FAMILIES`, `optim.chain.TRANSFORMS`,
`analysis.measures.REGISTRY`), are swept and analyzed together; each reads
only the settings its row declares (`grokjax.settings`).
"""

import importlib.util
import os
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


TOY_TASK = textwrap.dedent('''
    """(x*y + x) mod p: a table task of its own."""
    import numpy as np

    from grokjax.tasks.base import table_task


    def check(settings):
      if settings.p < 2:
        raise ValueError(f"--p={settings.p}: must be >= 2")


    def build(settings):
      p = settings.p
      x, y = np.divmod(np.arange(p * p), p)
      return table_task(settings.task, x, y, (x * y + x) % p, p,
                        op_token=settings.op_token,
                        symmetric=settings.symmetric, commutative=False)
''')

TOY_REGULARIZER = textwrap.dedent('''
    """Freezes the embedding: its update is zeroed after the step."""
    import jax
    import optax


    def is_embedding(params):
      return jax.tree_util.tree_map_with_path(
          lambda path, _: path[0].key == "embed", params)


    def freeze_embedding():
      return optax.masked(optax.set_to_zero(), is_embedding)
''')

TOY_MEASURE = textwrap.dedent('''
    """The Frobenius norm of the model's embedding (its embedding part)."""
    import jax.numpy as jnp


    def embed_norm(ctx, params, final, rows, prepared, key):
      del final, rows, prepared, key
      return {"embed_norm": jnp.linalg.norm(
          ctx.parts.need("embedding")(params))}
''')


def _load(tmp_path, name: str, text: str):
  path = tmp_path / f"{name}.py"
  path.write_text(text)
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture
def bilinear(tmp_path, monkeypatch):
  toy = _load(tmp_path, "toy_bilinear", TOY_MODULE)
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


@pytest.fixture
def toys(tmp_path, monkeypatch):
  task = _load(tmp_path, "toy_task", TOY_TASK)
  regularizer = _load(tmp_path, "toy_regularizer", TOY_REGULARIZER)
  measure = _load(tmp_path, "toy_measure", TOY_MEASURE)
  # The three registry lines.
  monkeypatch.setattr(gj.tasks, "FAMILIES", gj.tasks.FAMILIES + (
      gj.tasks.TaskFamily("toy", ("x*y+x",), lambda n: n == "x*y+x",
                          "table", "classification", task.check,
                          task.build),))
  monkeypatch.setattr(gj.optim.chain, "TRANSFORMS", gj.optim.chain.TRANSFORMS
                      + (gj.optim.chain.Transform(
                          "freeze_embedding", gj.optim.chain.Stage.UPDATE,
                          "regularizer", "zero the embedding's update",
                          lambda c, h, m, lr, key:
                          regularizer.freeze_embedding()),))
  monkeypatch.setitem(measures.REGISTRY, "embed_norm", measures.Measure(
      "embed_norm", lambda config: None, measure.embed_norm,
      needs=("embedding",), shown=("embed_norm",)))


def test_a_new_task_regularizer_and_measure_are_swept_and_analyzed(
    toys, tmp_path):
  p = 7
  config = gj.Config(task="x*y+x", p=p, regularizer="freeze_embedding",
                     depth=1, d_model=16, num_heads=2, d_mlp=32,
                     seed=(0, 1), steps=40, eval_every=20, chunk_steps=20,
                     snapshot_count=2)
  config.validate()
  task = config.build_task()
  x, y = task.inputs[:, 0], task.inputs[:, 2]
  np.testing.assert_array_equal(task.labels, (x * y + x) % p)
  workdir = str(tmp_path / "run")
  gj.sweep(config, workdir=workdir, log=None)
  first = gj.io.load_snapshot(workdir, 0)
  last = gj.io.load_snapshot(workdir, 40)
  # The regularizer zeroed the embedding's every update (exactly: its
  # update is set to 0.0 and w + 0.0 == w), and only the embedding's.
  np.testing.assert_array_equal(last.params["embed"]["embedding"],
                                first.params["embed"]["embedding"])
  assert not np.array_equal(last.params["unembed"]["kernel"],
                            first.params["unembed"]["kernel"])
  report = gj.analysis.report.analyze_run(workdir, measures=["embed_norm"],
                                          bootstrap=10, log=lambda _: None)
  m = np.load(os.path.join(workdir, "analysis", "measures.npz"))
  want = np.linalg.norm(np.asarray(first.params["embed"]["embedding"],
                                   np.float64).reshape(2, -1), axis=1)
  # A float32 sum of n = 9 * 16 squares is within n * 2^-24 = 8.6e-6 of the
  # float64 one (relative, any summation order), so its square root within
  # half that plus one rounding: 5e-6.
  np.testing.assert_allclose(m["embed_norm"][:, 0], want, rtol=5e-6)
  np.testing.assert_array_equal(m["embed_norm"][:, 0], m["embed_norm"][:, -1])
  assert report.config.task == "x*y+x"
