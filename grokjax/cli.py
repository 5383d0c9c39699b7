"""The command line of the experiment scripts: absl flags generated from grokjax.Config (one flag per field, same name, same help, defined under the module that owns the setting, so `--help` lists them by owner), the stored run of --workdir, multi-host and compilation-cache flags, and one-line errors with exit code 2."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from typing import Callable

from absl import flags
import jax

import grokjax as gj
from grokjax.config import INT_AXES, SWEPT

FLAGS = flags.FLAGS


def _define_field(f: dataclasses.Field, module_name: str,
                  flag_values: flags.FlagValues) -> None:
  """--<field> for one settings field (swept ones as strings: lists and
  ranges), defined under `module_name` (its owner)."""
  fv = {"flag_values": flag_values, "module_name": module_name}
  default = f.default if f.default is not dataclasses.MISSING else (
      f.default_factory())
  help_ = f.metadata.get("help", f.name)
  if f.metadata.get("swept"):
    text = ",".join(f"{v:g}" for v in default)
    flags.DEFINE_string(f.name, text, f"{help_} (swept: a,b | start:stop"
                        "[:step] | log:a:b:n | lin:a:b:n)", **fv)
  elif f.metadata.get("kind") in ("int_list", "str_list"):
    flags.DEFINE_list(f.name, [str(v) for v in default], help_, **fv)
  elif isinstance(default, bool):
    flags.DEFINE_bool(f.name, default, help_, **fv)
  elif isinstance(default, int):
    flags.DEFINE_integer(f.name, default, help_, **fv)
  elif isinstance(default, float):
    flags.DEFINE_float(f.name, default, help_, **fv)
  else:
    flags.DEFINE_string(f.name, default, help_, **fv)


def define_settings_flags(blocks, flag_values: flags.FlagValues = FLAGS
                          ) -> None:
  """--<field> for every field of the settings `blocks` (`grokjax.settings`),
  each under the module that owns its block (e.g. the measures' own)."""
  for block in blocks:
    for f in dataclasses.fields(block):
      _define_field(f, block.__module__, flag_values)


def define_config_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """Defines --<field> for every Config field (swept ones as strings: lists
  and ranges), each under the module that owns its settings block."""
  define_settings_flags(gj.config.BLOCKS, flag_values)
  fv = {"flag_values": flag_values}
  for old, new in gj.config.ALIASES.items():
    flags.DEFINE_alias(old, new, **fv)
  flags.DEFINE_string("workdir", None, "run directory (default: "
                      "runs/<task>_<model>_<time>)", **fv)
  flags.DEFINE_bool("overwrite", False, "replace an existing run directory's "
                    "results", **fv)


def config_from_flags(flag_values: flags.FlagValues = FLAGS) -> gj.Config:
  """Builds and validates the Config (raises gj.ConfigError)."""
  values = {}
  for f in dataclasses.fields(gj.Config):
    value = flag_values[f.name].value
    if f.name in SWEPT:
      value = gj.parse_values(f.name, value or "",
                              integer=f.name in INT_AXES)
    elif f.metadata.get("kind") == "int_list":
      try:
        value = tuple(int(v) for v in value)
      except ValueError:
        raise gj.ConfigError(f"--{f.name}={','.join(value)}: expected "
                             "comma-separated integers") from None
    elif f.metadata.get("kind") == "str_list":
      value = tuple(value)
    values[f.name] = value
  config = gj.Config(**values)
  config.validate()
  return config


def stored_run(workdir: str | None, what: str = "a run directory") -> dict:
  """config.json of --workdir, or a ConfigError that says what is missing."""
  if not workdir:
    raise gj.ConfigError(f"--workdir: give {what}")
  run = gj.io.RunDir(workdir)
  if not run.has_run():
    raise gj.ConfigError(f"--workdir={workdir}: no config.json (not a run "
                         "directory)")
  try:
    stored = run.read_config()
  except ValueError as e:  # a truncated or hand-edited config.json
    raise gj.ConfigError(f"--workdir={workdir}: config.json is unreadable "
                         f"({e}); the run cannot be analyzed") from None
  if gj.Config.from_dict(stored.get("config", {})).needs_x64:
    # recompute its losses as it trained, before any array is made
    jax.config.update("jax_enable_x64", True)
  return stored


def default_workdir(config: gj.Config) -> str:
  safe = "".join(c if c.isalnum() or c in "+-" else "_" for c in config.task)
  return os.path.join("runs", f"{safe}_{config.model}_"
                      f"{time.strftime('%Y%m%d-%H%M%S')}")


def define_multihost_flags() -> None:
  flags.DEFINE_bool("multihost", False, "call jax.distributed.initialize() "
                    "first: every process runs this program on its share of "
                    "the members (TPU pods and SLURM are detected; elsewhere "
                    "give the three flags below)")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 "
                      "(--multihost without cluster auto-detection)")
  flags.DEFINE_integer("num_processes", None, "processes in the job "
                       "(--multihost without cluster auto-detection)")
  flags.DEFINE_integer("process_id", None, "this process's index "
                       "(--multihost without cluster auto-detection)")


