#!/usr/bin/env python3
"""Renders the SVG plots of a `laser adapt` output folder to PNG beside them, to look at.

Usage: scripts/render-plots.py DIR   (needs `pip install resvg-py`; uses DejaVu Sans if present)
"""
import glob, os, sys

try:
    import resvg_py
except ImportError:
    sys.exit("error: needs resvg-py (pip install resvg-py)")
if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
    sys.exit("usage: scripts/render-plots.py DIR")
fonts = [d for d in ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts"] if os.path.isdir(d)]
for svg in sorted(glob.glob(os.path.join(sys.argv[1], "*.svg"))):
    png = resvg_py.svg_to_bytes(svg_path=svg, font_dirs=fonts, sans_serif_family="DejaVu Sans", zoom=1.5)
    out = svg[:-4] + ".png"
    with open(out, "wb") as f:
        f.write(bytes(png))
    print(out)
