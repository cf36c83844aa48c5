"""Hand-made ZIP archives for the verifier's tests: every byte placed on purpose, so a test can put
data where a well-behaved writer never would (before the first member, between the members and
the directory, after the end record), give a local header another name than its directory entry,
or declare sizes that the compressed data does not have. Offsets in the directory are always
computed from the real layout, so Python's zipfile reads every one of these archives without
complaint: what the verifier must refuse is exactly what a lenient reader accepts."""
import struct
import zlib
from dataclasses import dataclass

STORED, DEFLATED = 0, 8
UTF8 = 0x0800


@dataclass
class Entry:
    """One member as it is written: ``data`` is the stored (compressed) bytes; ``size`` and ``crc``
    describe the uncompressed content (declared, which a test may make a lie)."""

    name: str
    data: bytes
    size: int
    crc: int
    method: int = DEFLATED
    local_name: str | None = None  # what the local header says, when it should differ

    @classmethod
    def of(cls, name: str, content: bytes, *, method: int = DEFLATED) -> "Entry":
        if method == DEFLATED:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = packer.compress(content) + packer.flush()
        else:
            data = content
        return cls(name=name, data=data, size=len(content), crc=zlib.crc32(content), method=method)

    def local_record(self) -> bytes:
        name = (self.local_name if self.local_name is not None else self.name).encode()
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, UTF8, self.method, 0, 0x21, self.crc,
                             len(self.data), self.size, len(name), 0)
        return header + name + self.data

    def directory_record(self, offset: int) -> bytes:
        name = self.name.encode()
        return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, UTF8, self.method, 0, 0x21, self.crc,
                           len(self.data), self.size, len(name), 0, 0, 0, 0, 0, offset) + name


def archive(entries: list[Entry | bytes], *, before: bytes = b"", between: bytes = b"", after: bytes = b"",
            comment: bytes = b"") -> bytes:
    """``before`` + the members + ``between`` + the central directory + its end record (with
    ``comment``) + ``after``. A ``bytes`` item among the entries is laid out as it is, with no
    directory entry pointing at it."""
    body, directory, listed = bytearray(before), bytearray(), 0
    for entry in entries:
        if isinstance(entry, bytes):
            body += entry
            continue
        directory += entry.directory_record(len(body))
        body += entry.local_record()
        listed += 1
    body += between
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, listed, listed, len(directory), len(body), len(comment))
    return bytes(body + directory + end + comment + after)


def entries_of(path) -> list[Entry]:
    """A genuine bundle's members, re-encoded by this module, in their order."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return [Entry.of(info.filename, zf.read(info)) for info in zf.infolist()]


def deflate_bomb(name: str, *, megabytes: int, declared_size: int | None = None) -> Entry:
    """``megabytes`` MiB of spaces deflated to about a thousandth of that, built without holding
    them: a block compressed after a full flush is the same bytes every time, so it is repeated.
    ``declared_size`` (default: the truth) is what the headers claim."""
    chunk = b" " * (1024 * 1024)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packer.compress(chunk)
    packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    data = block * megabytes + packer.flush(zlib.Z_FINISH)
    crc = 0
    size = len(chunk) * megabytes if declared_size is None else declared_size
    remaining = size
    while remaining > 0:
        crc = zlib.crc32(chunk[:remaining], crc)
        remaining -= len(chunk)
    return Entry(name=name, data=data, size=size, crc=crc)
