"""Image planes on the wire: codecs, and encoding/decoding one plane with its checks.

Split from `bridge.wire` (which re-exports everything here). RAW planes are views: encoding
is a buffer view of the engine's array and decoding an array over the received bytes.
"""

from __future__ import annotations

import enum
import functools
import io
from typing import Any

import numpy as np
from PIL import Image as PILImage

from bridge.framing import EncodedPlane
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.types import InvalidArgumentError


class Codec(enum.IntEnum):
    """Frame codecs a session can use (values of the wire enum `genworld.v1.Codec`).

    RAW costs nothing to encode and is the right choice on loopback and fast LANs; PNG
    (colour) and ZSTD (both planes) trade CPU for bandwidth on slow links.
    """

    RAW = pb.CODEC_RAW
    PNG = pb.CODEC_PNG
    ZSTD = pb.CODEC_ZSTD


RGB_CHANNELS = 3
DEPTH_DTYPE = np.dtype("<f4")  # the wire is little-endian whatever the host
# Images larger than this are refused before any decompression (guards memory).
MAX_IMAGE_PIXELS = 8192 * 8192
# Fast settings: frames are produced every step, latency matters more than ratio.
PNG_COMPRESS_LEVEL = 1
ZSTD_LEVEL = 1
BYTES_PER_PIXEL = {pb.PIXEL_FORMAT_RGB8: RGB_CHANNELS, pb.PIXEL_FORMAT_DEPTH_F32: DEPTH_DTYPE.itemsize}
FORMAT_NAMES = {
    pb.PIXEL_FORMAT_RGB8: "PIXEL_FORMAT_RGB8",
    pb.PIXEL_FORMAT_DEPTH_F32: "PIXEL_FORMAT_DEPTH_F32",
}
DEPTH_IS_NATIVE_F32 = DEPTH_DTYPE == np.float32  # frombuffer's native float32 is the wire's dtype
_PLANE_DTYPES = {pb.PIXEL_FORMAT_RGB8: np.dtype(np.uint8), pb.PIXEL_FORMAT_DEPTH_F32: DEPTH_DTYPE}
_CODEC_NAMES = {c.value: f"CODEC_{c.name}" for c in Codec}


@functools.cache
def _zstd() -> Any:
    """The zstandard module, imported on first use: RAW and PNG sessions never need it."""
    import zstandard

    return zstandard


def plane_codec(codec: Codec, pixel_format: int) -> Codec:
    """The codec a plane actually uses: PNG is lossless for RGB8 only, so depth uses ZSTD."""
    if codec == Codec.PNG and pixel_format != pb.PIXEL_FORMAT_RGB8:
        return Codec.ZSTD
    return codec


def encode_plane(array: np.ndarray, pixel_format: int, codec: Codec = Codec.RAW) -> EncodedPlane:
    """Encodes an (H, W, 3) uint8 or (H, W) float32 plane; RAW is a zero-copy view."""
    if codec == Codec.RAW and array.dtype == _PLANE_DTYPES[pixel_format] and array.flags.c_contiguous:
        # The per-step path: a view of the engine's array, no conversion.
        if array.ndim == (3 if pixel_format == pb.PIXEL_FORMAT_RGB8 else 2):
            height, width = array.shape[:2]
            if pixel_format == pb.PIXEL_FORMAT_RGB8 and array.shape[2] != RGB_CHANNELS:
                raise InvalidArgumentError(f"{FORMAT_NAMES[pixel_format]} plane has shape {array.shape}")
            return EncodedPlane.create(pixel_format, pb.CODEC_RAW, width, height, array)
    expected_ndim = 3 if pixel_format == pb.PIXEL_FORMAT_RGB8 else 2
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] != RGB_CHANNELS):
        raise InvalidArgumentError(f"{FORMAT_NAMES[pixel_format]} plane has shape {array.shape}")
    height, width = array.shape[:2]
    codec = plane_codec(Codec(codec), pixel_format)
    dtype = np.uint8 if pixel_format == pb.PIXEL_FORMAT_RGB8 else DEPTH_DTYPE
    raw = np.ascontiguousarray(array, dtype=dtype)
    if codec == Codec.RAW:
        data: bytes | memoryview = memoryview(raw)
    elif codec == Codec.PNG:
        out = io.BytesIO()
        PILImage.fromarray(raw).save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        data = out.getvalue()
    else:
        data = _zstd().ZstdCompressor(level=ZSTD_LEVEL).compress(memoryview(raw).cast("B"))
    return EncodedPlane.create(pixel_format, codec, width, height, data)


