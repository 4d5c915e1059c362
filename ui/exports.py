"""Downloads built from a Source: the postmortem bundle as one zip."""

from __future__ import annotations

import io
import zipfile

from analyzer.source import Source


def postmortem_zip(
    source: Source, entity: str, start: int | None, end: int | None, spec: str | None
) -> bytes:
    """`seqtrace postmortem` for one entity, zipped in a folder ``postmortem-<entity>/``:
    postmortem.md with the Mermaid diagram inline, plus .svg/.puml/.mmd/.json, and the SLO
    impact when an SLO spec is given. Built on click (a deferred download) through the
    same Source as the page, so it works against a file and against a server alike."""
    from analyzer.postmortem import build_postmortem, entity_slug

    bundle = build_postmortem(source, [entity], start, end, slo_spec=spec, slo_spec_name="ui")
    folder = f"postmortem-{entity_slug(entity)}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(bundle.files.items()):
            archive.writestr(f"{folder}/{name}", text)
    return buffer.getvalue()
