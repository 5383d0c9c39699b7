"""Test settings: implicit rank promotion is an error (as in nanodo's tests), and
one persistent compilation cache for the session (subprocesses inherit it), so
the many small sweeps of the same shapes compile once."""

import os
import shutil
import tempfile

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

_CACHE = tempfile.mkdtemp(prefix="grokjax-test-jit-cache-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
jax.config.update("jax_compilation_cache_dir", _CACHE)


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  shutil.rmtree(_CACHE, ignore_errors=True)
