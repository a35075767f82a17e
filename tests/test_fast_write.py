"""The single-pass FITS serialiser and the parallel tile compressor.

Files must be byte-identical to astropy's ``writeto(checksum=True)`` (with the
checksum timestamps pinned), pass astropy's checksum verification with warnings
as errors, and anything the fast path does not handle must go to astropy.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.hdu.base import _ValidHDU

from camera_core import compress, fitsio_fast
from camera_core.writer import write_atomic

STAMP = "2024-01-02T03:04:05"


@pytest.fixture(autouse=True)
def pinned_timestamps(monkeypatch):
    """Both writers put the same time in the checksum comments."""
    monkeypatch.setattr(_ValidHDU, "_get_timestamp", lambda self: STAMP)
    monkeypatch.setattr(fitsio_fast, "_timestamp", lambda: STAMP)


def sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    native = dt.newbyteorder("=")
    if dt.kind == "f":
        values = rng.normal(0, 1e3, shape).astype(native)
        values.flat[::7] = np.nan  # NaN payloads must survive
    else:
        info = np.iinfo(native)
        values = rng.integers(info.min, info.max, shape, dtype=native, endpoint=True)
    return values.astype(dt)


def astropy_bytes(hdulist: fits.HDUList, checksum: bool = True) -> bytes:
    buffer = io.BytesIO()
    hdulist.writeto(buffer, checksum=checksum)
    return buffer.getvalue()


def fast_fd(hdulist: fits.HDUList, path: Path, checksum: bool = True) -> bytes:
    prepared = fitsio_fast.prepare(hdulist, checksum, compress.compress_hdu)
    assert prepared is not None, "expected the fast path"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fitsio_fast.write_fd(prepared, fd)
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert len(data) == prepared.size
    return data


def fast_stream(hdulist: fits.HDUList, checksum: bool = True) -> bytes:
    prepared = fitsio_fast.prepare(hdulist, checksum, compress.compress_hdu)
    assert prepared is not None, "expected the fast path"
    buffer = io.BytesIO()
    fitsio_fast.write_stream(prepared, buffer)
    return buffer.getvalue()


def verified(data: bytes) -> fits.HDUList:
    """Opens FITS bytes, failing on any checksum warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = fits.open(io.BytesIO(data), checksum=True, disable_image_compression=True)
        with raw:
            for hdu in raw:
                assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header
        hdul = fits.open(io.BytesIO(data), checksum=True)
        for hdu in hdul:
            _ = hdu.data  # decompresses the tiles
    return hdul


def header() -> fits.Header:
    hdr = fits.Header()
    hdr["EXPTIME"] = (1.5, "Exposure time [s]")
    hdr["OBSERVER"] = "someone with a rather long name " * 3  # CONTINUE cards
    hdr.add_comment("a comment")
    hdr.append()  # a trailing blank card
    return hdr


# ---------------------------------------------------------------------------
# The checksum arithmetic, against astropy's implementation.


def test_checksum_encoding_matches_astropy():
    rng = np.random.default_rng(1)
    values = [0, 1, 0xFFFFFFFF, 0x3A3A3A3A, 0x40404040, 0x5B5B5B5B, 0x60606060]
    values += [int(v) for v in rng.integers(0, 2**32, 5000)]
    hdu = fits.PrimaryHDU()
    for value in values:
        assert fitsio_fast.checksum_encode(value) == hdu._char_encode(value), value


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 2879, 2880, 100_003])
def test_ones_complement_sum_matches_astropy(size):
    rng = np.random.default_rng(size)
    raw = rng.integers(0, 256, size, dtype=np.uint8)
    hdu = fits.PrimaryHDU()
    for start in (0, 12345, 0xFFFFFFFE):
        expected = int(hdu._compute_checksum(raw, start))
        assert fitsio_fast.ones_complement_sum(raw.tobytes(), start) == expected


def test_all_ones_sum_is_not_folded_to_zero():
    # 0xFFFFFFFF is "minus zero": astropy keeps it, and so must we.
    raw = np.full(8, 0xFF, np.uint8)
    expected = int(fits.PrimaryHDU()._compute_checksum(raw))
    assert fitsio_fast.ones_complement_sum(raw.tobytes()) == expected == 0xFFFFFFFF


def test_split_sums_equal_the_joined_sum():
    rng = np.random.default_rng(2)
    joined = rng.integers(0, 256, 10_001, dtype=np.uint8).tobytes()
    for _ in range(20):
        cuts = sorted(rng.integers(0, len(joined), 6))
        ends = zip([0, *cuts], [*cuts, len(joined)], strict=True)
        pieces = [joined[a:b] for a, b in ends]
        assert fitsio_fast.pieces_sum(pieces) == fitsio_fast.ones_complement_sum(joined)


# ---------------------------------------------------------------------------
# Images: byte-identical to astropy.


