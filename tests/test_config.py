"""Swept-value parsing, the member grid, and validation messages."""

import numpy as np
import pytest

import grokjax as gj
from grokjax.config import ConfigError
from grokjax.grid import Grid, parse_values


def test_parse_values_forms():
  assert parse_values("seed", "0:4", integer=True) == (0, 1, 2, 3)
  assert parse_values("seed", "0:10:3", integer=True) == (0, 3, 6, 9)
  assert parse_values("seed", "1,5,0:2", integer=True) == (1, 5, 0, 1)
  assert parse_values("x", "0.3,0.5") == (0.3, 0.5)
  np.testing.assert_allclose(parse_values("x", "log:1e-4:1e-2:3"),
                             [1e-4, 1e-3, 1e-2])
  np.testing.assert_allclose(parse_values("x", "lin:0.2:0.6:5"),
                             [0.2, 0.3, 0.4, 0.5, 0.6])
  with pytest.raises(ConfigError, match="--seed=0.5"):
    parse_values("seed", "0.5", integer=True)
  with pytest.raises(ConfigError, match="--learning_rate=abc"):
    parse_values("learning_rate", "abc")


def test_grid_is_the_cartesian_product_with_the_first_axis_slowest():
  config = gj.Config(seed=(0, 1), train_fraction=(0.3, 0.5, 0.7),
                     weight_decay=(0.1, 1.0))
  grid = Grid.from_config(config)
  rows = grid.rows()
  assert len(grid) == len(rows) == 12
  assert grid.varied == ["seed", "train_fraction", "weight_decay"]
  assert rows[0]["seed"] == 0 and rows[-1]["seed"] == 1
  assert [r["weight_decay"] for r in rows[:2]] == [0.1, 1.0]
  assert all(r["data_seed"] == r["seed"] for r in rows)  # data_seed follows seed
  cols = grid.columns()
  assert cols["seed"].dtype == np.int32 and cols["learning_rate"].shape == (12,)


def test_explicit_data_seed_is_its_own_axis():
  rows = Grid.from_config(gj.Config(seed=(0, 1), data_seed=(5,))).rows()
  assert [r["data_seed"] for r in rows] == [5, 5]


@pytest.mark.parametrize("kwargs, flag", [
    (dict(train_fraction=(0.5, 1.5)), "--train_fraction=1.5"),
    (dict(train_fraction=(0.0,)), "--train_fraction=0.0"),
    (dict(task="x/y", p=91), "--p=91"),
    (dict(task="nope"), "--task=nope"),
    (dict(model="cnn"), "--model=cnn"),
    (dict(learning_rate=(-1.0,)), "--learning_rate=-1.0"),
    (dict(weight_decay=(-0.1,)), "--weight_decay=-0.1"),
    (dict(num_heads=3), "--num_heads=3"),
    (dict(steps=0), "--steps=0"),
    (dict(seed=()), "--seed"),
    (dict(task="x-y", symmetric=True), "--symmetric"),
    (dict(ln_placement="middle"), "--ln_placement=middle"),
    (dict(ln_placement="post", layer_norm=False), "--ln_placement=post"),
    (dict(data_order="sorted"), "--data_order=sorted"),
    (dict(data_order="epoch", batch_size=0), "--data_order=epoch"),
    (dict(model="mlp", attn_bias=True), "--attn_bias=True"),
    (dict(model="mlp", ln_placement="input"), "--ln_placement=input"),
    (dict(task="parity", exclude_y0=True), "--exclude_y0"),
])
def test_validation_names_the_flag(kwargs, flag):
  with pytest.raises(ConfigError) as e:
    gj.Config(**kwargs).validate()
  assert str(e.value).startswith(flag) and "\n" not in str(e.value)


def test_config_round_trips_through_a_dict():
  config = gj.Config(seed=(0, 1), mlp_hidden=(64,))
  assert gj.Config.from_dict(config.to_dict()) == config


def test_swept_fields_take_ranges_lists_arrays_and_scalars():
  config = gj.Config(seed=range(3), train_fraction=[0.3, 0.5],
                     learning_rate=1e-3, weight_decay=np.array([0.1, 1.0]))
  assert config.seed == (0, 1, 2) and config.train_fraction == (0.3, 0.5)
  assert config.learning_rate == (1e-3,)
  assert config.weight_decay == (0.1, 1.0)
  assert type(config.weight_decay[0]) is float  # JSON-serializable
  assert len(Grid.from_config(config)) == 12


def test_old_flag_names_are_aliases():
  """--keep_checkpoints (renamed --snapshot_count) still reads from flagfiles and stored runs."""
  config = gj.Config.from_dict({"keep_checkpoints": 7, "steps": 50})
  assert config.snapshot_count == 7 and config.steps == 50


@pytest.mark.parametrize("change, message", [
    (dict(seed=(1, 1)), "--seed=1,1: repeats 1"),
    (dict(task="x/y", p=100003), "--p=100003: the table would have"),
    (dict(task="algebra", algebra=("group:z0",), p=3),
     "--algebra=group:z0: the cyclic group"),
])
def test_refused_before_anything_is_built(change, message):
  with pytest.raises(ConfigError, match=message.replace("+", r"\+")) as e:
    gj.Config(**change).validate()
  assert "\n" not in str(e.value)
