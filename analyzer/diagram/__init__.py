"""Entity sequence diagrams: spans in, one :class:`Diagram` out, rendered five ways.

``build_diagram(spans, entity)`` builds the model (rules in docs/diagrams.md);
``render(diagram, fmt)`` draws it as ``mermaid``, ``plantuml``, ``svg``, ``json`` or
``markdown`` text; ``to_dict(diagram)`` is SPEC's JSON shape as data, for the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from analyzer.diagram import json as json_renderer
from analyzer.diagram import markdown, mermaid, plantuml, svg
from analyzer.diagram.build import build_diagram
from analyzer.diagram.json import to_dict
from analyzer.diagram.model import (
    Block,
    Diagram,
    Entity,
    Message,
    Note,
    Participant,
    Section,
)

__all__ = [
    "FORMATS",
    "Block",
    "Diagram",
    "Entity",
    "Message",
    "Note",
    "Participant",
    "Section",
    "build_diagram",
    "render",
    "to_dict",
]

_RENDERERS: Final[dict[str, Callable[[Diagram], str]]] = {
    "mermaid": mermaid.render,
    "plantuml": plantuml.render,
    "svg": svg.render,
    "json": json_renderer.render,
    "markdown": markdown.render,
}
FORMATS: Final = tuple(_RENDERERS)


def render(diagram: Diagram, fmt: str) -> str:
    """The diagram as text in ``fmt`` (one of :data:`FORMATS`); ValueError otherwise."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown diagram format {fmt!r}; use {', '.join(FORMATS)}") from None
    return renderer(diagram)