def decode_plane(meta: pb.Image, data: bytes | bytearray | memoryview, field: str) -> np.ndarray:
    """Decodes one plane, checking format, codec and sizes against the header.

    Args:
        meta: the `Image` header (its own `data` is ignored; pass the bytes as `data`).
        data: the encoded plane bytes.
        field: name used in error messages, e.g. "frames[0].rgb".

    Returns:
        (H, W, 3) uint8 for RGB8, (H, W) float32 for DEPTH_F32.
    """
    pixel_format, codec, height, width = meta.format, meta.codec, meta.height, meta.width
    if codec == pb.CODEC_RAW and pixel_format in BYTES_PER_PIXEL and height * width <= MAX_IMAGE_PIXELS:
        # The per-step path: same checks as below, in the order that RAW planes need.
        size = len(data)
        if meta.total_bytes and meta.total_bytes != size:
            raise InvalidArgumentError(f"{field}.total_bytes is {meta.total_bytes} but data has {size} bytes")
        if size == height * width * BYTES_PER_PIXEL[pixel_format]:
            if pixel_format == pb.PIXEL_FORMAT_RGB8:
                return np.frombuffer(data, dtype=np.uint8).reshape(height, width, RGB_CHANNELS)
            if DEPTH_IS_NATIVE_F32:
                return np.frombuffer(data, dtype=np.float32).reshape(height, width)
    if meta.format not in BYTES_PER_PIXEL:
        raise InvalidArgumentError(f"{field}.format: unknown pixel format {meta.format}")
    if meta.codec not in _CODEC_NAMES:
        raise InvalidArgumentError(f"{field}.codec: unknown codec {meta.codec}")
    height, width = meta.height, meta.width
    if height * width > MAX_IMAGE_PIXELS:
        raise InvalidArgumentError(f"{field}: {width}x{height} exceeds {MAX_IMAGE_PIXELS} pixels")
    if meta.total_bytes and meta.total_bytes != len(data):
        raise InvalidArgumentError(
            f"{field}.total_bytes is {meta.total_bytes} but data has {len(data)} bytes"
        )
    expected = height * width * BYTES_PER_PIXEL[meta.format]
    rgb = meta.format == pb.PIXEL_FORMAT_RGB8
    if meta.codec == pb.CODEC_PNG:
        if not rgb:
            raise InvalidArgumentError(f"{field}.codec: CODEC_PNG is for PIXEL_FORMAT_RGB8 only")
        return _decode_png(data, width, height, field)
    if meta.codec == pb.CODEC_ZSTD:
        try:
            data = _zstd().ZstdDecompressor().decompress(bytes(data), max_output_size=expected)
        except _zstd().ZstdError as exc:
            raise InvalidArgumentError(f"{field}.data is not valid zstd of {expected} bytes: {exc}") from exc
    if len(data) != expected:
        raise InvalidArgumentError(
            f"{field}.data has {len(data)} bytes, expected {expected} for {width}x{height} "
            f"{FORMAT_NAMES[meta.format]}"
        )
    if rgb:
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width, RGB_CHANNELS)
    depth = np.frombuffer(data, dtype=DEPTH_DTYPE).reshape(height, width)
    return depth if depth.dtype == np.float32 else depth.astype(np.float32)


def _decode_png(data: bytes | bytearray | memoryview, width: int, height: int, field: str) -> np.ndarray:
    """RGB pixels of a PNG, refusing one whose size or mode disagrees with its header."""
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            if img.size != (width, height) or img.mode != "RGB":
                raise InvalidArgumentError(
                    f"{field}.data: PNG is {img.mode} {img.size[0]}x{img.size[1]}, "
                    f"header says RGB {width}x{height}"
                )
            return np.asarray(img, dtype=np.uint8)
    except InvalidArgumentError:
        raise
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise InvalidArgumentError(f"{field}.data is not a valid PNG: {exc}") from exc
