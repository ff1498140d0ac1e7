"""How menu bodies are compressed: published menus are stored gzip-compressed, and the warm
path's cache keeps every menu that way too, so both make and read the same bytes here."""

from __future__ import annotations

import gzip
import zlib

from zlib_ng import zlib_ng

# Compression of published and cached bodies: paid once per menu version, so the highest,
# up to `LARGE_BODY` bytes; beyond, level 6 takes half the time for 10% more bytes (a
# 4.8 MB menu: 45 ms instead of 103 ms).
GZIP_LEVEL = 9
# zlib's window bits for a gzip stream (header and trailer).
GZIP_WBITS = 16 + zlib.MAX_WBITS
LARGE_BODY = 1024 * 1024
LARGE_BODY_GZIP_LEVEL = 6
# Answers made per request on the event loop (a filter of a cached menu): zlib-ng at level
# 6, a fifth of the time of `compress` for some 15% more bytes (the demo menu: 0.07 ms and
# 2,757 bytes against 0.38 ms and 2,353).
FAST_GZIP_LEVEL = 6


def compress(body: bytes) -> bytes:
    """`body` gzip-compressed as presto stores it (no timestamp: the same body, the same
    bytes)."""
    level = GZIP_LEVEL if len(body) <= LARGE_BODY else LARGE_BODY_GZIP_LEVEL
    return gzip.compress(body, compresslevel=level, mtime=0)


def compress_fast(body: bytes) -> bytes:
    """`body` gzip-compressed for an answer made per request (no timestamp either)."""
    return zlib_ng.compress(body, FAST_GZIP_LEVEL, wbits=GZIP_WBITS)


def decompress(body_gzip: bytes) -> bytes:
    """The body of what `compress` made, by zlib-ng: header, inflate and CRC check in C,
    four times as fast as `gzip.decompress` on a menu."""
    return zlib_ng.decompress(body_gzip, wbits=GZIP_WBITS)
