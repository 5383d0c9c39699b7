"""Task tables: sizes, spot values, symmetry, and errors."""

import itertools

import numpy as np
import pytest

from grokjax import tasks
from grokjax.tasks import permutation


def _lookup(task, x, y):
  """The label of `x op y` in a task table."""
  (a, b) = task.operand_positions
  hit = np.where((task.inputs[:, a] == x) & (task.inputs[:, b] == y))[0]
  assert len(hit) == 1
  return int(task.labels[hit[0]])


def test_division_mod_97_has_9312_rows_and_inverts_multiplication():
  task = tasks.make_task("x/y", 97)
  assert task.inputs.shape == (97 * 96, 4)
  assert task.num_classes == 97 and task.vocab_size == 99
  assert not task.commutative
  for x, y in [(5, 3), (96, 96), (0, 7), (50, 2)]:
    z = _lookup(task, x, y)
    assert z * y % 97 == x
  assert set(task.inputs[:, 2]) == set(range(1, 97))  # y = 0 excluded


@pytest.mark.parametrize("op, x, y, want", [
    ("x+y", 60, 50, 13),
    ("x-y", 3, 5, 95),
    ("x*y", 10, 20, 200 % 97),
    ("x^2+y^2", 10, 3, 109 % 97),
    ("x^2+xy+y^2", 2, 3, 19),
    ("x^2+xy+y^2+x", 2, 3, 21),
    ("x^3+xy", 5, 4, 145 % 97),
    ("x^3+xy^2+y", 5, 4, (125 + 80 + 4) % 97),
    ("x/y_if_y_odd_else_x-y", 10, 3, 10 * pow(3, 95, 97) % 97),
    ("x/y_if_y_odd_else_x-y", 10, 4, 6),
])
def test_operator_spot_values_mod_97(op, x, y, want):
  task = tasks.make_task(op, 97)
  assert _lookup(task, x, y) == want
  assert task.num_examples == 97 * 97


def test_token_layout_is_x_op_y_eq_or_x_y_eq():
  task = tasks.make_task("x+y", 7)
  assert task.inputs[9].tolist() == [1, 7, 2, 8]  # 1 + 2, op = 7, '=' = 8
  short = tasks.make_task("x+y", 7, op_token=False)
  assert short.inputs[9].tolist() == [1, 2, 8]
  assert short.operand_positions == (0, 1)


def test_symmetric_addition_mod_97_keeps_each_unordered_pair_once():
  task = tasks.make_task("x+y", 97, symmetric=True)
  assert task.num_examples == 97 * 98 // 2 == 4753
  x, y = task.inputs[:, 0], task.inputs[:, 2]
  assert np.all(x <= y)
  assert len({(a, b) for a, b in zip(x, y)}) == 4753


def test_commutativity_is_read_from_the_table():
  assert tasks.make_task("x+y", 11).commutative
  assert tasks.make_task("x^2+y^2", 11).commutative
  assert not tasks.make_task("x-y", 11).commutative
  assert not tasks.make_task("x^3+xy", 11).commutative
  with pytest.raises(ValueError, match="--symmetric"):
    tasks.make_task("x-y", 11, symmetric=True)


def test_s5_products_have_120_squared_rows_and_group_structure():
  task = tasks.make_task("s5:x*y")
  assert task.inputs.shape == (120 * 120, 4) and task.num_classes == 120
  assert not task.commutative
  table = task.labels.reshape(120, 120)
  perms = permutation.permutations(5)
  identity = 0  # lexicographically first permutation
  assert perms[identity].tolist() == [0, 1, 2, 3, 4]
  np.testing.assert_array_equal(table[identity], np.arange(120))
  np.testing.assert_array_equal(table[:, identity], np.arange(120))
  # Every row is a permutation of the group (Latin square) and the product is associative.
  assert all(len(set(row)) == 120 for row in table)
  rng = np.random.default_rng(0)
  for a, b, c in rng.integers(0, 120, (50, 3)):
    assert table[table[a, b], c] == table[a, table[b, c]]
  # (a*b)(i) = a(b(i)) for a spot pair.
  a, b = 7, 93
  np.testing.assert_array_equal(perms[table[a, b]], perms[a][perms[b]])


def test_s5_conjugation_and_xyx():
  conj = tasks.make_task("s5:x*y*x^-1").labels.reshape(120, 120)
  xyx = tasks.make_task("s5:x*y*x").labels.reshape(120, 120)
  mul = tasks.make_task("s5:x*y").labels.reshape(120, 120)
  inv = np.argmin(mul, axis=1)  # a * a^-1 = identity (index 0)
  for a, b in itertools.product([0, 5, 77, 119], [3, 64]):
    assert conj[a, b] == mul[mul[a, b], inv[a]]
    assert xyx[a, b] == mul[mul[a, b], a]
  assert np.all(conj[0] == np.arange(120))  # conjugating by the identity


def test_general_sn():
  task = tasks.make_task("s3:x*y")
  assert task.num_examples == 36 and task.num_classes == 6


@pytest.mark.parametrize("name, p, match", [
    ("x%y", 97, "--task=x%y: unknown task"),
    ("x+y", 1, "--p=1"),
    ("x/y", 91, "--p=91 is not prime"),
    ("x/y_if_y_odd_else_x-y", 15, "--p=15 is not prime"),
    ("s9:x*y", 97, "--task=s9:x\\*y"),
    ("s5:x+y", 97, "--task=s5:x\\+y"),
])
def test_bad_tasks_name_the_flag(name, p, match):
  with pytest.raises(ValueError, match=match):
    tasks.make_task(name, p)


