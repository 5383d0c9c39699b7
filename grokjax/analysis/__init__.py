"""Analysis of histories (grokking times, learning phases, scaling fits, the loss's spectral signature) and of saved parameters (progress measures).

Reads arrays and run directories (through `grokjax.io`), never `train`;
`report` and `prediction` hold what the experiments/ scripts run, as library
calls.
"""

from grokjax.analysis.grokking import (PHASES, first_step_below,
                                       first_step_reaching, grokking_times,
                                       group_medians,
                                       median_time, notsawo_times, phases,
                                       summarize, summarize_config,
                                       time_statistics)
from grokjax.analysis import (complexity, fourier, hessian, landscape,
                              measures, trajectory, weights)
from grokjax.analysis.measures import MEASURES
from grokjax.analysis.measuring import compute_measures
from grokjax.analysis import prediction, report
from grokjax.analysis.scaling import (bootstrap_loglog, column_product,
                                      loglog_fit, power_law_fit)
from grokjax.analysis.slingshot import grokking_at_onsets, slingshot_onsets
from grokjax.analysis.spectral import (Hjorth, band_energies, detrend, energy,
                                       hjorth, power_spectrum,
                                       spectral_moments)

__all__ = ["prediction", "report", "complexity", "fourier", "hessian", "landscape", "measures",
           "trajectory", "weights", "MEASURES", "compute_measures", "grokking_at_onsets", "slingshot_onsets", "power_law_fit", "Hjorth", "band_energies", "detrend", "energy", "hjorth", "power_spectrum",
           "spectral_moments", "PHASES", "bootstrap_loglog", "column_product", "loglog_fit",
           "first_step_below", "first_step_reaching",
           "grokking_times", "group_medians", "median_time",
           "notsawo_times", "phases", "summarize",
           "summarize_config", "time_statistics"]
