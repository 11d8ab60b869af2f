"""QR codes for the grid notice board (扫码加入网格)."""

from __future__ import annotations

import io

import segno


def qr_png(link: str, *, scale: int = 12, border: int = 4) -> bytes:
    """A printable PNG of ``link`` (error correction M: survives a little wear and dirt)."""
    code = segno.make(link, error="m", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()
