"""KroneckerFactors beyond flax linen: an nnx model (its State as params) and a plain-function model
declaring its layers with `dense_layer`, each against the same-weight linen MLP, whose factors and
inverse `tests/test_kronecker.py` checks against hand-built references; and the refusals."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import natgrad
from natgrad import families, solvers
from natgrad.models import MLP
from natgrad.preconditioners.kronecker import KroneckerFactors, dense_layer

FAMILY = families.Categorical()
N, D, H, K = 12, 5, 4, 3
LAM = 0.05


class _NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(D, H, rngs=rngs, param_dtype=jnp.float64)
        self.l2 = nnx.Linear(H, K, rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.l1(x)))


def _plain_mlp(p, x):
    h = jnp.tanh(dense_layer(x, p["l1"]["kernel"], p["l1"]["bias"]))
    return dense_layer(h, p["l2"]["kernel"], p["l2"]["bias"])


def _linen_mlp(seed):
    """The linen MLP D-H-K (tanh), random float64 weights, the weights as {l1, l2}, a batch."""
    model = MLP(hidden=(H,), outputs=K, activation="tanh")
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((N, D)))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape) * 0.7),
                                    model.init(jax.random.PRNGKey(seed), x))
    weights = {f"l{i + 1}": dict(params["params"][f"Dense_{i}"]) for i in range(2)}
    return model.apply, params, weights, x


def _nnx_model(weights):
    """(apply_fn, State) of the nnx MLP holding `weights`, applied through nnx.split/merge."""
    graphdef, state = nnx.split(_NnxMLP(nnx.Rngs(0)))
    nnx.replace_by_pure_dict(state, weights)
    return (lambda p, x: nnx.merge(graphdef, p)(x)), state


def _refreshed(kf, apply_fn, params, x):
    return kf.refresh(kf.init(params), apply_fn, params, x, None, FAMILY, LAM)


def _assert_same_factors(state, linen_state):
    assert set(state.factors) == {"l1", "l2"}
    for i, name in enumerate(["l1", "l2"]):
        for got, want in zip(state.factors[name] + state.inverses[name],
                             linen_state.factors[f"params/Dense_{i}"]
                             + linen_state.inverses[f"params/Dense_{i}"]):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_nnx_and_plain_function_factors_equal_linen(x64):
    linen_apply, linen_params, weights, x = _linen_mlp(seed=1)
    kf = KroneckerFactors(estimator="exact", decay=0.0)
    linen_state = _refreshed(kf, linen_apply, linen_params, x)
    nnx_apply, state = _nnx_model(weights)
    _assert_same_factors(_refreshed(kf, nnx_apply, state, x), linen_state)
    _assert_same_factors(_refreshed(kf, _plain_mlp, weights, x), linen_state)


def test_nnx_inverse_equals_linen_and_preconditioned_steps_train(x64):
    """M⁻¹ v on an nnx State is the linen model's on the same v; preconditioned CG steps on the
    nnx State lower the loss."""
    linen_apply, linen_params, weights, x = _linen_mlp(seed=2)
    apply_fn, state = _nnx_model(weights)
    kf = KroneckerFactors(estimator="exact")
    ks, linen_ks = _refreshed(kf, apply_fn, state, x), _refreshed(kf, linen_apply, linen_params, x)
    rng = np.random.default_rng(4)
    v = {f"l{i}": {"kernel": jnp.asarray(rng.standard_normal((a, b))),
                   "bias": jnp.asarray(rng.standard_normal(b))}
         for i, (a, b) in [(1, (D, H)), (2, (H, K))]}
    _, v_state = _nnx_model(v)
    got = nnx.to_pure_dict(kf.inverse(ks)(v_state))
    want = kf.inverse(linen_ks)({"params": {f"Dense_{i}": v[f"l{i + 1}"] for i in range(2)}})
    for i in range(2):
        for leaf in ("kernel", "bias"):
            np.testing.assert_allclose(got[f"l{i + 1}"][leaf],
                                       want["params"][f"Dense_{i}"][leaf], rtol=1e-10)

    y = jnp.asarray(rng.integers(0, K, N))
    loss = natgrad.mean_nll(apply_fn, x, y, FAMILY)

    @jax.jit
    def step(p, s):
        s = kf.refresh(s, apply_fn, p, x, y, FAMILY, LAM)
        d, _ = solvers.cg(natgrad.ggn_operator(apply_fn, p, x, FAMILY), jax.grad(loss)(p),
                          damping=LAM, max_iters=5, rtol=0.0, preconditioner=kf.inverse(s))
        return jax.tree_util.tree_map(lambda a, b: a - b, p, d), s

    p, s = state, kf.init(state)
    losses = [float(loss(p))]
    for _ in range(3):
        p, s = step(p, s)
        losses.append(float(loss(p)))
    assert losses[-1] < 0.5 * losses[0], losses


def test_wrong_declarations_are_refused_by_name():
    weights = {"l1": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}
    kf = KroneckerFactors()
    cast = lambda p, x: dense_layer(x, p["l1"]["kernel"] * 2.0, p["l1"]["bias"])  # noqa: E731
    with pytest.raises(ValueError, match=r"dense_layer was given a kernel of shape \(3, 2\) that "
                                         r"is not a leaf of params \(kernels there: l1\)"):
        kf.refresh(kf.init(weights), cast, weights, jnp.ones((4, 3)), None, FAMILY, 0.1)
    with pytest.raises(ValueError, match=r"no layer kernel .* leaves \['b', 'w'\]: name each"):
        KroneckerFactors().init({"w": jnp.ones((3, 2)), "b": jnp.zeros(2)})
    undeclared = lambda p, x: x @ p["l1"]["kernel"]  # noqa: E731
    with pytest.raises(ValueError, match=r"kernels \['l1'\] in params but 0 layer calls .*"
                                         r"dense_layer"):
        kf.refresh(kf.init(weights), undeclared, weights, jnp.ones((4, 3)), None, FAMILY, 0.1)
