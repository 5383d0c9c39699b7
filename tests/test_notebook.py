"""experiments/colab/quickstart.ipynb runs top to bottom (at tiny sizes), so it never rots.

Its code cells are executed in order in one namespace, as a kernel would; the
cell tagged "parameters" is followed by tiny overrides (papermill's
convention). Shell lines (`!pip ...`, `%...`) would be skipped; the notebook
has none outside comments.
"""

import json
import os

import matplotlib
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "experiments", "colab", "quickstart.ipynb")
TINY = "P = 23\nFRACTIONS = [0.6, 0.7, 0.8]\nSEEDS = 2\nSTEPS = 300\nWINDOW = 100\n"


# In the slow run (pytest -m slow, which .ci/run also runs): keeps the default run under 10 minutes.
@pytest.mark.slow
def test_quickstart_notebook_runs_top_to_bottom():
  matplotlib.use("Agg")
  nb = json.load(open(NOTEBOOK))
  assert nb["nbformat"] == 4
  cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
  assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
  namespace = {"__name__": "__main__"}
  for cell in cells:
    source = "".join(cell["source"])
    source = "\n".join(l for l in source.splitlines()
                       if not l.lstrip().startswith(("!", "%")))
    exec(compile(source, NOTEBOOK, "exec"), namespace)  # pylint: disable=exec-used
    if "parameters" in cell["metadata"].get("tags", []):
      exec(TINY, namespace)  # pylint: disable=exec-used
  # It trained the tiny grid and computed every analysis.
  assert namespace["E"] == 6
  assert namespace["result"].history["step_train_loss"].shape == (6, 300)
  assert set(namespace["feats"]) >= {"energy", "highpass_mobility",
                                     "relative_drop"}
  assert {"accuracy", "auc"} <= set(namespace["cv"])
  assert namespace["fit"]["points"] + namespace["fit"]["dropped"] == 6