@pytest.mark.parametrize(
    "dtype",
    [
        *("uint16", "int16", "int32", "float32", "uint8", "int8", "uint32"),
        *("int64", "uint64", "float64", ">u2", ">i4", ">f8", "<i2"),
    ],
)
@pytest.mark.parametrize("shape", [(37, 51), (3, 3), (1,), (5, 7, 3), (700, 801)])
def test_images_are_byte_identical(dtype, shape, tmp_path):
    data = sample(dtype, shape)
    before = data.copy()
    expected = astropy_bytes(fits.HDUList([fits.PrimaryHDU(data.copy(), header())]))
    hdulist = fits.HDUList([fits.PrimaryHDU(data, header())])
    assert fast_fd(hdulist, tmp_path / "a.fits") == expected
    assert fast_stream(fits.HDUList([fits.PrimaryHDU(data, header())])) == expected
    # The frame is neither modified nor byte-swapped in place.
    assert data.dtype == before.dtype
    assert np.array_equal(data, before, equal_nan=data.dtype.kind == "f")
    with verified(expected) as hdul:
        assert np.array_equal(hdul[0].data, before, equal_nan=True)


def test_header_of_the_hdu_is_updated_like_astropy(tmp_path):
    data = sample("uint16", (20, 30))
    theirs = fits.HDUList([fits.PrimaryHDU(data, header())])
    astropy_bytes(theirs)
    ours = fits.HDUList([fits.PrimaryHDU(data, header())])
    prepared = fitsio_fast.prepare(ours, True)
    fd = os.open(tmp_path / "a.fits", os.O_RDWR | os.O_CREAT, 0o644)
    fitsio_fast.write_fd(prepared, fd)
    os.close(fd)
    assert ours[0].header.tostring() == theirs[0].header.tostring()
    assert prepared.sums() == (
        theirs[0].header["DATASUM"],
        theirs[0].header["CHECKSUM"],
    )


def test_non_contiguous_and_read_only_frames(tmp_path):
    base = sample("uint16", (64, 90))
    views = [base[::2, 1::3], base.T]
    frozen = base.copy()
    frozen.flags.writeable = False
    for data in [*views, frozen]:
        expected = astropy_bytes(fits.HDUList([fits.PrimaryHDU(data.copy())]))
        assert fast_fd(fits.HDUList([fits.PrimaryHDU(data)]), tmp_path / "v") == (
            expected
        )


def test_multi_extension_images_are_byte_identical(tmp_path):
    def make():
        return fits.HDUList(
            [
                fits.PrimaryHDU(sample("uint16", (40, 50)), header()),
                fits.ImageHDU(sample("float32", (10, 11), 1), name="SCI"),
                fits.ImageHDU(sample("int32", (3,), 2), name="TIME"),
                fits.ImageHDU(name="EMPTY"),
            ]
        )

    expected = astropy_bytes(make())
    assert fast_fd(make(), tmp_path / "m.fits") == expected
    assert fast_stream(make()) == expected
    with verified(expected) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "SCI", "TIME", "EMPTY"]


def test_empty_primary_and_no_checksums(tmp_path):
    def make():
        return fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sample("int16", (9,)))])

    assert fast_fd(make(), tmp_path / "e.fits") == astropy_bytes(make())
    plain = fast_fd(make(), tmp_path / "n.fits", checksum=False)
    assert plain == astropy_bytes(make(), checksum=False)
    assert b"CHECKSUM" not in plain


# ---------------------------------------------------------------------------
# Tile compression: byte-identical to astropy, or (gzip) equally valid.


def compressed_list(data, ctype, **kwargs) -> fits.HDUList:
    hdu = fits.CompImageHDU(data, header=header(), compression_type=ctype, **kwargs)
    return fits.HDUList([fits.PrimaryHDU(), hdu])


@pytest.mark.parametrize(
    ("dtype", "shape", "ctype", "kwargs"),
    [
        ("uint16", (300, 257), "RICE_1", {}),  # several batches of rows
        ("int16", (64, 80), "RICE_1", {}),
        ("int32", (101, 77), "RICE_1", {"tile_shape": (16, 10)}),
        ("uint8", (33, 80), "RICE_1", {}),
        ("int8", (33, 80), "RICE_1", {}),
        ("uint32", (30, 40), "RICE_1", {}),
        ("uint16", (7, 30, 40), "RICE_1", {}),
        ("int16", (64, 80), "HCOMPRESS_1", {}),
    ],
)
def test_compressed_images_are_byte_identical(dtype, shape, ctype, kwargs, tmp_path):
    rng = np.random.default_rng(3)
    data = (rng.normal(100, 10, shape) + (1000 if dtype[0] == "u" else 0)).astype(dtype)
    expected = astropy_bytes(compressed_list(data, ctype, **kwargs))
    assert fast_fd(compressed_list(data, ctype, **kwargs), tmp_path / "c") == expected
    assert fast_stream(compressed_list(data, ctype, **kwargs)) == expected
    with verified(expected) as hdul:
        assert np.array_equal(hdul[1].data, data)


