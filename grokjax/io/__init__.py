"""The run directory (`RunDir`: every path, records, snapshots, rebuild) and plots."""

from grokjax.io import atomic, snapshots
from grokjax.io.plots import write_plots
from grokjax.io.rundir import (RUN_FILES, MetricsWriter, RunDir, StoredRun,
                               WriteError, csv_float, read_config, read_csv, read_history,
                               versions, write_config, write_csv,
                               write_history)
from grokjax.io.snapshots import (Snapshot, SnapshotReader, load_snapshot,
                                  snapshot_schedule, snapshot_steps)

__all__ = ["atomic", "RUN_FILES", "MetricsWriter", "RunDir", "StoredRun", "WriteError",
           "csv_float",
           "read_config", "read_csv", "read_history", "versions",
           "write_config", "write_csv", "write_history", "write_plots",
           "snapshots", "Snapshot", "SnapshotReader", "load_snapshot",
           "snapshot_schedule", "snapshot_steps"]
