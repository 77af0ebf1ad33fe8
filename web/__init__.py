"""The web console's static files (HTML, ES modules, CSS, the vendored Preact + htm).

A package only so that the files ship as package data in the wheel and the image and can
be found with `CONSOLE_DIR` wherever the project is installed (docs/adr/0018)."""

from pathlib import Path

CONSOLE_DIR = Path(__file__).resolve().parent
