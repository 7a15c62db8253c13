"""`natgrad-study order data`: the train part, held-out and validation stores of the order experiment."""
import json

import numpy as np

from natgrad.study.cli import main
from natgrad.study.data import load_source
from natgrad.study.data.types import DIGITS, fit_images
from natgrad.study.order.problem import read_set
from natgrad.study.order.spec import stream_seeds

CONFIG = {"dataset": "digits", "preset": "pnist07", "c_max": 0.5, "image_size": 32, "data_seed": 3,
          "heldout_size": 40, "validation_size": 24, "heldout_fraction": 0.1,
          "validation_fraction": 0.1}


def _nearest(images, reference):
    """For each image, the index of the nearest reference image and the squared distance to it."""
    a = images.reshape(len(images), -1).astype(np.float64)
    b = reference.reshape(len(reference), -1).astype(np.float64)
    d = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return d.argmin(1), d.min(1)


def test_order_data_written_with_provenance(tmp_path):
    paths = {part: tmp_path / f"{part}.zarr" for part in ("train", "heldout", "validation")}
    main(["order", "data", "--config", json.dumps(CONFIG),
          "--datasets", json.dumps({"digits": {"format": "digits"}}),
          *[arg for part, path in paths.items() for arg in (f"--{part}", str(path))]])
    sets = {part: read_set(path) for part, path in paths.items()}

    for part, n in (("heldout", 40), ("validation", 24)):
        x, y, attrs = sets[part]
        assert x.shape == (n, 32, 32) and x.dtype == np.float32
        assert y.shape == (n,) and 0 <= y.min() and y.max() < 10
        assert 0.0 <= x.min() and x.max() <= 1.0
        for key in ("source", "preset", "seed", "c_max", "package_versions", "git_commit",
                    "config", "classes", "data_seed"):
            assert key in attrs, (part, key)
        assert attrs["source"] == "digits" and attrs["c_max"] == 0.5 and attrs["data_seed"] == 3
        assert attrs["part"] == part and attrs["seed"] == stream_seeds(3)[part]
        assert json.loads(attrs["package_versions"])["jax"] and tuple(attrs["classes"]) == DIGITS
        assert json.loads(attrs["config"]) == CONFIG
    assert not np.array_equal(sets["heldout"][0][:24], sets["validation"][0])

    # the train part: the clean (undeformed) source images not held out, fitted to 32 x 32
    x, y, attrs = sets["train"]
    assert attrs["part"] == "train" and attrs["deformed"] == 0 and attrs["source"] == "digits"
    assert x.shape == (1797 - 180 - 180, 32, 32) and x.dtype == np.float32
    digits = load_source("digits")
    nearest, dist = _nearest(x, fit_images(digits.images, 32))
    assert dist.max() < 1e-8
    assert np.array_equal(y, digits.labels[nearest])
    assert not list(tmp_path.glob(".*.tmp"))                  # written atomically

