"""Golden tests: today's numbers, pinned to the bit (nanodo's tests/train_test.py).

Each case trains a few steps of a transformer, an MLP or a linear model, with
and without regularizers and gradient filters, and must reproduce every
per-step and eval record and the SHA-256 of the final parameters exactly; the
quickstart flagfile at 300 steps must write the same summary.csv byte for
byte. A refactor that moves any number fails here. The values hold for the
jax/jaxlib build and CPU kind recorded beside them: after an upgrade, check
the change and rewrite them with `python tests/golden_cases.py --write`.
"""

import json

import numpy as np
import pytest

import golden_cases

with open(golden_cases.VALUES) as _f:
  GOLDEN = json.load(_f)


def _same_environment():
  recorded, here = GOLDEN["environment"], golden_cases.environment()
  assert recorded == here, (
      f"golden values were recorded with {recorded}, this is {here}: check "
      "what moved, then run `python tests/golden_cases.py --write`")


@pytest.mark.parametrize("name", sorted(golden_cases.CASES))
def test_case_is_bitwise_unchanged(name):
  _same_environment()
  expected = GOLDEN["cases"][name]
  got = golden_cases.fingerprint(golden_cases.CASES[name])
  assert sorted(got) == sorted(expected)
  for key, value in expected.items():
    if key == "params_sha256":
      assert got[key] == value, f"{name}: final parameters changed"
    else:
      np.testing.assert_array_equal(np.array(got[key]), np.array(value),
                                    err_msg=f"{name}: {key}", strict=True)


def test_quickstart_summary_is_bytewise_unchanged(tmp_path):
  _same_environment()
  got = golden_cases.quickstart_summary(str(tmp_path / "run"))
  assert got == GOLDEN["quickstart_summary_csv"]
