"""Hessian-free = natural gradient (paper §7), float64 on small random MLPs."""
from natgrad.study.experiment import Experiment

EXPERIMENT = Experiment("equivalence")