def init_multihost() -> None:
  """`jax.distributed.initialize` from the flags, before any JAX computation."""
  if not FLAGS.multihost:
    for name in ("coordinator_address", "num_processes", "process_id"):
      if FLAGS[name].value is not None:
        raise gj.ConfigError(f"--{name}: only used with --multihost; add "
                             "--multihost or drop it")
    return
  import jax  # pylint: disable=import-outside-toplevel
  given = [FLAGS[n].value is not None for n in
           ("coordinator_address", "num_processes", "process_id")]
  if any(given) and not all(given):
    raise gj.ConfigError("--multihost: give all of --coordinator_address, "
                         "--num_processes and --process_id, or none (cluster "
                         "auto-detection)")
  if all(given) and not 0 <= FLAGS.process_id < FLAGS.num_processes:
    raise gj.ConfigError(f"--process_id={FLAGS.process_id}: must be in [0, "
                         f"--num_processes={FLAGS.num_processes})")
  jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                             FLAGS.process_id)


def _default_cache() -> str:
  return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "grokjax", "xla")


def define_cache_flags() -> None:
  flags.DEFINE_string(
      "compilation_cache", _default_cache(), "folder of JAX's persistent "
      "compilation cache: a second run, a resume or a replay of the same "
      "program loads it instead of compiling again (default: "
      "$JAX_COMPILATION_CACHE_DIR, else ~/.cache/grokjax/xla; empty: off)")


def enable_compilation_cache() -> None:
  """JAX's persistent compilation cache in --compilation_cache (per user).
  The cached executable is the program XLA compiled, so a run that loads it
  computes what a run that compiles it does."""
  path = FLAGS.compilation_cache
  if not path:
    return
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise gj.ConfigError(f"--compilation_cache={path}: cannot create it "
                         f"({e.strerror}); give a folder you can write, or "
                         "--compilation_cache= to turn the cache off") from None
  jax.config.update("jax_compilation_cache_dir", path)


HELP_ARGS = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort")


def help_by_owner(flag_values: flags.FlagValues = FLAGS) -> str:
  """`--help`: the main module's docstring and own flags, then the settings
  flags (the run config's, the measures') grouped by the module that owns
  each settings block (`grokjax.settings`), the run config's in `Config`
  order."""
  main = sys.modules["__main__"]
  out = [(main.__doc__ or "").rstrip(), "", "flags:"]
  own = flag_values.main_module_help()
  if own:
    out += [own.rstrip(), ""]
  owners = [m for m in flag_values.flags_by_module_dict()
            if m.startswith("grokjax.") and m != __name__]
  order = list(dict.fromkeys(b.__module__ for b in gj.config.BLOCKS))
  for module in sorted(owners, key=lambda m: (order.index(m) if m in order
                                              else len(order), m)):
    out += [flag_values.module_help(module).rstrip(), ""]
  out.append("Try --helpfull to get a list of all flags.")
  return "\n".join(out)


