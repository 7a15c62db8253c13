"""Matched validation error as a rule of the workflow, not a hand choice (paper §6: both methods
"reach the same validation error").

Before the study's runs, the calibrated method is trained once with each learning rate of its grid,
and the reference method once, all on the same stream (the first seed, segment 0 replaced by
resample 0, i.e. one of the study's own runs); the learning rate whose final validation error is
closest to the reference's is chosen (the first of the grid on a tie; a rate whose run diverges is
never chosen). Only validation errors are read: never the held-out outputs whose variance figure 3
plots, nor a test set.
"""
from __future__ import annotations

import math

import numpy as np

from natgrad.study.order import spec as spec_lib
from natgrad.study.order import train as train_lib

SEGMENT, RESAMPLE = 0, 0


def _final_validation_error(job_cfg, problem, seed, log):
    """The run's final validation error (%), or NaN when it diverges."""
    try:
        result = train_lib.run_jobs(job_cfg, problem, SEGMENT, [RESAMPLE], seed, log=log)[0]
    except train_lib.NonFiniteError as err:
        log(f"calibration: {err}")
        return math.nan
    return 100.0 * float(result["validation_error"][-1])


def calibrate(job_cfg, problem, log=print):
    """The calibration record of a calibrated job (`spec.job_config` with a `calibration` entry):
    the chosen learning rate and every validation error that chose it."""
    calibration = job_cfg["calibration"]
    seed = calibration["seed"]
    reference = _final_validation_error(calibration["reference"], problem, seed, log)
    if not math.isfinite(reference):
        raise train_lib.NonFiniteError(
            f"calibration of {job_cfg['method']}: the reference method "
            f"{calibration['reference']['method']} diverged; fix its settings first")
    rates = [float(r) for r in calibration["learning_rates"]]
    errors = [_final_validation_error(spec_lib.with_learning_rate(job_cfg, r), problem, seed, log)
              for r in rates]
    gaps = np.abs(np.asarray(errors) - reference)
    if not np.isfinite(gaps).any():
        raise train_lib.NonFiniteError(
            f"calibration of {job_cfg['method']}: every learning rate of {rates} diverged "
            "(order.calibration.learning_rates)")
    best = int(np.nanargmin(gaps))
    log(f"calibration of {job_cfg['method']}: learning rate {rates[best]:g} "
        f"(validation error {errors[best]:.2f} % vs {reference:.2f} % for "
        f"{calibration['reference']['method']})")
    return {"method": job_cfg["method"], "reference": calibration["reference"]["method"],
            "learning_rate": rates[best], "validation_error": errors[best],
            "reference_validation_error": reference, "learning_rates": rates,
            "validation_errors": errors, "seed": seed, "segment": SEGMENT, "resample": RESAMPLE}
