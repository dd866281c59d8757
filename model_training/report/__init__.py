"""The model report (issue 14): `build.build_report` writes one self-contained HTML file; each
section is a small module (metrics, mistakes, lucky, neither, new_class), page.py renders.

Nothing is imported here: `memebot`'s CLI reads `errors` without loading torch."""
