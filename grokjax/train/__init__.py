"""Member grid, ensemble state, the vmapped chunked trainer."""

from grokjax.train.checkpoint import load_final_state
from grokjax.train.loop import Preempted, SweepResult, sweep
from grokjax.train.replay import Replay, replay
from grokjax.train.state import (Data, Hypers, MemberState, init_group,
                                 init_member, make_hypers)
from grokjax.train.step import (compile_sweep_chunk, eval_schedule, evaluate,
                                make_chunk_fn, train_step)

__all__ = ["load_final_state", "Preempted", "SweepResult", "sweep",
           "Replay", "replay",
           "init_group", "Hypers", "MemberState",
           "init_member", "make_hypers", "Data",
           "compile_sweep_chunk", "eval_schedule", "evaluate",
           "make_chunk_fn", "train_step"]
