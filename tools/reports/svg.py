"""A small SVG writer for the project's pictures (plan chart, network diagram): no dependency, stable output.

Coordinates are rounded to one decimal so that the same input always writes the same bytes (the committed pictures
are compared with freshly drawn ones in the tests).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
# Fixed-width estimate of a glyph, as a share of the font size: enough to keep labels inside their boxes.
CHAR_WIDTH = 0.6


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH


class Svg:
    def __init__(self, width: float, height: float, title: str) -> None:
        self.width = width
        self.height = height
        self.title = title
        self.parts: list[str] = []

    def _attrs(self, **attrs: object) -> str:
        out = []
        for key, value in attrs.items():
            if value is None or value is False:
                continue
            name = key.rstrip("_").replace("_", "-")
            shown = _n(value) if isinstance(value, float | int) and not isinstance(value, bool) else str(value)
            out.append(f"{name}={quoteattr(shown)}")
        return " ".join(out)

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        fill: str = "none",
        stroke: str | None = None,
        stroke_width: float | None = None,
        dash: str | None = None,
        rx: float | None = None,
    ) -> None:
        attrs = self._attrs(
            x=x,
            y=y,
            width=w,
            height=h,
            rx=rx,
            fill=fill,
            stroke=stroke,
            stroke_width=stroke_width,
            stroke_dasharray=dash,
        )
        self.parts.append(f"<rect {attrs}/>")

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        stroke: str = "#555",
        width: float = 1.0,
        dash: str | None = None,
    ) -> None:
        attrs = self._attrs(x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, stroke_width=width, stroke_dasharray=dash)
        self.parts.append(f"<line {attrs}/>")

    def text(
        self,
        x: float,
        y: float,
        content: str,
        size: float = 12,
        anchor: str = "start",
        weight: str | None = None,
        fill: str = "#222",
        style: str | None = None,
    ) -> None:
        attrs = self._attrs(
            x=x,
            y=y,
            font_size=size,
            text_anchor=anchor if anchor != "start" else None,
            font_weight=weight,
            fill=fill,
            font_style=style,
        )
        self.parts.append(f"<text {attrs}>{escape(content)}</text>")

    def render(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(self.width)}" height="{_n(self.height)}" '
            f'viewBox="0 0 {_n(self.width)} {_n(self.height)}" font-family={quoteattr(FONT)}>'
        )
        body = [head, f"<title>{escape(self.title)}</title>", '<rect width="100%" height="100%" fill="#fff"/>']
        return "\n".join([*body, *self.parts, "</svg>"]) + "\n"
