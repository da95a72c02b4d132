"""Random access to bzip2-compressed FITS files: decode only what is read.

bzip2 compresses a file in independent blocks of about 900 kB, but records
neither a block's size once decompressed nor where its bytes fall in the
file: the block offset index that ``indexed_bzip2`` builds (and seeks with)
exists only once everything before has been decoded.  Two facts give exact
offsets without that:

* forward, from the start: decoding from the first block gives the bytes at
  their offsets (the primary header, and the image rows after it);
* backward, from the end: any block can be decoded on its own, to the end of
  the stream (``indexed_bzip2`` given a one-block index), and a FITS file is a
  whole number of 2880-byte records whose first extension starts right after
  the primary image, at an offset the primary header gives.  Finding that
  extension's header in the decoded bytes anchors them: they end at the end
  of the file, whose offset is then known.

`CompressedFITS` is a read-only, seekable file object over the decompressed
bytes that `astropy.io.fits.open` reads lazily (``hdul[0].section[y0:y1]``
reads those rows only, ``hdul[1].data`` that HDU only).  It decodes forward
or backward, whichever decodes less, and keeps what it learns of a file
(primary header, extensions, block offsets) in a small per-process cache, so
that the next read of the same file decodes less again.

Private: used by `picasso_astro.sdss.read_frame`.
"""

import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = [
    "CompressedFITS",
    "Unsupported",
    "available",
    "clear_cache",
    "file_key",
    "read_header",
]

#: The start of every bzip2 block (the BCD digits of pi), 48 bits.
BLOCK_MAGIC = (0x314159265359).to_bytes(6, "big")
#: A bzip2 stream's first block starts after the 4-byte ``BZh1``-``BZh9`` header.
FIRST_BLOCK_BIT = 32
#: FITS files are made of records of this many bytes.
RECORD = 2880
#: Where a block decoded on its own is placed in ``indexed_bzip2``'s offsets.
_FAR = 1 << 40
#: Files whose decoding state is kept (primary header, extensions, offsets).
CACHE_SIZE = 32
#: Blocks are looked for in the compressed data from this fraction of it on:
#: rows before its middle are read forward, from the first block.
BACKWARD_FROM = 0.4


class Unsupported(ValueError):
    """A file that cannot be read in parts: the caller decodes it whole."""


def _indexed_bzip2():
    try:
        import indexed_bzip2
    except ImportError:
        return None
    return indexed_bzip2


def available():
    """Return whether partial reads are possible (``indexed_bzip2`` installed)."""
    return _indexed_bzip2() is not None


def find_blocks(raw, start=0):
    """Return the bit offsets of the bzip2 block headers in compressed bytes.

    Only those from byte ``start`` on are looked for.

    A block header is the 48-bit magic number at any bit offset.  At each of
    the eight bit alignments, five whole bytes of it fall on byte boundaries:
    those are looked for in the data as they are, and the 48 bits checked
    where they are found.
    """
    magic = int.from_bytes(BLOCK_MAGIC, "big")
    found = []
    for shift in range(8):
        if shift == 0:
            inner, lead = BLOCK_MAGIC, 0
        else:
            inner = bytes((magic >> (40 - 8 * k + shift)) & 0xFF for k in range(1, 6))
            lead = 1
        where = raw.find(inner, start + lead)
        while where >= 0:
            first = where - lead
            window = int.from_bytes(raw[first : first + 7].ljust(7, b"\0"), "big")
            if (window >> (8 - shift)) & ((1 << 48) - 1) == magic:
                found.append(8 * first + shift)
            where = raw.find(inner, where + 1)
    return np.array(sorted(found), dtype=np.int64)


def _read(stream, count=None):
    """Read ``count`` bytes (all to the end by default) from a stream's raw reader."""
    raw = stream.raw
    if count is not None:
        buffer = bytearray(count)
        view = memoryview(buffer)
        done = 0
        while done < count:
            got = raw.readinto(view[done:])
            if not got:
                break
            done += got
        return bytes(buffer[:done])
    chunks = []
    while True:
        chunk = bytearray(1 << 20)
        got = raw.readinto(chunk)
        if not got:
            return b"".join(chunks)
        chunks.append(bytes(chunk[:got]))