@pytest.mark.parametrize(
    ("data", "ctype", "kwargs"),
    [
        (sample("float32", (200, 97)), "GZIP_2", {"quantize_level": 0.0}),
        (sample("uint16", (200, 97)), "GZIP_2", {}),
        (sample("int32", (150, 60)), "GZIP_1", {}),
    ],
)
def test_gzip_tiles_are_valid_and_identical_at_the_same_time(
    data, ctype, kwargs, tmp_path, monkeypatch
):
    # gzip stores the current time in each tile: pin it to compare bytes.
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    expected = astropy_bytes(compressed_list(data, ctype, **kwargs))
    ours = fast_fd(compressed_list(data, ctype, **kwargs), tmp_path / "g.fits")
    assert ours == expected
    with verified(ours) as hdul:
        assert np.array_equal(hdul[1].data, data, equal_nan=True)


def test_quantised_floats_and_plio_are_left_to_astropy():
    floats = sample("float32", (20, 20))
    assert compress.compress_hdu(compressed_list(floats, "RICE_1")[1]) is None
    ints = sample("int16", (20, 20)) & 0x7F
    assert compress.compress_hdu(compressed_list(ints, "PLIO_1")[1]) is None


# ---------------------------------------------------------------------------
# Through the writer: fast path, fallbacks, gzip and failures.


def read_verified(path: Path) -> fits.HDUList:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return verified(raw)


@pytest.mark.parametrize("dtype", ["uint16", "int16", "int32", "float32"])
def test_writer_files_equal_astropy(dtype, tmp_path):
    data = sample(dtype, (128, 96))
    expected = astropy_bytes(fits.HDUList([fits.PrimaryHDU(data, header())]))
    hdulist = fits.HDUList([fits.PrimaryHDU(data, header())])
    sums = write_atomic(hdulist, tmp_path / "w.fits")
    assert (tmp_path / "w.fits").read_bytes() == expected
    assert sums == (hdulist[0].header["DATASUM"], hdulist[0].header["CHECKSUM"])
    write_atomic(
        fits.HDUList([fits.PrimaryHDU(data, header())]), tmp_path / "w.fits.gz"
    )
    assert gzip.decompress((tmp_path / "w.fits.gz").read_bytes()) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.fits", "w.fits.gz"]


def test_writer_reports_the_checksums_of_a_compressed_frame(tmp_path):
    data = sample("uint16", (100, 64))
    sums = write_atomic(compressed_list(data, "RICE_1"), tmp_path / "c.fits")
    with read_verified(tmp_path / "c.fits") as hdul:
        assert np.array_equal(hdul[1].data, data)
    with fits.open(tmp_path / "c.fits", disable_image_compression=True) as raw:
        assert sums == (raw[1].header["DATASUM"], raw[1].header["CHECKSUM"])


def test_tables_and_scaled_data_fall_back_to_astropy(tmp_path):
    image = sample("uint16", (30, 40))
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="t", format="D", array=np.arange(5.0))], name="TIMES"
    )

    def with_table():
        return fits.HDUList([fits.PrimaryHDU(image), table.copy()])

    assert fitsio_fast.prepare(with_table(), True, compress.compress_hdu) is None
    write_atomic(with_table(), tmp_path / "t.fits")
    assert (tmp_path / "t.fits").read_bytes() == astropy_bytes(with_table())
    with read_verified(tmp_path / "t.fits") as hdul:
        assert list(hdul["TIMES"].data["t"]) == [0, 1, 2, 3, 4]

    scaled = fits.PrimaryHDU(sample("int16", (4, 4)))
    scaled.header["BSCALE"] = 2.0
    assert fitsio_fast.prepare(fits.HDUList([scaled]), True) is None


def test_disabled_fast_path_gives_the_same_file(tmp_path, monkeypatch):
    data = sample("uint16", (50, 60))
    write_atomic(fits.HDUList([fits.PrimaryHDU(data)]), tmp_path / "fast.fits")
    monkeypatch.setattr(fitsio_fast, "ENABLED", False)
    write_atomic(fits.HDUList([fits.PrimaryHDU(data)]), tmp_path / "slow.fits")
    assert (tmp_path / "fast.fits").read_bytes() == (
        tmp_path / "slow.fits"
    ).read_bytes()


def test_a_failing_write_leaves_no_file_and_raises(tmp_path, monkeypatch):
    data = sample("uint16", (1500, 1024))  # several chunks
    calls = []
    real_pwrite = os.pwrite

    def failing(fd, buf, offset):
        calls.append(offset)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, buf, offset)

    monkeypatch.setattr(fitsio_fast.os, "pwrite", failing)
    with pytest.raises(OSError, match="No space"):
        write_atomic(fits.HDUList([fits.PrimaryHDU(data)]), tmp_path / "f.fits")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(fitsio_fast.os, "pwrite", real_pwrite)
    write_atomic(fits.HDUList([fits.PrimaryHDU(data)]), tmp_path / "f.fits")
    with read_verified(tmp_path / "f.fits") as hdul:
        assert np.array_equal(hdul[0].data, data)
