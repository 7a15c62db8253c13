"""Kept only for `_cg.py`'s import while that file is being changed elsewhere: the preconditioner
forms live in `natgrad.preconditioners.protocol` (delete this module once `_cg.py` imports from
there)."""
from ..preconditioners.protocol import inverse_preconditioner

__all__ = ["inverse_preconditioner"]