def parse_flags_or_exit(argv: list[str]) -> list[str]:
  """absl parsing whose errors are one line and exit code 2 (absl's own is 1)."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    fail(argv[0], str(e).splitlines()[0])
    raise  # unreachable


def fail(prog: str, message: str) -> None:
  print(f"{os.path.basename(prog)}: error: {message}", file=sys.stderr)
  sys.exit(2)


def run_main(main: Callable[[list[str]], None]) -> None:
  """`app.run` with one-line flag errors; a gj.ConfigError from main exits 2 too."""
  from absl import app  # pylint: disable=import-outside-toplevel
  # JAX logs each absent backend (e.g. "Unable to initialize backend 'tpu'") at INFO.
  logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

  def wrapped(argv):
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    if not FLAGS["verbosity"].present:  # orbax logs every save at INFO
      absl_logging.set_verbosity(absl_logging.WARNING)
    try:
      main(argv)
    except (gj.ConfigError, gj.io.WriteError) as e:
      fail(argv[0], str(e))

  if any(arg in HELP_ARGS for arg in sys.argv[1:]):
    print(help_by_owner())
    sys.exit(0)
  app.run(wrapped, flags_parser=parse_flags_or_exit)


# --- the flag reference (docs/flags.md) ------------------------------------

def script_flags(script: str) -> dict[str, dict[str, str]]:
  """Every flag `script` (an absl program) accepts, from its `--helpxml`:
  name -> {"file", "meaning", "default", "type"} (absl's own included; their
  "file" starts with "absl.")."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import xml.etree.ElementTree as ET  # pylint: disable=import-outside-toplevel
  # absl prints the XML, then exits 1 (as after --help). Defaults that name
  # this machine's folders are written as on any machine: the checkout's
  # paths relative to it, the home folder as ~, the cache's env var unset.
  env = {k: v for k, v in os.environ.items()
         if k != "JAX_COMPILATION_CACHE_DIR"}
  proc = subprocess.run([sys.executable, script, "--helpxml"],
                        capture_output=True, text=True, check=False, env=env)
  root = os.path.dirname(os.path.dirname(os.path.abspath(script)))
  portable = lambda text: text.replace(root + os.sep, "").replace(
      os.path.expanduser("~"), "~")
  try:
    tree = ET.fromstring(proc.stdout)
  except ET.ParseError:
    raise RuntimeError(f"{script} --helpxml printed no flags (exit "
                       f"{proc.returncode}):\n{proc.stderr[-2000:]}") from None
  out = {}
  for flag in tree.iter("flag"):
    field = lambda tag, f=flag: portable((f.findtext(tag) or "").strip())
    out[field("name")] = {k: field(k) for k in
                          ("file", "meaning", "default", "type")}
  return out


def own_flag(file: str) -> bool:
  """A flag defined by a script of this repository or by grokjax."""
  return file.endswith(".py") or file.startswith("grokjax")


def flag_reference(scripts: dict[str, dict[str, dict[str, str]]]) -> str:
  """docs/flags.md from `script_flags` of each script (path -> flags): per
  script, the flags it defines (absl's and other libraries' left out), then
  the run config's flags once, grouped by the module that owns each
  settings block (`grokjax.settings`), sorted within each."""
  cell = lambda text: " ".join(text.split()).replace("|", "\\|")
  owners = list(dict.fromkeys(b.__module__ for b in gj.config.BLOCKS))

  def table(flags_):
    rows = ["| flag | default | help |", "|---|---|---|"]
    for name in sorted(flags_):
      f = flags_[name]
      default = f"`{cell(f['default'])}`" if f["default"] else ""
      rows.append(f"| `--{name}` | {default} | {cell(f['meaning'])} |")
    return rows + [""]

  lines = ["# Flags", "",
           "Generated by `python experiments/flags_reference.py` from each "
           "script's own flags (absl's `--helpxml`); edit the help where the "
           "flag is defined, then regenerate. `tests/test_docs.py` fails when "
           "this page is out of date or a flag has no help. Every script also "
           "takes absl's `--flagfile=FILE` (one flag per line) and "
           "`--helpfull`.", ""]
  config_flags = {}
  for path, flags_ in scripts.items():
    own = {n: f for n, f in flags_.items()
           if own_flag(f["file"]) and f["file"] not in owners}
    runs = {n: f for n, f in flags_.items() if f["file"] in owners}
    config_flags.update(runs)
    lines += [f"## {path}", ""]
    if runs:
      lines += ["Every flag of [the run config](#the-run-config) too "
                "(`grokjax.Config`), and:", ""]
    lines += table(own)
  if config_flags:
    lines += ["## The run config", "",
              "One flag per `grokjax.Config` field, listed under the module "
              "that owns its settings block (`grokjax/settings.py`); "
              "`--help` lists them the same way.", ""]
    for module in owners:
      mine = {n: f for n, f in config_flags.items() if f["file"] == module}
      if mine:
        lines += [f"### {module}", ""] + table(mine)
  return "\n".join(lines).rstrip() + "\n"
