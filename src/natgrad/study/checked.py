"""The study's compiled training loops under `jax.experimental.checkify`: the natural-gradient
steps run with the library's run-time checks on (`checks=True`: finite data and targets in range,
finite gradient and direction), and a failed check stops the job with one line naming it."""
from __future__ import annotations

import functools

import jax
from jax.experimental import checkify

__all__ = ["CheckFailedError", "NonFiniteError", "checked", "raise_failed"]


class NonFiniteError(FloatingPointError):
    """A run produced NaN/inf; the message names the job and its settings."""


class CheckFailedError(ValueError):
    """A run-time check of a training step failed (broken data, or the run diverged)."""


def checked(fn, static_argnames=(), *, in_axes=None):
    """`jax.jit` of `fn` returning (error, fn's output): under checkify, the static arguments
    kept static (checkify traces every argument it is given). With `in_axes`, `fn` is vmapped
    over them and runs unchecked (error None): checkify cannot take a vmapped while-loop, the
    solvers' loops, so the method must then be built without checks."""
    def run(*args, **static):
        function = functools.partial(fn, **static)
        if in_axes is not None:
            return None, jax.vmap(function, in_axes=in_axes)(*args)
        return checkify.checkify(function)(*args)

    return jax.jit(run, static_argnames=static_argnames)


def raise_failed(error, where: str) -> None:
    """Raise `CheckFailedError` naming `where` and the first failed check, if any failed (an
    unchecked run's error is None)."""
    message = None if error is None else error.get()
    if message:
        raise CheckFailedError(f"{where}: {message.splitlines()[0]}: the run is stopped and "
                               "nothing is written")