def _data_size(header):
    """Bytes of an HDU's data, padded to whole records, from its header."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    count = 1
    for axis in range(1, naxis + 1):
        count *= int(header[f"NAXIS{axis}"])
    count = (
        abs(int(header["BITPIX"]))
        // 8
        * int(header.get("GCOUNT", 1))
        * (int(header.get("PCOUNT", 0)) + count)
    )
    return -(-count // RECORD) * RECORD


def _header_at(data, start):
    """Parse the FITS header at ``data[start:]``; return it and its byte length."""
    stream = io.BytesIO(data)
    stream.seek(start)
    header = fits.Header.fromfile(stream)
    return header, stream.tell() - start


class _FileState:
    """What is known of one compressed file; shared by its reads, cached."""

    def __init__(self, raw_size, level):
        self.lock = threading.Lock()
        self.raw_size = raw_size
        #: Decompressed bytes of a full block (bzip2 -1 to -9), a size estimate.
        self.block_bytes = 100_000 * level - 19
        self.head = None  # bytes of the primary header
        self.primary_end = None  # offset of the first extension
        self.size = None  # decompressed size of the file
        self.tail = None  # bytes of the extensions, primary_end to size
        self.blocks = None  # bit offsets of the blocks after BACKWARD_FROM
        self.anchors = {FIRST_BLOCK_BIT: 0}  # block bit offset -> its offset


_STATES = OrderedDict()
_STATES_LOCK = threading.Lock()


def file_key(path):
    """Return ``(absolute path, size, modification time)``, a file's identity.

    The path as given, made absolute: links to one file are different files.
    """
    path = Path(path)
    stat = path.stat()
    return (str(path.absolute()), stat.st_size, stat.st_mtime_ns)


def _state_for(path):
    key = file_key(path)
    with _STATES_LOCK:
        state = _STATES.get(key)
        if state is not None:
            _STATES.move_to_end(key)
            return state
    with path.open("rb") as stream:
        magic = stream.read(4)
    if magic[:3] != b"BZh" or not b"1" <= magic[3:4] <= b"9":
        msg = f"{path} is not a bzip2 file"
        raise Unsupported(msg)
    state = _FileState(key[1], int(magic[3:4]))
    with _STATES_LOCK:
        state = _STATES.setdefault(key, state)
        while len(_STATES) > CACHE_SIZE:
            _STATES.popitem(last=False)
    return state


def clear_cache():
    """Forget what is known of every file (for benchmarks of first reads)."""
    with _STATES_LOCK:
        _STATES.clear()


def read_header(path):
    """Return the primary header of a FITS file, decoding only what holds it.

    ``.bz2`` files are decoded from the start until the header's END card
    (the first block, usually), with ``indexed_bzip2`` when it is installed
    and the standard library otherwise; other files are read by astropy.
    """
    path = Path(path)
    if path.suffix != ".bz2":
        return fits.getheader(path, 0)
    module = _indexed_bzip2()
    if module is None:
        import bz2

        with bz2.open(path) as stream:
            return fits.Header.fromfile(stream)
    with CompressedFITS(path) as view:
        return view.primary_header().copy()


class CompressedFITS(io.RawIOBase):
    """A read-only, seekable view of the decompressed bytes of a ``.bz2`` FITS file.

    Parameters
    ----------
    path : str or `~pathlib.Path`
    first_extension : callable, optional
        ``first_extension(header, primary_header) -> bool``: True for the
        header of the file's first extension (and not of the others), which
        anchors bytes decoded backward.  Without it, the file is read forward
        only, and its size is unknown.

    Raises
    ------
    Unsupported
        When ``indexed_bzip2`` is not installed, the file is not bzip2, or
        its layout cannot be anchored; read it whole instead.
    """

    def __init__(self, path, *, first_extension=None):
        super().__init__()
        self._module = _indexed_bzip2()
        if self._module is None:
            msg = "indexed_bzip2 is not installed"
            raise Unsupported(msg)
        self._path = Path(path)
        self._state = _state_for(self._path)
        self._first_extension = first_extension
        self._pos = 0
        self._spans = []  # (offset, bytes) decoded by this view
        self._forward = None  # a reader decoding from the file's start
        self._forward_pos = 0
        self._primary = None
        #: Decompressed bytes this view decoded (for tests and benchmarks).
        self.decoded = 0

    # --- the file-object protocol that astropy uses -----------------------

    @property
    def name(self):
        """str: the compressed file's path."""
        return str(self._path)

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self.size() + offset
        else:
            msg = f"invalid whence {whence}"
            raise ValueError(msg)
        return self._pos

    def readinto(self, buffer):
        count = min(len(buffer), max(self.size() - self._pos, 0))
        if count <= 0:
            return 0
        buffer[:count] = self._bytes(self._pos, count)
        self._pos += count
        return count

    def close(self):
        if self._forward is not None:
            self._forward.close()
            self._forward = None
        self._spans = []
        super().close()

    # --- what is known of the file ----------------------------------------

    def primary_header(self):
        """Return the primary header (`~astropy.io.fits.Header`), not to be changed."""
        if self._primary is None:
            self._primary = fits.Header.fromstring(self._head())
        return self._primary

    def size(self):
        """Return the decompressed size (anchors the end when not yet known)."""
        state = self._state
        if state.size is None:
            if self._first_extension is None:
                msg = "the first extension cannot be recognised, so the end is unknown"
                raise Unsupported(msg)
            self._anchor_end()
        return state.size

    def _head(self):
        state = self._state
        if state.head is None:
            records = []
            while True:
                record = self._forward_bytes(RECORD * len(records), RECORD)
                if len(record) < RECORD:
                    msg = f"{self._path}: no END card in the primary header"
                    raise Unsupported(msg)
                records.append(record)
                # END starts one of the 36 cards of a record.
                if any(
                    record[card : card + 8] == b"END     "
                    for card in range(0, RECORD, 80)
                ):
                    break
            head = b"".join(records)
            header = self._primary = fits.Header.fromstring(head)
            if header.get("GROUPS", False):
                msg = f"{self._path}: random-groups files are not read in parts"
                raise Unsupported(msg)
            with state.lock:
                state.head = head
                state.primary_end = len(head) + _data_size(header)
        return state.head

    def _anchor_end(self):
        """Decode the last blocks and find the first extension in them."""
        state = self._state
        self._head()
        blocks = self._blocks()
        for back in range(1, min(len(blocks), 4) + 1):
            index = len(blocks) - back
            if index < 0 or blocks[index] == FIRST_BLOCK_BIT:
                break
            data = self._decode_to_end(blocks[index])
            start = self._find_first_extension(data)
            if start is not None:
                with state.lock:
                    state.size = state.primary_end + len(data) - start
                    state.tail = data[start:]
                    state.anchors[int(blocks[index])] = state.primary_end - start
                self._spans.append((state.primary_end - start, data))
                return
        msg = f"{self._path}: the first extension was not found in the last blocks"
        raise Unsupported(msg)

    def _find_first_extension(self, data):
        """Offset in ``data`` (which ends the file) of the first extension, or None."""
        # The file ends a whole number of records after every HDU's start.
        for start in range(len(data) % RECORD, len(data), RECORD):
            if data[start : start + 8] != b"XTENSION":
                continue
            try:
                header, length = _header_at(data, start)
            except (OSError, ValueError):
                continue
            if not self._first_extension(header, self.primary_header()):
                continue
            # The extensions from here must fill the rest exactly.
            position = start + length + _data_size(header)
            try:
                while position < len(data):
                    following, length = _header_at(data, position)
                    position += length + _data_size(following)
            except (OSError, ValueError):
                continue
            if position == len(data):
                return start
        return None

    def _blocks(self):
        """Return the bit offsets of the blocks in the latter part of the file."""
        state = self._state
        if state.blocks is None:
            raw = self._path.read_bytes()
            blocks = find_blocks(raw, int(BACKWARD_FROM * len(raw)))
            if len(blocks) == 0:
                msg = f"{self._path}: no bzip2 block in the latter part of the file"
                raise Unsupported(msg)
            with state.lock:
                state.blocks = blocks
        return state.blocks

    # --- decoding -----------------------------------------------------------

    def _open(self, bit=FIRST_BLOCK_BIT):
        """Return an ``indexed_bzip2`` file decoding from the block at ``bit``.

        From the first block, offsets are the file's; from another, offset
        ``_FAR`` is that block's first byte.  It is read through its raw
        stream: the buffered one reads ahead by a megabyte, that is, decodes
        blocks nobody asked for.
        """
        stream = self._module.open(str(self._path), parallelization=1)
        if bit != FIRST_BLOCK_BIT:
            try:
                stream.set_block_offsets(
                    {
                        FIRST_BLOCK_BIT: 0,
                        int(bit): _FAR,
                        8 * self._state.raw_size: 2 * _FAR,
                    }
                )
                stream.raw.seek(_FAR)
            except BaseException:
                stream.close()
                raise
        return stream

    def _decode_to_end(self, bit):
        with self._open(bit) as stream:
            data = _read(stream)
        self.decoded += len(data)
        return data

    def _forward_bytes(self, offset, count):
        """Bytes from a reader that decodes from the start and never seeks back."""
        if self._forward is None or offset < self._forward_pos:
            if self._forward is not None:
                self._forward.close()
            self._forward = self._open()
            self._forward_pos = 0
        if offset > self._forward_pos:
            self._forward.raw.seek(offset)
            self.decoded += offset - self._forward_pos
        data = _read(self._forward, count)
        self.decoded += len(data)
        self._forward_pos = offset + len(data)
        known = self._forward.available_block_offsets()
        with self._state.lock:
            self._state.anchors.update(known)
        return data

    def _bytes(self, offset, count):
        end = offset + count
        state = self._state
        known = list(self._spans)
        if state.head is not None:
            known.append((0, state.head))
        if state.tail is not None:
            known.append((state.primary_end, state.tail))
        for start, data in known:
            if start <= offset and end <= start + len(data):
                return data[offset - start : end - start]
        # The ways to get there, and the bytes each decodes.
        with state.lock:
            anchors = list(state.anchors.items())
        bit, start = max(
            ((b, s) for b, s in anchors if s <= offset), key=lambda item: item[1]
        )
        ways = [(end - start, "block")]
        if self._forward is not None and start <= self._forward_pos <= offset:
            ways.append((end - self._forward_pos, "forward"))
        backward = self._backward_start(offset, anchors)
        if backward is not None:
            ways.append((state.size - backward[1], "backward"))
        _, way = min(ways)
        if way == "backward":
            return self._read_backward(offset, count, backward[0])
        if way == "forward" or bit == FIRST_BLOCK_BIT:
            return self._forward_bytes(offset, count)
        with self._open(bit) as stream:
            stream.raw.seek(_FAR + offset - start)
            data = _read(stream, count)
        self.decoded += end - start
        return data

    def _backward_start(self, offset, anchors):
        """Return the block to decode backward from, ``(index, estimated start)``."""
        state = self._state
        if state.size is None or self._first_extension is None:
            return None
        blocks = self._blocks()
        # The first anchored block after the offset; blocks before it hold
        # about ``block_bytes`` each.
        after = [(b, s) for b, s in anchors if s > offset]
        if not after:
            return None
        bit, start = min(after, key=lambda item: item[1])
        index = int(np.searchsorted(blocks, bit))
        if index >= len(blocks) or blocks[index] != bit:
            return None
        back = -(-(start - offset) // state.block_bytes)
        if index - back < 0 or blocks[index - back] == FIRST_BLOCK_BIT:
            return None
        return index - back, start - back * state.block_bytes

    def _read_backward(self, offset, count, index):
        state = self._state
        blocks = self._blocks()
        while index >= 0 and blocks[index] != FIRST_BLOCK_BIT:
            data = self._decode_to_end(blocks[index])
            start = state.size - len(data)
            with state.lock:
                state.anchors[int(blocks[index])] = start
            if start <= offset:
                # Kept for the reads that follow (the extensions, usually).
                self._spans = [(start, data)]
                return data[offset - start : offset - start + count]
            # Blocks smaller than the estimate: one more back.
            index -= 1
        return self._forward_bytes(offset, count)
