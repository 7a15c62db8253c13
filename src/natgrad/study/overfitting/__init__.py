"""Restricted MNIST and table 1's other rows (paper §5, appendix 8.5-8.7), with its tune stage."""
from natgrad.study.experiment import Experiment

EXPERIMENT = Experiment("overfitting")
