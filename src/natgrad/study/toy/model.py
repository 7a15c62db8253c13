"""The one-hidden-unit autoencoder of the paper's section 4 (figure 1) and the four methods it compares.

Reading of the paper's formula
------------------------------
The paper minimises "(x − w·sigmoid(wx + b) + b)²" over the two parameters (w, b). We read it
literally, without adding parentheses: the reconstruction is

    y(x) = w · sigmoid(w x + b) − b          (``output_bias_sign = -1``, the default)

so that the error is (x − y(x))². The encoder and the decoder share the weight w (tied weights) and the
one bias b enters the hidden unit with a plus sign and the output with a minus sign. The other plausible
reading, a typo for (x − (w·sigmoid(wx + b) + b))², i.e. y = w·sigmoid(wx + b) + b, is
``output_bias_sign = +1``. We keep the literal one because it needs no change to the printed formula and
both give a non-convex surface with two basins (w > 0 and w < 0) over the (b, w) plane.

Input distribution
------------------
The paper names none. We use a fixed sample of ``n`` inputs (64 by default) drawn once with a seed from
N(loc, scale²) (default N(0, 1)) or U(low, high); the error is the *mean* of (x − y)² over that sample
(the paper's eq. 6 is a mean), and the same sample is the metric's x̃ ~ q̃(x) and the covariance's data.

Probabilistic model behind Amari's metric
-----------------------------------------
The targets are the inputs, t = x, modelled as t | x ~ N(y(x), β²). With β² = 1/2 (``output_variance``,
the default) the error is exactly the negative log-likelihood up to a constant,
−log N(x | y, 1/2) = (x − y)² + const, so Amari's metric (eq. 9/24 with the Fisher's 1/β²) is

    G = E_x[J_yᵀ J_y] / β² = 2 E_x[J_yᵀ J_y],

which is also the extended Gauss-Newton matrix of the error (section 7, eq. 16): Gauss-Newton and the
natural gradient coincide here, as the paper's section 7 says they must. The KL surfaces are exact:
KL(p_θ ‖ p_{θ+Δ}) = E_x[(y_θ(x) − y_{θ+Δ}(x))²] / (2β²), and 2·KL ≈ Δᵀ G Δ for small Δ.

Methods (appendix 8.4; the 2×2 systems are solved exactly)
---------------------------------------------------------
- Newton: Δ = −lr (H + λI)⁻¹ g with H the exact Hessian of the error, lr 1, λ = 1;
- Amari's natural gradient: Δ = −lr (G + λI)⁻¹ g, lr 0.5, λ = 0.01;
- Le Roux's covariance natural gradient: Δ = −lr (C + λI)⁻¹ g, lr 1, λ = 1, with C the **uncentred**
  covariance of the per-example gradients g_i = ∂(x_i − y_i)²/∂θ, U = (1/n) Σ g_i g_iᵀ (eq. 13, the
  "simplified formula" Le Roux et al. use and the one the paper contrasts with G); ``centred: true``
  selects eq. 12, C = (1/n) Σ (g_i − ḡ)(g_i − ḡ)ᵀ;
- gradient descent: Δ = −lr g, lr 0.1.

Parameters are handled as arrays θ = (b, w), in the order of the figure's axes (x-axis b, y-axis w).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("newton", "amari", "covariance", "gd")
METHOD_LABELS = {
    "newton": "Newton",
    "amari": "natural gradient (Amari)",
    "covariance": "covariance NG (Le Roux)",
    "gd": "gradient descent",
}
# The paper's colours: Newton blue, natural gradient gray, Le Roux orange, gradient descent purple.
METHOD_COLOURS = {"newton": "Blues", "amari": "Greys", "covariance": "Oranges", "gd": "Purples"}
METHOD_COLOUR = {"newton": "#1f5fbf", "amari": "#555555", "covariance": "#f28e2b", "gd": "#7b3294"}

def sample_inputs(*, distribution, n, seed, loc, scale, low, high):
    """The fixed input sample x_1..x_n (float64 numpy array)."""
    rng = np.random.default_rng(seed)
    if distribution == "normal":
        return loc + scale * rng.standard_normal(n)
    if distribution == "uniform":
        return rng.uniform(low, high, n)
    raise ValueError(f"unknown input distribution {distribution!r} (normal or uniform)")


@dataclasses.dataclass(frozen=True)
class Autoencoder:
    """The toy problem: inputs, the reading of the formula and the output noise. θ = (b, w)."""

    inputs: jax.Array
    output_bias_sign: float = -1.0
    output_variance: float = 0.5

    @classmethod
    def from_config(cls, cfg):
        x = jnp.asarray(sample_inputs(**cfg["inputs"]), dtype=jnp.float64)
        return cls(x, float(cfg["output_bias_sign"]), float(cfg["output_variance"]))

    # ---- the model -------------------------------------------------------------------------
    def reconstruct(self, theta, x):
        b, w = theta[0], theta[1]
        return w * jax.nn.sigmoid(w * x + b) + self.output_bias_sign * b

    def example_errors(self, theta):
        return (self.inputs - self.reconstruct(theta, self.inputs)) ** 2

    def error(self, theta):
        """The mean over the inputs of (x − y(x))²."""
        return jnp.mean(self.example_errors(theta))

    # ---- derivatives and metrics ------------------------------------------------------------
    def gradient(self, theta):
        return jax.grad(self.error)(theta)

    def hessian(self, theta):
        return jax.hessian(self.error)(theta)

    def output_jacobian(self, theta):
        """J_y: one row ∂y(x_i)/∂θ per input, shape (n, 2)."""
        return jax.vmap(jax.grad(self.reconstruct), in_axes=(None, 0))(theta, self.inputs)

    def fisher(self, theta):
        """Amari's metric G = E_x[J_yᵀ J_y] / β² (Gaussian outputs with variance β²)."""
        jac = self.output_jacobian(theta)
        return jac.T @ jac / (jac.shape[0] * self.output_variance)

    def example_gradients(self, theta):
        """Per-example gradients g_i = ∂(x_i − y(x_i))²/∂θ, shape (n, 2)."""
        def one(x):
            return jax.grad(lambda t: (x - self.reconstruct(t, x)) ** 2)(theta)

        return jax.vmap(one)(self.inputs)

    def covariance(self, theta, centred=False):
        """Le Roux's covariance of per-example gradients: uncentred (eq. 13) or centred (eq. 12)."""
        grads = self.example_gradients(theta)
        if centred:
            grads = grads - grads.mean(axis=0)
        return grads.T @ grads / grads.shape[0]

    def kl(self, theta, delta):
        """KL(p_θ ‖ p_{θ+Δ}) = E_x[(y_θ − y_{θ+Δ})²] / (2β²), exact for Gaussian outputs."""
        diff = self.reconstruct(theta, self.inputs) - self.reconstruct(theta + delta, self.inputs)
        return jnp.mean(diff**2) / (2.0 * self.output_variance)

    # ---- the methods ------------------------------------------------------------------------
    def step(self, method, theta, hyper):
        """The step Δθ that `method` proposes at θ (2×2 systems solved exactly)."""
        g = self.gradient(theta)
        lr = hyper["learning_rate"]
        if method == "gd":
            return -lr * g
        if method == "newton":
            matrix = self.hessian(theta)
        elif method == "amari":
            matrix = self.fisher(theta)
        elif method == "covariance":
            matrix = self.covariance(theta, centred=bool(hyper["centred"]))
        else:
            raise ValueError(f"unknown method {method!r}; one of {METHODS}")
        damped = matrix + hyper["damping"] * jnp.eye(2, dtype=matrix.dtype)
        return -lr * jnp.linalg.solve(damped, g)

    def path(self, method, start, hyper, steps):
        """θ_0 = start, θ_{k+1} = θ_k + Δθ_k for k < steps; returns an array (steps + 1, 2)."""
        def body(theta, _):
            new = theta + self.step(method, theta, hyper)
            return new, new

        start = jnp.asarray(start, dtype=jnp.float64)
        _, thetas = jax.lax.scan(body, start, None, length=steps)
        return jnp.concatenate([start[None], thetas])


def with_x64(fn):
    """Run `fn` with float64 enabled (the toy is always computed in float64)."""
    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped
