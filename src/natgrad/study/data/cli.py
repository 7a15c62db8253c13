"""`python -m natgrad.study data sheet --spec JSON --out OUT.png`: a few source images under each
NISTP module alone and under both presets (the data figure of the report).

`--spec` is a JSON object {dataset, datasets, image_size, c_max, data_seed}: the source's name, the
`datasets:` entries, the image size, the modules' maximum complexity and the seed of the draw.
"""
from __future__ import annotations

import argparse
import json


def sheet(cfg, out, columns=8):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from natgrad.study import figures
    from natgrad.study.data import load_source, nistp
    from natgrad.study.data.types import fit_images

    plt = figures.pyplot()

    source = load_source(cfg["dataset"], cfg["datasets"], seed=cfg["data_seed"])
    rng = np.random.default_rng(cfg["data_seed"])
    pick = rng.choice(len(source), size=min(columns, len(source)), replace=False)
    images = jnp.asarray(fit_images(source.images[pick], cfg["image_size"]))
    bank = jnp.asarray(fit_images(source.images[rng.choice(len(source), 64)], cfg["image_size"]))
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(cfg["data_seed"]), i))(
        jnp.arange(len(pick)))
    c = float(cfg["c_max"])
    rows = [("source", images)]
    for name in nistp.ORDER:
        one = jax.jit(lambda x, k, b, name=name: nistp.apply_module(name, x, k, c, bank=b))
        rows.append((f"{name} (c={c:g})", one(images, keys, bank)))
    for preset in nistp.PRESETS:
        both = jax.jit(lambda x, k, b, preset=preset: nistp.deform(x, k, preset, c, bank=b))
        rows.append((f"{preset} (c_max={c:g})", both(images, keys, bank)))
    fig, axes = plt.subplots(len(rows), len(pick), figsize=(0.9 * len(pick) + 2.2, 0.9 * len(rows)),
                             squeeze=False)
    for r, (label, batch) in enumerate(rows):
        batch = np.asarray(batch)
        for k in range(len(pick)):
            ax = axes[r, k]
            ax.imshow(batch[k], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"NISTP modules on {cfg['dataset']}: each module alone, then both presets",
                 fontsize=9)
    fig.tight_layout()
    figures.save(fig, out, 100)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="natgrad-study data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sheet", help="PNG sheet of the NISTP modules and presets")
    p.add_argument("--spec", required=True, help="JSON: {dataset, datasets, image_size, c_max, data_seed}")
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    sheet(json.loads(args.spec), args.out)
