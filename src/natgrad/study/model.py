"""The one model factory of the study: a config's `model:` entry → a flax model (logits out)."""
from __future__ import annotations

from natgrad import models

ARCHITECTURES = {"mlp": models.MLP, "mnist_convnet": models.MNISTConvNet,
                 "tfd_convnet": models.TFDConvNet, "convnet": models.ConvNet}


def build_model(model_cfg, num_classes):
    """The model `model_cfg["kind"]` names (mlp, mnist_convnet, tfd_convnet, convnet), with
    `num_classes` outputs; list-valued settings (hidden, features, ...) become tuples."""
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in model_cfg.items()}
    kind = cfg.pop("kind")
    if kind not in ARCHITECTURES:
        raise ValueError(f"model.kind {kind!r} is not one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[kind](outputs=num_classes, **cfg)
