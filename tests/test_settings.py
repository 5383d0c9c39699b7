"""Settings owned by the code that uses them (grokjax/settings.py).

Every block is small and declared beside its code; Config is their flat
composition; every registry row reads only the blocks it declares (its
`View` raises on any other field), which each test below exercises by
building every row; --help lists the flags by owner.
"""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grokjax as gj
from grokjax import settings as settings_lib
from grokjax.analysis import measures
from grokjax.config import BLOCKS, Config
from grokjax.optim import chain

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_is_the_flat_composition_of_small_owned_blocks():
  names = [f.name for f in dataclasses.fields(Config)]
  assert names == list(settings_lib.names_of(*BLOCKS))
  assert len(set(names)) == len(names)
  for block in BLOCKS:
    assert len(dataclasses.fields(block)) <= 30, block.__name__
    assert block.__module__.startswith("grokjax."), block
    for f in dataclasses.fields(block):
      assert f.metadata.get("help"), f"--{f.name} has no help"
      assert Config.OWNER[f.name] is block
  # Blocks live beside their code, not in one module.
  assert len({b.__module__ for b in BLOCKS}) >= 10


def test_a_block_section_round_trips_through_config():
  config = gj.Config(depth=3, ln_eps=1e-5, task="parity", parity_n=12)
  t = config.section(gj.models.TransformerSettings)
  assert (t.depth, t.ln_eps) == (3, 1e-5)
  assert config.section(gj.tasks.ParitySettings).parity_n == 12
  assert Config.from_dict(config.to_dict()) == config


def test_a_view_refuses_a_setting_its_reader_does_not_declare():
  view = settings_lib.View(gj.Config(), (gj.tasks.ParitySettings,),
                           "task family toy")
  assert view.parity_k == 3
  with pytest.raises(settings_lib.ForeignSetting, match=(
      r"^task family toy reads --d_model, which is not in the settings it "
      r"declares \(ParitySettings\); add the owner's block to the row's "
      r"`settings`$")):
    view.d_model  # pylint: disable=pointless-statement
  # Not an AttributeError: getattr with a default cannot hide a foreign read.
  with pytest.raises(settings_lib.ForeignSetting):
    getattr(view, "d_model", None)


# One small config per task family (the rows' own checks and builders run
# on a View of their declared settings).
FAMILY_CONFIGS = {
    "modular": dict(task="x-y", p=7, exclude_y0=True, operand_offset=3),
    "permutation": dict(task="s3:x*y"),
    "algebra": dict(task="algebra", p=3, algebra=("complex", "dual")),
    "parity": dict(task="parity", parity_n=8, parity_k=2, num_samples=64),
    "images": dict(task="digits", model="mlp"),
    "linear": dict(task="matrix_completion", model="linear", linear_dim=6,
                   linear_k=2, linear_depth=2),
}


@pytest.mark.parametrize("family", [f.family for f in gj.tasks.FAMILIES
                                    if f.family != "text"])
def test_every_task_family_reads_only_its_own_settings(family):
  config = gj.Config(**FAMILY_CONFIGS[family])
  config.validate()
  task = config.build_task()
  assert gj.tasks.family_of(config.task).family == family
  assert config.num_tables == (2 if family == "algebra" else 1)
  assert task.inputs.shape[0] > 0


def test_the_text_family_reads_only_its_own_settings(tmp_path):
  for split in ("train", "test"):
    for label, word in (("pos", "good"), ("neg", "bad")):
      folder = tmp_path / split / label
      folder.mkdir(parents=True)
      for i in range(3):
        (folder / f"{i}.txt").write_text(f"a {word} film {i}")
  config = gj.Config(task="text", model="lstm", data_dir=str(tmp_path),
                     text_vocab=20, text_max_len=8, d_model=8)
  config.validate()
  assert config.build_task().num_classes == 2


MODEL_CONFIGS = {
    "transformer": dict(task="x+y", p=7, depth=1, d_model=16, num_heads=2,
                        d_mlp=16, readout="tokens", tie_embeddings=True),
    "mlp": dict(task="x+y", p=7, model="mlp", mlp_hidden=(8,), d_model=8),
    "linear": FAMILY_CONFIGS["linear"],
    "cnn": dict(task="digits", model="cnn", cnn_channels=(4,)),
    "resnet18": dict(task="digits", model="resnet18", resnet_width=0.125,
                     resnet_norm="group"),
    "lstm": dict(task="x+y", p=7, model="lstm", d_model=8),
}


