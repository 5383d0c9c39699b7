"""Finite-dimensional algebras over F_p: constructions, properties, product tables."""

import itertools

import numpy as np
import pytest

from grokjax.tasks import algebra as alg_lib


def _brute_force(alg):
  """Properties from the full product table (every element, not the basis)."""
  e = alg.elements()
  t = alg.table()
  q = alg.q
  assoc = all(t[t[a, b], c] == t[a, t[b, c]]
              for a, b, c in itertools.product(range(q), repeat=3))
  comm = bool(np.array_equal(t, t.T))
  units = [u for u in range(q) if (t[u] == np.arange(q)).all()
           and (t[:, u] == np.arange(q)).all()]
  return assoc, comm, (e[units[0]].tolist() if units else None)


@pytest.mark.parametrize("spec,p,want", [
    ("complex", 7, (True, True, [1, 0], "acu")),
    ("dual", 5, (True, True, [1, 0], "acu")),
    ("m2", 3, (True, False, [1, 0, 0, 1], "ac\u0304u")),
    ("ut2", 5, (True, False, [1, 0, 1], "ac\u0304u")),
    ("zero", 3, (True, True, None, "acu\u0304")),
    ("group:s3", 2, (True, False, [1, 0, 0, 0, 0, 0], "ac\u0304u")),
    ("group:z3", 5, (True, True, [1, 0, 0], "acu")),
])
def test_known_algebras_have_their_textbook_properties(spec, p, want):
  alg = alg_lib.make_algebra(spec, p, dim=2)
  props = alg_lib.properties(alg)
  assoc, comm, unit, code = want
  assert (props["associative"], props["commutative"]) == (assoc, comm)
  assert props["unit"] == unit and props["unital"] == (unit is not None)
  assert props["category"] == code


def test_complex_numbers_multiply_as_complex_numbers():
  alg = alg_lib.make_algebra("complex", 7)
  # (a + bi)(c + di) = (ac - bd) + (ad + bc) i, mod 7.
  for a, b, c, d in itertools.product(range(7), repeat=4):
    got = alg.multiply(np.array([a, b]), np.array([c, d]))
    assert got.tolist() == [(a * c - b * d) % 7, (a * d + b * c) % 7]
  assert alg_lib.properties(alg)["mode_ranks"] == (2, 2, 2)
  # poly:1_0 is x^2 + 1: the same algebra.
  np.testing.assert_array_equal(alg_lib.make_algebra("poly:1_0", 7).tensor,
                                alg.tensor)


def test_m2_is_matrix_multiplication():
  alg = alg_lib.make_algebra("m2", 3)
  rng = np.random.default_rng(0)
  for _ in range(50):
    a, b = rng.integers(0, 3, (2, 4))
    want = (a.reshape(2, 2) @ b.reshape(2, 2)) % 3
    assert alg.multiply(a, b).tolist() == want.ravel().tolist()


def test_random_tensors_agree_with_brute_force_over_all_elements():
  for seed in range(6):
    alg = alg_lib.make_algebra(f"random:{seed}", 2, dim=2)
    props = alg_lib.properties(alg)
    assoc, comm, unit = _brute_force(alg)
    assert (props["associative"], props["commutative"], props["unit"]) == (
        assoc, comm, unit)
  # Some random tensors are associative or unital, most are neither: the
  # brute force and the basis checks saw both outcomes.
  seen = {_brute_force(alg_lib.make_algebra(f"random:{s}", 2, 2))[0]
          for s in range(20)}
  assert seen == {True, False}


def test_product_table_against_direct_computation():
  alg = alg_lib.make_algebra("ut2", 3)
  t = alg.table()
  e = alg.elements()
  assert t.shape == (27, 27)
  for x, y in [(0, 0), (5, 17), (26, 13), (9, 1)]:
    assert t[x, y] == alg.index(alg.multiply(e[x], e[y]))
  task = alg_lib.algebra_task(["ut2"], 3)
  assert task.num_examples == 27 * 27 and task.num_classes == 27
  row = task.inputs[5 * 27 + 17]
  assert (row[0], row[2]) == (5, 17) and task.labels[5 * 27 + 17] == t[5, 17]
  assert not task.commutative


def test_ranks_over_fp_and_sparsity():
  assert alg_lib.rank_mod_p(np.array([[1, 2], [2, 4]]), 7) == 1
  assert alg_lib.rank_mod_p(np.array([[1, 2], [3, 4]]), 2) == 1  # det = -2
  assert alg_lib.rank_mod_p(np.array([[1, 2], [3, 4]]), 5) == 2
  props = alg_lib.properties(alg_lib.make_algebra("dual", 5))
  # Dual numbers: C[0,0,0] = C[0,1,1] = C[1,0,1] = 1, the rest 0.
  assert props["sparsity"] == 5 / 8
  assert props["mode_ranks"] == (2, 2, 2)
  zero = alg_lib.properties(alg_lib.make_algebra("zero", 3, dim=3))
  assert zero["mode_ranks"] == (0, 0, 0) and zero["sparsity"] == 1.0


def test_several_algebras_of_one_dimension_share_the_rows():
  task = alg_lib.algebra_task(["complex", "dual", "random:3"], 5)
  assert task.labels.shape == (3, 625)
  np.testing.assert_array_equal(task.labels[0],
                                alg_lib.algebra_task(["complex"], 5).labels)
  with pytest.raises(ValueError, match="--algebra=complex,m2"):
    alg_lib.algebra_task(["complex", "m2"], 5)


@pytest.mark.parametrize("spec,p,dim,match", [
    ("complex", 8, 2, "--p=8 is not prime"),
    ("quaternion", 5, 2, "--algebra=quaternion: unknown"),
    ("random:1", 97, 4, "--p=97"),
])
def test_bad_algebras_name_the_flag(spec, p, dim, match):
  with pytest.raises(ValueError, match=match):
    alg_lib.algebra_task([spec], p, dim)


def test_a_sweep_over_algebras_trains_each_member_on_its_own_table():
  import grokjax as gj  # pylint: disable=import-outside-toplevel
  config = gj.Config(task="algebra", algebra=("complex", "random:1"), p=3,
                     model="mlp", mlp_hidden=(32,), d_model=16, steps=40,
                     eval_every=20, chunk_steps=20, learning_rate=(1e-2,),
                     train_fraction=(0.6,))
  both = gj.sweep(config, log=None)
  assert [m["task_index"] for m in both.members] == [0, 1]
  for i, spec in enumerate(config.algebra):
    alone = gj.sweep(config.replace(algebra=(spec,)), log=None)
    for key in ("step_train_loss", "val_acc", "param_norm"):
      np.testing.assert_allclose(both.history[key][i], alone.history[key][0],
                                 rtol=2e-4, atol=2e-5, err_msg=key)
  # Same seed and split, different tables: different training.
  assert not np.allclose(both.history["step_train_loss"][0],
                         both.history["step_train_loss"][1])
