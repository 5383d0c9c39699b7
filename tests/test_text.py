"""Text classification from local files: both layouts, the tokenizer, and a model that learns a fixture."""

import csv
import os

import numpy as np
import pytest

import grokjax as gj
from grokjax.tasks import text as text_lib

GOOD = ["great", "wonderful", "superb", "lovely", "excellent"]
BAD = ["awful", "terrible", "boring", "dreadful", "poor"]
FILLER = ["the", "film", "plot", "actor", "scene", "music", "story", "was"]


def _doc(rng, positive):
  words = list(rng.choice(FILLER, 12)) + list(rng.choice(GOOD if positive
                                                        else BAD, 2))
  rng.shuffle(words)
  return " ".join(words).capitalize() + "."


def _write_folders(root, rng, n_train=120, n_test=60):
  for split, n in (("train", n_train), ("test", n_test)):
    for c in ("neg", "pos"):
      os.makedirs(root / split / c)
      for i in range(n // 2):
        (root / split / c / f"{i}.txt").write_text(_doc(rng, c == "pos"))


def test_tokenizer_vocab_and_encoding():
  assert text_lib.tokenize("It's GREAT, isn't it? 10/10") == [
      "it's", "great", "isn't", "it", "10", "10"]
  vocab = text_lib.build_vocab([["b", "a", "b"], ["c", "a", "b"]], 2)
  assert vocab == {"b": 3, "a": 4}
  ids = text_lib.encode(["a", "zzz", "b"], vocab, max_len=5)
  np.testing.assert_array_equal(ids, [0, 0, 4, 1, 3, 2])  # PAD, UNK, CLS
  np.testing.assert_array_equal(text_lib.encode(["a"] * 9, vocab, 3),
                                [4, 4, 4, 2])


def test_folder_and_csv_layouts_give_the_same_task(tmp_path):
  rng = np.random.default_rng(0)
  _write_folders(tmp_path / "imdb", rng)
  docs = text_lib.read_documents(str(tmp_path / "imdb"))
  (tmp_path / "csv").mkdir()
  for split, (d, l) in (("train", docs[:2]), ("test", docs[2:])):
    with open(tmp_path / "csv" / f"{split}.csv", "w", newline="") as f:
      w = csv.writer(f)
      w.writerow(["label", "text"])
      w.writerows(zip(l, d))
  a = text_lib.text_task(str(tmp_path / "imdb"), vocab_size=50, max_len=16)
  b = text_lib.text_task(str(tmp_path / "csv"), vocab_size=50, max_len=16)
  np.testing.assert_array_equal(a.inputs, b.inputs)
  np.testing.assert_array_equal(a.labels, b.labels)
  assert a.num_pool == 120 and a.num_classes == 2 and a.inputs.shape == (180, 17)
  assert (a.inputs[:, -1] == text_lib.CLS).all()


@pytest.mark.parametrize("model", [
    "lstm", pytest.param("transformer", marks=pytest.mark.slow)])
def test_a_model_learns_the_fixture(model, tmp_path):
  _write_folders(tmp_path, np.random.default_rng(1))
  config = gj.Config(task="text", data_dir=str(tmp_path), model=model,
                     text_max_len=16, text_vocab=50, d_model=32, depth=1,
                     num_heads=2, d_mlp=64, train_size=100, steps=120,
                     eval_every=40, learning_rate=(1e-2,), seed=(0,))
  result = gj.sweep(config, log=None)
  assert result.summary[0]["final_val_acc"] >= 0.9, result.summary[0]


def test_missing_or_malformed_text_data_is_a_one_line_error(tmp_path):
  (tmp_path / "train").mkdir()
  config = gj.Config(task="text", data_dir=str(tmp_path))
  with pytest.raises(gj.ConfigError, match="has no <class>/"):
    config.build_task()
  with pytest.raises(gj.ConfigError, match="--data_dir=/nonexistent"):
    config.replace(data_dir="/nonexistent").build_task()
  with pytest.raises(gj.ConfigError, match="--model=mlp"):
    config.replace(model="mlp").validate()
