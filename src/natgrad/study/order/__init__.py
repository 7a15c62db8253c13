"""Order robustness (paper §6, appendix 8.8, figure 3), with stream length as an axis (`scaling:`)."""
from natgrad.study.experiment import Experiment

EXPERIMENT = Experiment("order")
