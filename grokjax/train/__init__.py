"""Member grid, ensemble state, the vmapped chunked trainer."""

from grokjax.train.checkpoint import load_final_state
from grokjax.train.loop import Preempted, SweepResult, sweep
from grokjax.train.state import (Data, Ensemble, Hypers, MemberState,
                                 init_ensemble, init_member, make_hypers,
                                 take_member)
from grokjax.train.step import (compile_sweep_chunk, eval_schedule, evaluate,
                                make_chunk_fn, train_step)

__all__ = ["load_final_state", "Preempted", "SweepResult", "sweep",
           "Ensemble", "init_ensemble", "Hypers", "MemberState",
           "init_member", "make_hypers", "take_member", "Data",
           "compile_sweep_chunk", "eval_schedule", "evaluate",
           "make_chunk_fn", "train_step"]
