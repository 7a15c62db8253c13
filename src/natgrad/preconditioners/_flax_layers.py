"""Flax layers of a model, found by method interception, for `kronecker.KroneckerFactors`.

flax's method interception (`flax.linen.intercept_methods`) finds every `nn.Dense` / `nn.Conv`
call of `apply_fn` without a graph matcher or a registration inside the model: the interceptor
records the layer's input and adds a zero perturbation to its output, and the VJP of the summed
sampled NLL with respect to the perturbations is, row by row, the per-example g (example i's loss
depends only on its own row). A layer is matched to its parameters by its module path
(`params['params'][*path]['kernel' / 'bias']`): a leaf named `kernel` with ≥ 2 axes and its
sibling `bias` of shape (out,). A convolution's input becomes its patches (`patches`), so that
the convolution is a matrix product with the reshaped kernel.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.linear import canonicalize_padding
from jax import lax

__all__ = ["Layer", "LayerCall", "key_name", "leaves_by_path", "find_layers", "patches",
           "intercepted"]


class Layer(NamedTuple):
    """A kernel (with its bias) in the params: where it is and the sizes of its factors."""

    path: tuple  # keys of the layer's node in params
    bias: bool
    rows: int  # dim A = prod(kernel.shape[:-1]) (+1 with a bias)
    cols: int  # dim G = kernel.shape[-1]


class LayerCall(NamedTuple):
    """Static facts about one intercepted layer call (collected at trace time)."""

    layer: Optional[str]  # name of the matched Layer, None if it cannot be factored
    conv: Optional[tuple]  # (window, strides, padding, input_dilation, kernel_dilation) or None


def key_name(key):
    """The plain name of one key of a pytree path (dict key, attribute name or index)."""
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return getattr(key, attr)
    return str(key)


def leaves_by_path(tree) -> dict:
    """{(key names along the path): leaf} for every leaf of `tree`."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {tuple(key_name(k) for k in path): leaf for path, leaf in flat}


def find_layers(params) -> dict:
    """{name: Layer} for every `kernel` leaf with ≥ 2 axes (flax's Dense and Conv naming)."""
    leaves = leaves_by_path(params)
    layers = {}
    for path, leaf in leaves.items():
        if not path or path[-1] != "kernel" or jnp.ndim(leaf) < 2:
            continue
        node = path[:-1]
        bias = leaves.get(node + ("bias",))
        has_bias = bias is not None and tuple(jnp.shape(bias)) == tuple(jnp.shape(leaf)[-1:])
        layers["/".join(map(str, node))] = Layer(
            node, has_bias, math.prod(jnp.shape(leaf)[:-1]) + int(has_bias), jnp.shape(leaf)[-1])
    return layers


def _match(layers: dict, module_path: tuple) -> Optional[str]:
    """The layer whose node is the module's path, in `params` or in `params['params']`."""
    for name, layer in layers.items():
        if layer.path == module_path or layer.path == ("params",) + module_path:
            return name
    return None


def _conv_geometry(module, x) -> Optional[tuple]:
    """The patch geometry of a flax `nn.Conv` call, or None where it is not factored here."""
    window = (module.kernel_size,) if isinstance(module.kernel_size, int) else \
        tuple(module.kernel_size)
    if (x.ndim != len(window) + 2 or module.feature_group_count != 1 or module.mask is not None
            or not module.shared_weights or module.conv_general_dilated is not None
            or module.conv_general_dilated_cls is not None):
        return None

    def broadcast(v):
        v = 1 if v is None else v
        return (v,) * len(window) if isinstance(v, int) else tuple(v)

    padding = canonicalize_padding(module.padding, len(window))
    if isinstance(padding, list):
        padding = tuple(tuple(p) for p in padding)
    return (window, broadcast(module.strides), padding, broadcast(module.input_dilation),
            broadcast(module.kernel_dilation))


def patches(x, geometry):
    """(n, *out_spatial, prod(window)·c) input patches, features ordered like the kernel's rows
    (*window, in_channels), so patches @ kernel.reshape(-1, out) is the convolution."""
    window, strides, padding, input_dilation, kernel_dilation = geometry
    if padding in ("CIRCULAR", "REFLECT", "CAUSAL"):
        dilated = [(k - 1) * d + 1 for k, d in zip(window, kernel_dilation)]
        if padding == "CAUSAL":
            pads = [(0, 0), (dilated[0] - 1, 0), (0, 0)]
        else:
            pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in dilated] + [(0, 0)]
        mode = {"CIRCULAR": "wrap", "REFLECT": "reflect", "CAUSAL": "constant"}[padding]
        x, padding = jnp.pad(x, pads, mode=mode), "VALID"
    spatial = "HWDXYZ"[:len(window)]
    spec = "N" + spatial + "C"
    p = lax.conv_general_dilated_patches(
        x, window, strides, padding, lhs_dilation=input_dilation, rhs_dilation=kernel_dilation,
        dimension_numbers=(spec, "OI" + spatial, spec), precision=lax.Precision.HIGHEST)
    # lax orders the patch features (in_channels, *window); the kernel's rows are (*window, c)
    c, k = x.shape[-1], math.prod(window)
    p = p.reshape(p.shape[:-1] + (c, k))
    return jnp.swapaxes(p, -1, -2).reshape(p.shape[:-2] + (k * c,))


def intercepted(apply_fn, params, inputs, perturbations, calls, layers):
    """apply_fn(params, inputs) with every flax Dense/Conv call intercepted: its input recorded,
    its output plus perturbations[k] (the k-th call's; none when `perturbations` is None).
    Returns (r, [(input, output)] per call); appends a `LayerCall` per call to `calls` (a list) or
    leaves it alone (None)."""
    seen = []

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, (nn.Dense, nn.Conv)):
            return next_fun(*args, **kwargs)
        x = args[0] if args else kwargs["inputs"]
        out = next_fun(*args, **kwargs)
        if calls is not None:
            name = _match(layers, tuple(module.path))
            conv = _conv_geometry(module, x) if isinstance(module, nn.Conv) else None
            if isinstance(module, nn.Conv) and conv is None:
                name = None
            if isinstance(module, nn.Dense) and x.ndim < 2:
                name = None
            calls.append(LayerCall(name, conv))
        if perturbations is not None:
            out = out + perturbations[len(seen)].astype(out.dtype)
        seen.append((x, out))
        return out

    with nn.intercept_methods(interceptor):
        r = apply_fn(params, inputs)
    return r, seen
