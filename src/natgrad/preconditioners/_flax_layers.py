"""The layers of a model and their calls, found for `kronecker.KroneckerFactors`.

Three kinds of model, one record per layer call (its input, and a zero perturbation added to its
output, whose VJP of the summed sampled NLL is, row by row, the per-example g: example i's loss
depends only on its own row):

- flax linen: method interception (`flax.linen.intercept_methods`) sees every `nn.Dense` /
  `nn.Conv` call, matched to its parameters by its module path
  (`params['params'][*path]['kernel' / 'bias']`);
- flax nnx: every `nnx.Linear` call (its `__call__` wrapped while the model runs; nnx has no
  interception), matched by identity: the kernel the layer reads is the params leaf itself
  (`nnx.merge(graphdef, state)` keeps the state's arrays);
- plain functions: each dense layer declared by computing it with `dense_layer(x, kernel, bias)`,
  matched by identity like nnx (a kernel that is not a params leaf is refused).

A layer's parameters are a leaf named `kernel` with ≥ 2 axes (or an nnx `kernel` Variable, whose
leaf is `kernel/value`) and its sibling `bias` of shape (out,). A convolution's input becomes its
patches (`patches`), so that the convolution is a matrix product with the reshaped kernel.
"""
from __future__ import annotations

import contextlib
import math
from typing import NamedTuple, Optional

import flax.linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
from flax.linen.linear import canonicalize_padding
from jax import lax

__all__ = ["Layer", "LayerCall", "key_name", "leaves_by_path", "find_layers", "patches",
           "intercepted", "dense_layer"]

_RECORDERS = []  # the record function of the running `intercepted` call (innermost last)


class Layer(NamedTuple):
    """A kernel (with its bias) in the params: where it is and the sizes of its factors."""

    path: tuple  # keys of the layer's node in params
    kernel: tuple  # keys of the kernel leaf
    bias: Optional[tuple]  # keys of the bias leaf, None without a bias
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
    """{name: Layer} for every `kernel` leaf with ≥ 2 axes (flax's Dense, Conv and nnx.Linear
    naming; an nnx State's leaf is `kernel/value`)."""
    leaves = leaves_by_path(params)
    layers = {}
    for path, leaf in leaves.items():
        suffix = path[-1:] if path[-1:] == ("value",) else ()
        at = len(path) - len(suffix) - 1
        if at < 0 or path[at] != "kernel" or jnp.ndim(leaf) < 2:
            continue
        node = path[:at]
        bias = leaves.get(node + ("bias",) + suffix)
        has_bias = bias is not None and tuple(jnp.shape(bias)) == tuple(jnp.shape(leaf)[-1:])
        layers["/".join(map(str, node))] = Layer(
            node, path, node + ("bias",) + suffix if has_bias else None,
            math.prod(jnp.shape(leaf)[:-1]) + int(has_bias), jnp.shape(leaf)[-1])
    return layers


def dense_layer(inputs, kernel, bias=None):
    """inputs @ kernel (+ bias), a dense layer of a plain-function model declared to
    `KroneckerFactors`: `kernel` (and `bias`) must be the params' leaves themselves."""
    out = jnp.matmul(inputs, kernel, precision=lax.Precision.HIGHEST)
    if bias is not None:
        out = out + bias
    return _RECORDERS[-1](inputs, kernel, out, True) if _RECORDERS else out


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


@contextlib.contextmanager
def _nnx_linear_recorded(record):
    """Every `nnx.Linear` call inside the block passes (input, kernel, output) to `record`."""
    original = nnx.Linear.__call__

    def call(self, inputs, *args, **kwargs):
        return record(inputs, self.kernel.get_value(), original(self, inputs, *args, **kwargs),
                      False)

    nnx.Linear.__call__ = call
    try:
        yield
    finally:
        nnx.Linear.__call__ = original


def intercepted(apply_fn, params, inputs, perturbations, calls, layers):
    """apply_fn(params, inputs) with every layer call (flax linen Dense/Conv, nnx.Linear,
    `dense_layer`) intercepted: its input recorded, its output plus perturbations[k] (the k-th
    call's; none when `perturbations` is None). Returns (r, [(input, output)] per call); appends a
    `LayerCall` per call to `calls` (a list) or leaves it alone (None)."""
    seen = []
    leaves = leaves_by_path(params)
    by_id = {id(leaves[layer.kernel]): name for name, layer in layers.items()}

    def recorded(x, out, name, conv=None):
        if calls is not None:
            calls.append(LayerCall(name if x.ndim >= 2 else None, conv))
        if perturbations is not None:
            out = out + perturbations[len(seen)].astype(out.dtype)
        seen.append((x, out))
        return out

    def record(x, kernel, out, declared):  # nnx.Linear and dense_layer: matched by identity
        name = by_id.get(id(kernel))
        if name is not None and leaves[layers[name].kernel] is not kernel:
            name = None
        if name is None and declared:
            raise ValueError(
                f"dense_layer was given a kernel of shape {tuple(jnp.shape(kernel))} that is not "
                f"a leaf of params (kernels there: {', '.join(layers) or 'none'}): pass the "
                "params leaf itself, not a copy, cast or slice")
        return recorded(x, out, name)

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, (nn.Dense, nn.Conv)):
            return next_fun(*args, **kwargs)
        x = args[0] if args else kwargs["inputs"]
        out = next_fun(*args, **kwargs)
        name, conv = _match(layers, tuple(module.path)), None
        if isinstance(module, nn.Conv):
            conv = _conv_geometry(module, x)
            name = name if conv is not None else None
        return recorded(x, out, name, conv)

    _RECORDERS.append(record)
    try:
        with nn.intercept_methods(interceptor), _nnx_linear_recorded(record):
            r = apply_fn(params, inputs)
    finally:
        _RECORDERS.pop()
    return r, seen