@pytest.mark.parametrize("name", list(gj.models.MODELS))
def test_every_model_reads_only_its_own_settings(name):
  config = gj.Config(**MODEL_CONFIGS[name])
  config.validate()
  task = config.build_task()
  model = gj.models.make_model(config, task)
  shapes = gj.models.abstract_params(model, task, "float32")
  assert jax.tree.leaves(shapes)
  parts = gj.models.parts_of(config)
  assert parts.model == f"--model={name}" or parts.model.startswith(
      f"--model={name} ")


@pytest.mark.parametrize("row", chain.TRANSFORMS, ids=lambda t: t.name)
def test_every_chain_transform_reads_only_its_own_settings(row):
  select = {row.flag: row.name if row.flag in ("regularizer", "grad_filter")
            else (0.01 if row.flag.endswith("noise") else True)}
  config = gj.Config(task="x+y", p=7, **select,
                     reg_strength=(0.1,) if row.flag == "regularizer"
                     else (0.0,))
  config.validate()
  row = gj.Grid.from_config(config).rows()[0]
  hypers = gj.members.Hypers(**{k: jnp.asarray(v) for k, v in row.items()},
                             n_train=jnp.asarray(10))
  optimizer = chain.make_optimizer(config, hypers)
  params = {"w": jnp.ones((3, 2)), "b": jnp.ones((2,))}
  updates, _ = optimizer.update(jax.tree.map(jnp.ones_like, params),
                                optimizer.init(params), params)
  assert all(np.isfinite(np.asarray(u)).all()
             for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("optimizer", list(chain.OPTIMIZERS))
def test_every_optimizer_reads_only_its_own_settings(optimizer):
  config = gj.Config(optimizer=optimizer, momentum=0.5)
  base = chain.base_optimizer(config, jnp.asarray(1e-3), jnp.asarray(0.1))
  assert base.init({"w": jnp.ones(2)}) is not None


def test_every_measure_applies_on_a_view_of_the_task_settings():
  config = gj.Config(task="x+y", p=7, model="mlp", mlp_hidden=(8,))
  assert measures.check_measures(["all"], config) == list(measures.REGISTRY)
  options = measures.measure_options({"lanczos_steps": 30})
  assert options["lanczos_steps"] == 30 and options["pca_components"] == 5
  with pytest.raises(gj.ConfigError, match=r"^--lanczos_step: not a setting "
                     "of any measure"):
    measures.measure_options({"lanczos_step": 30})
  with pytest.raises(gj.ConfigError, match=r"^--complexity_radius=0: must "
                     r"be > 0$"):
    measures.measure_options({"complexity_radius": 0})


def test_help_lists_the_flags_under_the_module_that_owns_them():
  proc = subprocess.run([sys.executable, "experiments/sweep.py", "--help"],
                        cwd=ROOT, capture_output=True, text=True, check=True)
  sections, current = {}, None
  for line in proc.stdout.splitlines():
    if line and not line.startswith(" ") and line.endswith(":"):
      current = line[:-1]
    elif line.startswith("  --") and current:
      name = line[4:].split(":")[0].removeprefix("[no]")
      sections.setdefault(current, set()).add(name)
  for block in BLOCKS:
    assert set(settings_lib.names_of(block)) <= sections[block.__module__], (
        block.__name__)
  assert "depth" in sections["grokjax.models.transformer"]
  assert "workdir" in sections["experiments/sweep.py"]


def test_make_task_runs_the_blocks_own_checks_before_building():
  # The text block's check, with no Config and before any file is read.
  with pytest.raises(ValueError, match=r"^--text_vocab=0: must be >= 1$"):
    gj.tasks.make_task("text", data_dir="/nonexistent", text=(0, 8))
  with pytest.raises(gj.ConfigError, match=r"^--text_vocab=0: must be >= 1$"):
    gj.Config(task="text", model="lstm", data_dir="/nonexistent",
              text_vocab=0).build_task()
