"""Each NISTP module's parameter law, checked over many draws against ../shared/DESIGN.md § 3
(Bengio et al. 2011's generator): Kolmogorov-Smirnov tests against the stated continuous laws,
exact probabilities for the discrete ones. A law broken by a factor or a shifted range fails by
many standard errors; a correct one passes (fixed keys: the test is deterministic)."""
import math

import jax
import numpy as np
import pytest
from scipy import stats

from natgrad.study.data.nistp import C_MAX, MODULES, ORDER
from natgrad.study.data.nistp.pipeline import draw_parameters

N = 20000
SIZE = 32
C = 0.6
P_MIN = 1e-4  # KS p-value below which a law is rejected


def draws(name, c=C, n=N):
    """`n` parameter draws of module `name` at complexity `c`, as numpy arrays."""
    keys = jax.random.split(jax.random.key(ORDER.index(name)), n)
    params = jax.jit(jax.vmap(lambda k: MODULES[name].draw(k, c, SIZE, 8)))(keys)
    return jax.tree.map(np.asarray, params)


def uniform_ok(x, low, high):
    return stats.kstest(np.ravel(x), "uniform", args=(low, high - low)).pvalue > P_MIN


def frequency_ok(hits, p, n):
    """An observed frequency within 5 standard errors of probability p."""
    return abs(hits / n - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_complexity_and_application_probabilities():
    """c ~ U(0, c_max) per module and sample; the optional modules apply with their probabilities."""
    expected = {"scratches": 0.15, "occlusion": 0.4, "pixel_permutation": 0.2,
                "gaussian_noise": 0.3, "salt_pepper": 0.25, "gaussian_smudge": 0.25}
    keys = jax.random.split(jax.random.key(0), N)
    for i, name in enumerate(ORDER):
        c, on, _ = draw_parameters(MODULES[name], i, keys, C_MAX, SIZE, 8)
        assert uniform_ok(c, 0.0, C_MAX), name
        assert frequency_ok(np.asarray(on).sum(), expected.get(name, 1.0), N), name


def test_slant_angle_uniform_up_to_c_with_a_random_sign():
    angle = draws("slant")["angle"]
    assert uniform_ok(np.abs(angle), 0.0, C)
    assert frequency_ok((angle > 0).sum(), 0.5, N)


def test_thickness_erodes_and_dilates_with_the_stated_probabilities():
    op = draws("thickness")["op"]
    ne, nd = math.ceil(5 * C), math.ceil(9 * C)
    for value, count in ((1, ne), (2, nd), (0, 1)):
        assert frequency_ok((op == value).sum(), count / (ne + nd + 1), N), value


def test_affine_coefficients():
    abcdef = draws("affine")["abcdef"]
    for j, (base, scale) in enumerate([(1, .8), (0, .8), (0, 9), (0, .8), (1, .8), (0, 9)]):
        half = 0.5 * scale * C
        assert uniform_ok(abcdef[:, j], base - half, base + half), j


def test_elastic_level_and_unit_variance_field():
    p = draws("elastic", c=0.65, n=2000)
    assert np.all(p["level"] == 6)  # floor(10 c): c' = (6/10)^(1/3)
    z = p["z"].ravel()
    assert abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.02


def test_motion_blur_length_angle_and_pinch():
    from natgrad.study.data.nistp.filters import BLUR_R

    p = draws("motion_blur_pinch")
    length = p["length"]
    assert uniform_ok(p["pinch"], -C, 0.7 * C)
    assert uniform_ok(p["angle"], 0.0, 2 * math.pi)
    # |round(N(0, 3c))| (capped): P(length = k) from the normal law
    sd = 3 * C
    for k in range(4):
        lo, hi = max(k - 0.5, 0.0), k + 0.5
        prob = 2 * (stats.norm.cdf(hi / sd) - stats.norm.cdf(lo / sd)) if k else \
            stats.norm.cdf(0.5 / sd) - stats.norm.cdf(-0.5 / sd)
        assert frequency_ok((length == k).sum(), prob, N), k
    assert length.max() <= 2 * BLUR_R


def test_occlusion_half_extent():
    """Each of the four half-extents is the integer part of |N(floor(8c), 2)|, at most 15."""
    ext = draws("occlusion")["extent"]
    mu, sd = math.floor(8 * C), 2.0
    flat = ext.ravel()
    for k in range(0, 9):
        prob = (stats.norm.cdf((k + 1 - mu) / sd) - stats.norm.cdf((k - mu) / sd)
                + stats.norm.cdf((-k - mu) / sd) - stats.norm.cdf((-k - 1 - mu) / sd))
        # an all-zero draw gets one side set to 1: shifts at most P(all four 0) of the mass
        assert abs((flat == k).mean() - prob) < 5 * math.sqrt(prob / flat.size) + 2e-3, k
    assert flat.max() <= 15


def test_pixel_permutation_swaps():
    flags = draws("pixel_permutation", n=2000)["flags"]
    swaps = math.floor(256 * C / 3) * 4
    assert frequency_ok(flags.sum(), swaps / (SIZE * SIZE / 2), flags.size)


def test_gaussian_noise_level():
    noise = draws("gaussian_noise", n=500)["noise"]
    assert abs(noise.std() / (C / 10) - 1) < 0.02 and abs(noise.mean()) < 1e-3


def test_salt_and_pepper_fraction_and_values():
    p = draws("salt_pepper", n=500)
    assert frequency_ok(p["hit"].sum(), C / 5, p["hit"].size)
    assert uniform_ok(p["value"][:50], 0.0, 1.0)


def test_background_contrast():
    assert uniform_ok(draws("background", n=5000)["contrast"], 1 - C, 1.0)


def test_smudge_centres_kernel_and_sigma():
    p = draws("gaussian_smudge")
    top = math.floor(10 * C)  # 10 c = 6 here: n - 3 = floor(6 U) is uniform on 0..5
    for k in range(top):
        assert frequency_ok((p["n"] == 3 + k).sum(), 1 / top, N), k
    assert uniform_ok(p["sigma"], 2.0, 2.0 + 6 * C)
    assert p["kernel"].min() >= 12 and p["kernel"].max() <= 12 + math.floor(20 * C)


def test_scratch_count():
    n = draws("scratches")["n"]
    for k, prob in ((1, 0.5), (2, 0.3), (3, 0.2)):
        assert frequency_ok((n == k).sum(), prob, N), k


def test_contrast_polarity_and_range():
    p = draws("contrast")
    assert frequency_ok(p["flip"].sum(), 0.5, N)
    assert uniform_ok(p["range"], 1 - 0.85 * C, 1.0)


@pytest.mark.parametrize("law", ["slant", "affine"])
def test_a_wrong_law_is_rejected(law):
    """The checks have power: the same draws fail against a law with a 10 % larger range."""
    if law == "slant":
        assert not uniform_ok(np.abs(draws("slant")["angle"]), 0.0, 1.1 * C)
    else:
        assert not uniform_ok(draws("affine")["abcdef"][:, 2], -0.55 * 9 * C, 0.55 * 9 * C)
