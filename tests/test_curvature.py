"""Metric-vector products against explicitly materialised matrices on a tiny flax MLP (float64)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from natgrad import families
from natgrad.curvature import (
    empirical_fisher_operator,
    ggn_operator,
    hessian_operator,
    loss_gradient_and_metric,
)
from natgrad.models import MLP

FAMILIES = {
    "gaussian": families.Gaussian(std=0.5),
    "bernoulli": families.Bernoulli(),
    "categorical": families.Categorical(),
}
N, D, H, O = 6, 3, 4, 3


def _problem(family, seed=0):
    """Tiny MLP, float64 (under the x64 fixture), numpy-drawn (cheaper than an eager flax init)."""
    model = MLP(hidden=(H,), outputs=O, activation="tanh")
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((N, D)))
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    # weights ×1.5 for some curvature in the tanh
    params = jax.tree_util.tree_map(
        lambda s: jnp.asarray(1.5 * rng.standard_normal(s.shape) / np.sqrt(s.shape[0])), shapes)
    targets = family.sample(jax.random.PRNGKey(seed), model.apply(params, x))
    flat, unravel = ravel_pytree(params)
    v = jnp.asarray(rng.standard_normal(flat.shape))
    return model.apply, params, x, targets, flat, unravel, v


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _apply_flat(apply_fn, unravel, x):
    return lambda f: apply_fn(unravel(f), x)


def _r_metric(family, r_i):
    """F_r for one example, written out from the formulas (not from the family's code)."""
    if isinstance(family, families.Gaussian):
        return jnp.eye(r_i.shape[0]) / family.std**2
    if isinstance(family, families.Bernoulli):
        y = jax.nn.sigmoid(r_i)
        return jnp.diag(y * (1 - y))
    y = jax.nn.softmax(r_i)
    return jnp.diag(y) - jnp.outer(y, y)


def _dense_ggn(family, apply_fn, x, flat, unravel):
    @jax.jit
    def dense(flat, x):
        f = _apply_flat(apply_fn, unravel, x)
        jac = jax.jacobian(f)(flat)  # (n, o, P)
        fr = jax.vmap(lambda ri: _r_metric(family, ri))(f(flat))
        return jnp.einsum("nop,noq,nqr->pr", jac, fr, jac) / N

    return dense(flat, x)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_ggn_product_matches_dense(x64, name):
    family = FAMILIES[name]
    apply_fn, params, x, _, flat, unravel, v = _problem(family)
    dense = _dense_ggn(family, apply_fn, x, flat, unravel)
    gv = ravel_pytree(ggn_operator(apply_fn, params, x, family)(unravel(v)))[0]
    assert _rel(gv, dense @ v) <= 1e-10
    # jitted, and reused for several vectors from one linearization
    mv = jax.jit(ggn_operator(apply_fn, params, x, family))
    for k in range(2):
        w = jax.random.normal(jax.random.PRNGKey(10 + k), flat.shape)
        assert _rel(ravel_pytree(mv(unravel(w)))[0], dense @ w) <= 1e-10


@pytest.mark.parametrize("name", list(FAMILIES))
def test_extended_gauss_newton_equals_fisher_in_y_space(x64, name):
    """§7: J_rᵀ (∂²nll/∂r²) J_r at the data's targets = the y-space metric of eq. 10, 11, 24."""
    family = FAMILIES[name]
    apply_fn, params, x, targets, flat, unravel, v = _problem(family)
    egn, fisher_y = jax.jit(functools.partial(_egn_and_y_fisher, family, apply_fn, unravel))(
        flat, x, targets)
    assert _rel(egn, fisher_y) <= 1e-10
    gv = ravel_pytree(ggn_operator(apply_fn, params, x, family)(unravel(v)))[0]
    assert _rel(gv, fisher_y @ v) <= 1e-10


def _egn_and_y_fisher(family, apply_fn, unravel, flat, x, targets):
    f = _apply_flat(apply_fn, unravel, x)
    jr = jax.jacobian(f)(flat)  # (n, o, P)
    r = f(flat)
    hess = jax.vmap(lambda ri, ti: jax.hessian(lambda rr: family.nll(rr[None], ti[None])[0])(ri))
    egn = jnp.einsum("nop,noq,nqr->pr", jr, hess(r, targets), jr) / N
    y = family.mean(r)
    jy = jax.jacobian(lambda p: family.mean(f(p)))(flat)  # (n, o, P)
    if isinstance(family, families.Gaussian):  # eq. 24 with the Fisher's 1/std²
        fisher_y = jnp.einsum("nop,noq->pq", jy, jy) / N / family.std**2
    elif isinstance(family, families.Bernoulli):  # eq. 10: Jᵀ diag(1/(y(1−y))) J
        fisher_y = jnp.einsum("nop,no,noq->pq", jy, 1 / (y * (1 - y)), jy) / N
    else:  # eq. 11: Σ_k (1/y_k) ∂y_kᵀ ∂y_k
        fisher_y = jnp.einsum("nkp,nk,nkq->pq", jy, 1 / y, jy) / N
    return egn, fisher_y


def _kl(family, r0, r1):
    """Mean over examples of KL(p(t|r0) ‖ p(t|r1)), in closed form."""
    if isinstance(family, families.Gaussian):
        return jnp.mean(jnp.sum((r0 - r1) ** 2, -1)) / (2 * family.std**2)
    if isinstance(family, families.Bernoulli):
        y0, ly0, ly1 = jax.nn.sigmoid(r0), jax.nn.log_sigmoid(r0), jax.nn.log_sigmoid(r1)
        lz0, lz1 = jax.nn.log_sigmoid(-r0), jax.nn.log_sigmoid(-r1)
        return jnp.mean(jnp.sum(y0 * (ly0 - ly1) + (1 - y0) * (lz0 - lz1), -1))
    l0, l1 = jax.nn.log_softmax(r0), jax.nn.log_softmax(r1)
    return jnp.mean(jnp.sum(jnp.exp(l0) * (l0 - l1), -1))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_kl_second_order(x64, name):
    """2·KL(p_θ ‖ p_{θ+εd}) / (ε² dᵀGd) → 1 as ε → 0 (eq. 3-4), with error O(ε)."""
    family = FAMILIES[name]
    apply_fn, params, x, _, flat, unravel, d = _problem(family)
    gd = ravel_pytree(ggn_operator(apply_fn, params, x, family)(unravel(d)))[0]
    dgd = d @ gd
    r0 = apply_fn(params, x)
    errs = []
    for eps in (1e-1, 1e-2, 1e-3):
        r1 = apply_fn(unravel(flat + eps * d), x)
        errs.append(abs(2 * _kl(family, r0, r1) / (eps**2 * dgd) - 1))
    assert errs[2] < 1e-2
    assert errs[2] < errs[1] < errs[0]


def _per_example_grads(family, apply_fn, x, targets, unravel, flat):
    jac = jax.jit(jax.jacobian(lambda p, x, t: family.nll(apply_fn(unravel(p), x), t)))
    return jac(flat, x, targets)  # (n, P)


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("centred", [False, True])
def test_empirical_fisher_matches_dense(x64, name, centred):
    family = FAMILIES[name]
    apply_fn, params, x, targets, flat, unravel, v = _problem(family)
    g = _per_example_grads(family, apply_fn, x, targets, unravel, flat)
    if centred:  # eq. 12
        dense = (g - g.mean(0)).T @ (g - g.mean(0)) / N
        np.testing.assert_allclose(dense, np.cov(np.asarray(g).T, bias=True), atol=1e-12)
    else:  # eq. 13
        dense = g.T @ g / N
    op = empirical_fisher_operator(apply_fn, params, x, targets, family, centred=centred)
    assert _rel(ravel_pytree(op(unravel(v)))[0], dense @ v) <= 1e-10


@pytest.mark.parametrize("name", list(FAMILIES))
def test_hessian_matches_dense(x64, name):
    family = FAMILIES[name]
    apply_fn, params, x, targets, flat, unravel, v = _problem(family)
    dense = jax.jit(jax.hessian(lambda p, x, t: jnp.mean(family.nll(apply_fn(unravel(p), x), t))))(
        flat, x, targets)
    hv = ravel_pytree(hessian_operator(apply_fn, params, x, targets, family)(unravel(v)))[0]
    assert _rel(hv, dense @ v) <= 1e-10


@pytest.mark.parametrize(
    "build",
    [
        lambda a, p, x, t, fam: ggn_operator(a, p, x, fam),
        lambda a, p, x, t, fam: empirical_fisher_operator(a, p, x, t, fam, centred=True),
        lambda a, p, x, t, fam: hessian_operator(a, p, x, t, fam),
    ],
    ids=["ggn", "covariance", "hessian"],
)
def test_products_run_no_forward_pass(build):
    """One linearization per operator: the product's program has no tanh (the model's forward)."""
    family = families.Categorical()
    apply_fn, params, x, targets, *_ = _problem(family)
    op = build(apply_fn, params, x, targets, family)
    jaxpr = str(jax.make_jaxpr(op)(params))
    assert "tanh" not in jaxpr
    # ...whereas the gradient does run one
    loss = lambda p: jnp.mean(family.nll(apply_fn(p, x), targets))  # noqa: E731
    assert "tanh" in str(jax.make_jaxpr(jax.grad(loss))(params))


def _dense_metric(metric, family, apply_fn, x, targets, flat, unravel):
    """The metric on the batch (x, targets), materialised from the formulas."""
    if metric == "fisher":
        return _dense_ggn(family, apply_fn, x, flat, unravel)
    if metric == "hessian":
        mean = lambda p, x, t: jnp.mean(family.nll(apply_fn(unravel(p), x), t))  # noqa: E731
        return jax.jit(jax.hessian(mean))(flat, x, targets)
    g = _per_example_grads(family, apply_fn, x, targets, unravel, flat)
    if metric == "covariance":  # eq. 12
        g = g - g.mean(0)
    return g.T @ g / N  # eq. 13


@pytest.mark.parametrize("name", ["gaussian", "categorical"])
@pytest.mark.parametrize("metric", ["fisher", "empirical_fisher", "covariance", "hessian"])
@pytest.mark.parametrize("shared", [True, False], ids=["same-batch", "other-batch"])
def test_loss_gradient_and_metric(x64, name, metric, shared):
    """(L, ∇L, M v) against value_and_grad and the dense metric, on the gradient batch itself
    (one shared linearization: one forward pass) and on another batch (two forward passes)."""
    family = FAMILIES[name]
    apply_fn, params, x, targets, flat, unravel, v = _problem(family)
    _, _, x2, targets2, *_ = _problem(family, seed=1)
    mx, mt = (x, targets) if shared else (x2, targets2)

    def run(params, x, targets, x2, targets2, v):
        metric_batch = (x, targets) if shared else (x2, targets2)
        loss, g, matvec = loss_gradient_and_metric(apply_fn, params, (x, targets), metric_batch,
                                                   family, metric=metric)
        return loss, g, matvec(v)

    args = (params, x, targets, x2, targets2, unravel(v))
    loss, g, mv = jax.jit(run)(*args)
    ref_loss, ref_g = jax.value_and_grad(
        lambda p: jnp.mean(family.nll(apply_fn(unravel(p), x), targets)))(flat)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-12)
    assert _rel(ravel_pytree(g)[0], ref_g) <= 1e-10
    dense = _dense_metric(metric, family, apply_fn, mx, mt, flat, unravel)
    assert _rel(ravel_pytree(mv)[0], dense @ v) <= 1e-10
    # the shared path linearizes once: the whole program runs the model's forward (tanh) once
    assert str(jax.make_jaxpr(run)(*args)).count("tanh") == (1 if shared else 2)


def test_loss_gradient_and_metric_batch_forms(x64):
    """Inputs alone, (inputs,) and None name the gradient batch's inputs (sharing its targets for
    the metrics that need them); other inputs without targets are refused for those metrics."""
    family = FAMILIES["categorical"]
    apply_fn, params, x, targets, flat, unravel, v = _problem(family)
    x2 = _problem(family, seed=1)[2]
    dense = _dense_metric("empirical_fisher", family, apply_fn, x, targets, flat, unravel)
    for metric_batch in (x, (x,), None):
        _, _, matvec = loss_gradient_and_metric(apply_fn, params, (x, targets), metric_batch,
                                                family, metric="uncentred")
        assert _rel(ravel_pytree(matvec(unravel(v)))[0], dense @ v) <= 1e-10
    with pytest.raises(ValueError, match="targets"):
        loss_gradient_and_metric(apply_fn, params, (x, targets), (x2,), family, "hessian")
    with pytest.raises(ValueError, match="unknown metric"):
        loss_gradient_and_metric(apply_fn, params, (x, targets), x, family, "natural")
