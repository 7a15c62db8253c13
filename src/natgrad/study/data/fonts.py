"""Printed characters 0-9A-Za-z rendered from the TrueType fonts matplotlib ships, as NISTP's font
source did: each glyph is drawn large, cropped to its ink, fitted into 7/8 of the image (keeping its
aspect ratio) and centred, white on black like NIST's scans.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from natgrad.study.data.types import NIST62, DataError, Source

# text fonts of matplotlib/mpl-data/fonts/ttf (the symbol-only STIX and cm fonts are left out)
DEFAULT_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf",
    "cmti10.ttf", "cmb10.ttf",
)


def font_dir():
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _font_path(font):
    path = Path(font)
    if not path.is_absolute() and not path.exists():
        path = font_dir() / font
    if not path.exists():
        raise DataError(f"{font}: font file not found (looked in {font_dir()})")
    return path


def render_glyph(font_path, char, size=32, render_px=96):
    """One character as a (size, size) float32 image in [0, 1], or None when the font lacks it."""
    from matplotlib.ft2font import FT2Font
    from PIL import Image, ImageDraw, ImageFont

    if FT2Font(str(font_path)).get_char_index(ord(char)) == 0:
        return None
    font = ImageFont.truetype(str(font_path), render_px)
    canvas = Image.new("L", (3 * render_px, 3 * render_px), 0)
    ImageDraw.Draw(canvas).text((render_px, render_px), char, fill=255, font=font)
    ink = np.asarray(canvas)
    rows, cols = np.nonzero(ink > 0)
    if rows.size == 0:
        return None
    glyph = Image.fromarray(ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
    box = size * 7 / 8
    scale = box / max(glyph.size)
    w, h = max(1, round(glyph.size[0] * scale)), max(1, round(glyph.size[1] * scale))
    glyph = glyph.resize((w, h), Image.Resampling.LANCZOS)
    out = np.zeros((size, size), np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    out[top:top + h, left:left + w] = np.asarray(glyph, np.float32) / 255.0
    return np.clip(out, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _render(fonts, size, classes):
    images, labels = [], []
    for font in fonts:
        path = _font_path(font)
        for label, char in enumerate(classes):
            glyph = render_glyph(path, char, size)
            if glyph is not None:
                images.append(glyph)
                labels.append(label)
    if not images:
        raise DataError(f"fonts {', '.join(fonts)}: no glyph rendered")
    return np.stack(images), np.asarray(labels, np.int32)


def render_source(*, name="fonts", fonts=None, size=32, classes=None):
    """A Source of the characters `classes` (default 0-9A-Za-z, NIST's 62 classes) rendered from
    each of `fonts` (file names in matplotlib's font folder, or paths; default: its 21 text TTFs)."""
    fonts = tuple(fonts) if fonts else DEFAULT_FONTS
    classes = tuple(classes) if classes else NIST62
    images, labels = _render(fonts, int(size), classes)
    return Source(name, images.copy(), labels.copy(), classes)
