"""Preconditioners for the natural-gradient solve: one module per preconditioner.

- `protocol`: `Preconditioner` (the `init` / `refresh` / `inverse` protocol that
  `natgrad.economics.SolverEconomics(preconditioner=...)` calls) and `inverse_preconditioner`
  (the forms the solvers' `preconditioner=` takes);
- `martens`: `MartensDiagonal`, Martens' (D + λ)^0.75 from per-example gradients
  (`squared_gradients`);
- `kronecker`: `KroneckerFactors`, K-FAC's damped A ⊗ G per flax Dense/Conv or nnx.Linear layer
  (or `dense_layer` of a plain-function model). It needs flax
  (`pip install natgrad[models]`), so it is not imported here: `from
  natgrad.preconditioners.kronecker import KroneckerFactors`.

A new preconditioner is a module here with a frozen dataclass implementing `Preconditioner`.
"""
from .martens import MartensDiagonal, squared_gradients
from .protocol import Preconditioner, inverse_preconditioner

__all__ = ["Preconditioner", "inverse_preconditioner", "MartensDiagonal", "squared_gradients"]
