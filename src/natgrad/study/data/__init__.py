"""Data of the study: sources (embedded and user files), the NISTP deformations in JAX, and an
index-pure deformation stream. Nothing here knows about any experiment.

    from natgrad.study.data import load_source, make_stream
    source = load_source("mnist5k", config["datasets"])
    stream = make_stream(source, seed=0, preset="pnist07")
"""
from __future__ import annotations

from natgrad.study.data.sources import dataset_spec, load_source, partition
from natgrad.study.data.stream import Stream, make_stream
from natgrad.study.data.types import DataError, Source

__all__ = ["DataError", "Source", "Stream", "dataset_spec", "load_source", "make_stream",
           "partition"]
