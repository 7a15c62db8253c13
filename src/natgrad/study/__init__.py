"""The Pascanu & Bengio (2014) study on natgrad: data, methods, experiments, stores.

`open_results(path)` opens any stored result as an xarray Dataset (see README, "Re-analyse stored
results").
"""
from natgrad.study.stores import open_results

__all__ = ["open_results"]
