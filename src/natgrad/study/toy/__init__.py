"""The one-hidden-unit autoencoder (paper §4, figure 1, appendix 8.4)."""
from natgrad.study.experiment import Experiment

EXPERIMENT = Experiment("toy")
