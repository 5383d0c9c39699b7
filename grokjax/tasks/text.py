"""Text classification from local files (IMDB / Yelp style; Zhu et al. 2024 study grokking on them).

``--task=text --data_dir=<folder>`` reads either layout:

- folders (IMDB's aclImdb): ``train/<class>/*.txt`` and ``test/<class>/*.txt``,
  one document per file; the classes are the sub-folder names in sorted
  order (``neg`` = 0, ``pos`` = 1);
- CSV (Yelp polarity, AG News): ``train.csv`` and ``test.csv``, each row
  ``label,text`` (an optional header row is skipped); labels are integers or
  names, mapped to 0 .. C - 1 in sorted order.

The tokenizer lowercases and splits on anything that is not a letter, digit
or apostrophe. The vocabulary is the `vocab_size` most frequent words of the
training documents (ties by first appearance); other words map to UNK. A
document becomes its first `max_len` tokens, left-padded with PAD and
followed by a CLS token, so a model that reads the last position (the
transformer) or the final state (the LSTM) sees the whole document. Token ids:
PAD 0, UNK 1, CLS 2, words 3 ...

Training documents are the pool (members draw `--train_size` or
`--train_fraction` of them); the test documents are the fixed test set.
"""

from __future__ import annotations

import collections
import dataclasses
import csv
import glob
import os
import re

import numpy as np

from grokjax.settings import check_at_least, setting
from grokjax.tasks.base import DataError, Task

PAD, UNK, CLS = 0, 1, 2
@dataclasses.dataclass(frozen=True)
class TextSettings:
  """--task=text: the vocabulary and the document length (--data_dir: the
  tasks' own)."""
  text_vocab: int = setting(10000, "--task=text: words kept (the most "
                            "frequent in the training documents)")
  text_max_len: int = setting(128, "--task=text: tokens kept per document "
                              "(then a CLS token)")

  def check(self) -> None:
    check_at_least(self, 1, "text_vocab", "text_max_len")


_WORD = re.compile(r"[a-z0-9']+")
_LAYOUT = ("train/<class>/*.txt and test/<class>/*.txt (IMDB's layout), or "
           "train.csv and test.csv with rows label,text")


def tokenize(text: str) -> list[str]:
  return _WORD.findall(text.lower())


def _read_folders(root: str) -> tuple[list[str], list[str]] | None:
  classes = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)))
  if not classes:
    return None
  docs, labels = [], []
  for c in classes:
    for path in sorted(glob.glob(os.path.join(root, c, "*.txt"))):
      with open(path, encoding="utf-8", errors="replace") as f:
        docs.append(f.read())
      labels.append(c)
  return docs, labels


def _read_csv(path: str) -> tuple[list[str], list[str]]:
  docs, labels = [], []
  with open(path, newline="", encoding="utf-8", errors="replace") as f:
    for i, row in enumerate(csv.reader(f)):
      if len(row) < 2:
        raise DataError(f"--data_dir: {path} row {i + 1} has {len(row)} "
                        f"column(s); expected {_LAYOUT}")
      if i == 0 and row[0].strip().lower() in ("label", "class", "sentiment"):
        continue  # a header
      labels.append(row[0].strip())
      docs.append(",".join(row[1:]))
  return docs, labels


def read_documents(data_dir: str) -> tuple[list[str], list[str], list[str],
                                           list[str]]:
  """(train docs, train labels, test docs, test labels) as strings."""
  if not data_dir or not os.path.isdir(data_dir):
    raise DataError(f"--data_dir={data_dir}: not a directory; give a folder "
                    f"with {_LAYOUT}")
  out = []
  for split in ("train", "test"):
    folder = os.path.join(data_dir, split)
    path = os.path.join(data_dir, f"{split}.csv")
    if os.path.isdir(folder):
      got = _read_folders(folder)
      if got is None or not got[0]:
        raise DataError(f"--data_dir: {folder} has no <class>/*.txt "
                        f"documents; expected {_LAYOUT}")
    elif os.path.exists(path):
      got = _read_csv(path)
    else:
      raise DataError(f"--data_dir={data_dir}: neither {split}/ nor "
                      f"{split}.csv is there; expected {_LAYOUT}")
    if not got[0]:
      raise DataError(f"--data_dir: no {split} documents in {data_dir}; "
                      f"expected {_LAYOUT}")
    out.extend(got)
  return tuple(out)


def build_vocab(docs: list[list[str]], size: int) -> dict[str, int]:
  counts = collections.Counter(w for d in docs for w in d)
  # Counter.most_common orders ties by first appearance.
  return {w: i + 3 for i, (w, _) in enumerate(counts.most_common(size))}


def encode(words: list[str], vocab: dict[str, int], max_len: int) -> np.ndarray:
  ids = [vocab.get(w, UNK) for w in words[:max_len]]
  return np.array([PAD] * (max_len - len(ids)) + ids + [CLS], np.int32)


def text_task(data_dir: str, vocab_size: int = 10000,
              max_len: int = 128) -> Task:
  train_docs, train_labels, test_docs, test_labels = read_documents(data_dir)
  classes = sorted(set(train_labels) | set(test_labels),
                   key=lambda c: (not c.lstrip("-").isdigit(),
                                  int(c) if c.lstrip("-").isdigit() else 0, c))
  if len(classes) < 2:
    raise DataError(f"--data_dir={data_dir}: one class ({classes[0]}); a "
                    "classification task needs at least two")
  index = {c: i for i, c in enumerate(classes)}
  train_words = [tokenize(d) for d in train_docs]
  vocab = build_vocab(train_words, vocab_size)
  test_words = [tokenize(d) for d in test_docs]
  inputs = np.stack([encode(w, vocab, max_len)
                     for w in train_words + test_words])
  labels = np.array([index[c] for c in train_labels + test_labels], np.int32)
  return Task(name=f"text({os.path.basename(os.path.normpath(data_dir))})",
              inputs=inputs, labels=labels, vocab_size=len(vocab) + 3,
              num_classes=len(classes), operand_positions=(),
              commutative=False, num_pool=len(train_docs))


__all__ = ["text_task", "tokenize", "build_vocab", "encode",
           "read_documents", "PAD", "UNK", "CLS"]
