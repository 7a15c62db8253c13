"""The paper's claims C1-C9 decided from the other experiments' results."""
from natgrad.study.experiment import Experiment

EXPERIMENT = Experiment("claims")
