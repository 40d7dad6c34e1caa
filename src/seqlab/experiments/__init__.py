"""``seqlab experiment ...``: measurements of the notes' claims about recurrent models (DESIGN.md section 1).

Each experiment is a config dataclass (defaults: the full size; ``.quick()``: the CI size, under a minute)
and ``run(config, show_progress, fitting) -> ExperimentResult`` (table rows, summary, curves for the figures;
``fitting``: what watches each network trained with the ``Trainer``, ``common.Fitting``);
``seqlab.experiments.figures.save_figures`` draws them.

    long-range   adding problem and copy memory vs T: RNN, LSTM, GRU at one parameter budget
    gradients    ||d h_T / d h_t|| and ||d loss / d x_t|| vs distance, at initialisation and trained
    cost         parameters, multiply-adds, time and activation memory per step
    gates        gate activations of a trained LSTM and GRU on held-out text; saturation; memory units
    order        NLL of held-out text vs the same text shuffled, under every model family
"""

from seqlab.experiments import cost, gates, gradients, long_range, order
from seqlab.experiments.common import ExperimentResult

EXPERIMENTS = {
    "long-range": (long_range.LongRangeConfig, long_range.run),
    "gradients": (gradients.GradientsConfig, gradients.run),
    "cost": (cost.CostConfig, cost.run),
    "gates": (gates.GatesConfig, gates.run),
    "order": (order.OrderConfig, order.run),
}

__all__ = ["EXPERIMENTS", "ExperimentResult"]
