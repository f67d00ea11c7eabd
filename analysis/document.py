"""A small document model rendered to both Markdown and HTML.

The report is built once as a list of blocks (headings, paragraphs, bullet lists, tables,
figures) so its Markdown and HTML versions always say the same thing; no Markdown
converter is needed. Text is plain (escaped in HTML); tables are DataFrames of strings.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .note { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 3px; }
"""


@dataclass
class Document:
    """Blocks in order; `markdown()` and `html()` render the same content."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("bullets", list(items)))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame.astype(str)))

    def figure(self, path: str, caption: str) -> None:
        """`path` relative to the report (the PNG sits beside it)."""
        self.blocks.append(("figure", (path, caption)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, content in self.blocks:
            if kind == "heading":
                level, text = content
                out += ["#" * level + " " + text, ""]
            elif kind == "paragraph":
                out += [content, ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in content] + [""]
            elif kind == "table":
                out += [content.to_markdown(index=False), ""]
            elif kind == "figure":
                path, caption = content
                out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for kind, content in self.blocks:
            if kind == "heading":
                level, text = content
                out.append(f"<h{level}>{html.escape(text)}</h{level}>")
            elif kind == "paragraph":
                out.append(f"<p>{html.escape(content)}</p>")
            elif kind == "bullets":
                items = "".join(f"<li>{html.escape(item)}</li>" for item in content)
                out.append(f"<ul>{items}</ul>")
            elif kind == "table":
                out.append(content.to_html(index=False, border=0, escape=True))
            elif kind == "figure":
                path, caption = content
                out.append(
                    f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        out.append("</body></html>")
        return "\n".join(out)
