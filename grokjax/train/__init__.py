"""Member grid, ensemble state, the vmapped chunked trainer."""

from grokjax.train.checkpoint import load_final_state
from grokjax.train.loop import (Preempted, SweepResult, read_run_history,
                                sweep)
from grokjax.train.snapshots import (Snapshot, SnapshotReader, load_snapshot,
                                     snapshot_schedule, snapshot_steps)
from grokjax.train.state import (Ensemble, Hypers, MemberState, init_ensemble,
                                 init_member, make_hypers, take_member)
from grokjax.train.step import (Data, compile_sweep_chunk, eval_schedule,
                                evaluate, make_chunk_fn, train_step)

__all__ = ["Snapshot", "SnapshotReader", "load_snapshot", "snapshot_schedule",
           "snapshot_steps", "load_final_state", "read_run_history", "Preempted", "SweepResult", "sweep", "Ensemble", "init_ensemble", "Hypers",
           "MemberState", "init_member", "make_hypers", "take_member", "Data",
           "compile_sweep_chunk", "eval_schedule", "evaluate", "make_chunk_fn",
           "train_step"]
