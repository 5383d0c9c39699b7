"""Test settings: implicit rank promotion is an error (as in nanodo's tests), and
one persistent compilation cache for the session (subprocesses inherit it), so
the many small sweeps of the same shapes compile once. JAX caches only
programs whose compilation took at least a second by default, which leaves
out nearly every program of these tiny sweeps; here every program is cached
(a tiny sweep run again in a fresh process measured 9.3 s -> 1.6 s). A cached
executable is the program XLA compiled, so a bitwise comparison between two
runs of one program holds whether either loaded it or compiled it."""

import os
import shutil
import tempfile

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

_CACHE = tempfile.mkdtemp(prefix="grokjax-test-jit-cache-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  shutil.rmtree(_CACHE, ignore_errors=True)
