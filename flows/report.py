"""Run folders and their HTML report: ``outputs/<run-id>/index.html``, a gallery a person opens."""
from __future__ import annotations

import datetime as dt
import html
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from generators.core.checkpoint import atomic_write_bytes


def new_run_dir(root: str | os.PathLike = "outputs", name: str = "run") -> Path:
    """A fresh ``root/<timestamp>-<name>-<id>`` folder."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{stamp}-{name}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True, exist_ok=False)
    return path


MEDIA_KINDS: tuple[str, ...] = ("image", "gif", "video", "mesh", "svg")


@dataclass
class GalleryRow:
    """One row of media with captions (paths relative to the report).

    ``kind`` says how the report shows them: ``image`` (small pixel-art PNGs, enlarged without
    smoothing), ``gif`` (animated GIFs), ``video`` (MP4, played in place), ``mesh`` (rendered previews
    of a mesh) or ``svg`` (vector drawings such as floorplans).
    """

    title: str
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    note: str = ""
    kind: str = "image"

    def __post_init__(self) -> None:
        if self.kind not in MEDIA_KINDS:
            raise ValueError(f"kind must be one of {MEDIA_KINDS}, got {self.kind!r}")

    def to_dict(self) -> dict:
        return {"title": self.title, "images": [list(i) for i in self.images], "note": self.note, "kind": self.kind}

    @classmethod
    def from_dict(cls, row: dict) -> "GalleryRow":
        return cls(row["title"], [tuple(i) for i in row.get("images", [])], row.get("note", ""), row.get("kind", "image"))


def _media(src: str, caption: str, kind: str) -> str:
    src, cap = html.escape(src), html.escape(caption)
    if kind == "video":
        body = f"<video class='video' src='{src}' controls autoplay loop muted playsinline></video>"
    else:
        body = f"<img class='{kind}' src='{src}' alt='{cap}'>"
    return f"<figure>{body}<figcaption>{cap}</figcaption></figure>"


@dataclass
class Report:
    """A report: a title, sections of metric tables and gallery rows."""

    title: str
    rows: list[GalleryRow] = field(default_factory=list)
    tables: list[tuple[str, dict]] = field(default_factory=list)

    def to_html(self) -> str:
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
            "figure{display:inline-block;margin:4px;text-align:center;font-size:12px}"
            "img,video{border:1px solid #ccc}"
            "img.image{image-rendering:pixelated;width:96px;height:96px}"
            "img.gif{image-rendering:pixelated;width:128px;height:128px}"
            "video.video{width:192px}img.mesh{width:192px;height:192px}img.svg{width:256px;background:#fff}"
            "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:4px 8px}"
            ".note{color:#555}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for name, table in self.tables:
            parts.append(f"<h2>{html.escape(name)}</h2><table>")
            parts.extend(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in table.items())
            parts.append("</table>")
        for row in self.rows:
            parts.append(f"<h2>{html.escape(row.title)}</h2>")
            if row.note:
                parts.append(f"<p class='note'>{html.escape(row.note)}</p>")
            parts.append("<div>")
            parts.extend(_media(src, cap, row.kind) for src, cap in row.images)
            parts.append("</div>")
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def write(self, run_dir: str | os.PathLike) -> Path:
        path = Path(run_dir) / "index.html"
        atomic_write_bytes(path, self.to_html().encode())
        return path
