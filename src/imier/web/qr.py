"""QR codes as SVG, drawn on the node (the Python ``qrcode`` package, pure Python).

The member page shows one for linking a second phone (``GET /api/qr``): the
phone asks its own node for the picture, so nothing is fetched elsewhere and
no QR library ships to the browser.
"""

from __future__ import annotations

__all__ = ["MAX_TEXT", "matrix", "svg"]

MAX_TEXT = 512  # bytes of UTF-8: a link address is about 110


def matrix(text: str, *, border: int = 4) -> list[list[bool]]:
    """The modules of the QR code of ``text``, quiet border included (True: dark)."""
    import qrcode  # type: ignore[import-untyped]

    qr = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    return [[bool(v) for v in row] for row in qr.get_matrix()]


def svg(text: str) -> str:
    """An SVG of one path, one unit per module: crisp at any size."""
    m = matrix(text)
    n = len(m)
    d = "".join(f"M{x} {y}h1v1h-1z" for y, row in enumerate(m) for x, dark in enumerate(row) if dark)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" width="{n * 8}" '
            f'height="{n * 8}" shape-rendering="crispEdges"><rect width="{n}" height="{n}" fill="#fff"/>'
            f'<path d="{d}" fill="#000"/></svg>')
