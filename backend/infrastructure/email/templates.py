"""Email bodies from Jinja2 templates (ADR 0015): `<name>.subject.txt`, `<name>.txt` and
`<name>.html` in the `templates/` folder beside this module.

HTML is autoescaped (order notes and rejection reasons are user text); the plain-text and
subject templates are not (escaping would show `&amp;` to the reader). Undefined variables
are errors, so a template and the context built for it cannot silently drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from backend.domain.email import RenderedEmail

TEMPLATE_DIR = Path(__file__).parent / "templates"


class JinjaEmailRenderer:
    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self._env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
        )

    def render(self, template: str, context: Mapping[str, Any]) -> RenderedEmail:
        subject = self._env.get_template(f"{template}.subject.txt").render(context)
        return RenderedEmail(
            subject=" ".join(subject.split()),  # one line, whatever the template's layout
            text=self._env.get_template(f"{template}.txt").render(context),
            html=self._env.get_template(f"{template}.html").render(context),
        )
