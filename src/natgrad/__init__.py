"""natgrad: matrix-free natural gradient descent for JAX.

The library (families, curvature, pytree, solvers, damping, preconditioners, economics, state,
step_control, optimizer, functional) imports only jax and optax; `natgrad.models` (flax models)
and `natgrad.preconditioners.kronecker` (which finds flax layers; also importable as
`natgrad.kronecker`) need flax, installed by `pip install natgrad[models]`, and are not imported
here. The study (`natgrad.study`) builds on the library and is never imported from here.

Start with `natgrad.NaturalGradient(apply_fn, family, learning_rate=...)`: one settings object
whose `init` and `step` (or `optax()`) cannot disagree, with the recommended economics.
"""

__version__ = "0.4.0"  # keep equal to pyproject.toml's version (tests/test_packaging.py checks)
from . import damping, economics, families, preconditioners, pytree, solvers, stalls, step_control
from .curvature import (
    empirical_fisher_operator,
    ggn_operator,
    hessian_operator,
    loss_gradient_and_metric,
    mean_nll,
)
from .optimizer import NaturalGradient, NaturalGradientState, StepInfo
from .state import step_info_of
from .functional import (
    natural_gradient,
    natural_gradient_init,
    natural_gradient_step,
    scale_by_natural_gradient,
)

__all__ = [
    "NaturalGradient",
    "damping",
    "step_control",
    "stalls",
    "economics",
    "preconditioners",
    "families",
    "solvers",
    "pytree",
    "ggn_operator",
    "empirical_fisher_operator",
    "hessian_operator",
    "loss_gradient_and_metric",
    "mean_nll",
    "natural_gradient_step",
    "natural_gradient_init",
    "natural_gradient",
    "scale_by_natural_gradient",
    "NaturalGradientState",
    "StepInfo",
    "step_info_of",
]
