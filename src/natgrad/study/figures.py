"""The one plotting setup of every experiment's figures: matplotlib's Agg backend (jobs have no
display), a seaborn theme where an experiment has `plot:` settings, and atomic saving (a killed job
never leaves half a figure for Snakemake to take as done)."""
from __future__ import annotations


def pyplot(theme=None):
    """`matplotlib.pyplot` on the Agg backend; `theme` ({style, context, palette}) sets seaborn's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if theme is not None:
        import seaborn as sns

        sns.set_theme(style=theme["style"], context=theme["context"], palette=theme["palette"])
    return plt


def save(fig, path, dpi, **savefig):
    """Write `fig` to `path` (its format from the suffix) atomically, and close it."""
    from natgrad.study.stores import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=str(path).rsplit(".", 1)[-1], **savefig)
    pyplot().close(fig)
