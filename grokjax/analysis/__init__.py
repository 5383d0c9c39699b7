"""Analysis of histories: grokking times and learning phases."""

from grokjax.analysis.grokking import (PHASES, first_step_reaching,
                                       grokking_times, group_medians,
                                       median_time, notsawo_times, phases,
                                       summarize)

__all__ = ["PHASES", "first_step_reaching", "grokking_times", "group_medians",
           "median_time", "notsawo_times", "phases", "summarize"]
