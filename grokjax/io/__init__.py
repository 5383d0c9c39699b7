"""Run directory files and plots."""

from grokjax.io.plots import write_plots
from grokjax.io.rundir import (RUN_FILES, MetricsWriter, clear_run, csv_float, read_config, read_csv,
                               read_history, versions, write_config, write_csv,
                               write_history)

__all__ = ["RUN_FILES", "MetricsWriter", "clear_run", "csv_float", "read_config", "read_csv", "read_history",
           "versions", "write_config", "write_csv", "write_history",
           "write_plots"]
