"""The import path of natgrad 0.3's K-FAC preconditioner, kept for existing code: the same objects
as `natgrad.preconditioners.kronecker` (where it lives now; it needs flax)."""
from .preconditioners.kronecker import ESTIMATORS, KroneckerFactors, KroneckerState

__all__ = ["KroneckerFactors", "KroneckerState", "ESTIMATORS"]