def test_composite_modulus_is_fine_without_division():
  assert tasks.make_task("x+y", 10).num_examples == 100


@pytest.mark.parametrize("spec,held", [("square:5", 25), ("strip:3", 3 * 13)])
def test_structured_holdouts_remove_exactly_the_region(spec, held):
  import grokjax as gj  # pylint: disable=import-outside-toplevel
  from grokjax.train import state as state_lib  # pylint: disable=import-outside-toplevel
  config = gj.Config(task="x+y", p=13, holdout=spec, seed=(0, 1),
                     train_fraction=(0.8,))
  task = config.build_task()
  x, y = task.inputs[:, 0], task.inputs[:, 2]
  region = (x < 5) & (y < 5) if spec.startswith("square") else x < 3
  assert task.num_pool == 169 - held and region.sum() == held
  assert region[task.num_pool:].all() and not region[:task.num_pool].any()
  np.testing.assert_array_equal(task.labels, (x + y) % 13)  # rows moved whole
  split = state_lib.member_splits(config, task, [0, 1])
  is_train, is_val = np.asarray(split.is_train), np.asarray(split.is_val)
  assert not (is_train & region).any()  # never trained on
  np.testing.assert_array_equal(is_val, np.broadcast_to(region, is_val.shape))
  assert (is_train.sum(1) == round(0.8 * (169 - held))).all()
  with pytest.raises(gj.ConfigError, match="--holdout=square:0"):
    config.replace(holdout="square:0").build_task()
  # Gu et al.'s test set (--holdout_eval=untrained): the region and every
  # pool row the member did not draw, i.e. all rows it does not train on.
  gu = config.replace(holdout_eval="untrained", train_fraction=(0.3,))
  gu_task = gu.build_task()
  np.testing.assert_array_equal(gu_task.inputs, task.inputs)
  gu_split = state_lib.member_splits(gu, gu_task, [0, 1])
  is_train, is_val = np.asarray(gu_split.is_train), np.asarray(gu_split.is_val)
  assert not (is_train & region).any()
  np.testing.assert_array_equal(is_val, ~is_train)
  assert (is_val.sum(1) == 169 - round(0.3 * (169 - held))).all()


def test_operand_offset_gives_y_its_own_tokens_as_gus_str_py():
  """Gu et al.'s str.py: x is token i, y is token j + d, then "=": with
  d = 5 < p = 13 the tokens 5..12 are shared (x = 5..12, y = 0..7)."""
  import grokjax as gj  # pylint: disable=import-outside-toplevel
  from grokjax.train import state as state_lib  # pylint: disable=import-outside-toplevel
  task = tasks.make_task("x+y", 13, op_token=False)
  shifted = gj.Config(task="x+y", p=13, op_token=False,
                      operand_offset=5).build_task()
  np.testing.assert_array_equal(shifted.inputs[:, 0], task.inputs[:, 0])
  np.testing.assert_array_equal(shifted.inputs[:, 1], task.inputs[:, 1] + 5)
  assert (shifted.inputs[:, 2] == 13 + 5 + 1).all()  # "=" after the op token
  assert shifted.vocab_size == 20
  np.testing.assert_array_equal(shifted.operands(), task.operands())
  np.testing.assert_array_equal(shifted.labels, task.labels)
  # The strip x < 4 held out, trained on the rest: tokens 0..3 appear in
  # no training row (x < 4 is held out, every y token is >= 5), the point
  # of their experiment; with one vocabulary (offset 0) they all do.
  for offset, unseen in ((5, True), (0, False)):
    config = gj.Config(task="x+y", p=13, op_token=False, holdout="strip:4",
                       holdout_eval="untrained", operand_offset=offset,
                       train_fraction=(0.9,), seed=(0, 1))
    t = config.build_task()
    split = state_lib.member_splits(config, t, [0, 1])
    x, y = t.operands().T
    assert not (np.asarray(split.is_train) & (x < 4)).any()
    for is_train in np.asarray(split.is_train):
      seen = set(np.unique(t.inputs[is_train][:, :2]))
      assert seen.isdisjoint(range(4)) == unseen
  with pytest.raises(gj.ConfigError, match="--operand_offset=3: only"):
    gj.Config(task="s5:x*y", operand_offset=3).validate()
  with pytest.raises(gj.ConfigError, match="--operand_offset=-1"):
    gj.Config(task="x+y", operand_offset=-1).validate()


def test_holdout_eval_needs_a_holdout():
  import grokjax as gj  # pylint: disable=import-outside-toplevel
  with pytest.raises(gj.ConfigError, match="--holdout_eval=untrained: .*"
                     "--holdout"):
    gj.Config(task="x+y", p=13, holdout_eval="untrained").validate()
  with pytest.raises(gj.ConfigError, match="--holdout_eval"):
    gj.Config(task="x+y", p=13, holdout="strip:3",
              holdout_eval="rest").validate()


def test_exclude_y0_drops_the_zero_operand_as_grokfasts_table():
  """Grokfast's x*y table: 0 <= x < p, 0 < y < p, p (p - 1) rows."""
  full = tasks.make_task("x*y", 7)
  table = tasks.make_task("x*y", 7, exclude_y0=True)
  assert len(full.labels) == 49 and len(table.labels) == 42
  x, y = table.inputs[:, 0], table.inputs[:, 2]
  assert (y != 0).all() and sorted(set(y.tolist())) == list(range(1, 7))
  np.testing.assert_array_equal(table.labels, x * y % 7)
