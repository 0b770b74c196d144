"""Why it works (docs/method.md): target NLL under the base model, Fisher-weighted displacement."""

from mixsd.analysis.fisher import (
    checkpoint_dirs,
    empirical_fisher,
    fisher_displacement,
    layer_group,
    load_checkpoint_parameters,
    parameters_of,
    suite_examples,
)
from mixsd.analysis.nll import NLLResult, load_pairs, nll_of_files, plot_nll_histogram, target_nll

__all__ = [
    "NLLResult", "checkpoint_dirs", "empirical_fisher", "fisher_displacement", "layer_group",
    "load_checkpoint_parameters", "load_pairs", "nll_of_files", "parameters_of",
    "plot_nll_histogram", "suite_examples", "target_nll",
]
