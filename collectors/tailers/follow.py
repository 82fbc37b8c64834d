"""Follow a growing log file like `tail -F`, by polling (no inotify, no dependency).

A file is identified by (device, inode) plus a hash of its first bytes, so a recycled inode
is not mistaken for the file we were reading. Rotation = the path now names another file: the
old one is read to its end first (a rotated file never grows again, so its last partial line is
emitted as it is), then the new one from 0. Truncation = the file is shorter than our offset
(copytruncate): start again at 0. Only complete lines are returned; a partial last line waits.

`position` is what a caller persists once everything returned so far is safely delivered; a
follower built from it resumes there, and if the file was rotated meanwhile it looks for the old
inode in the same directory and finishes it before starting the new file.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

READ_SIZE = 1 << 20          # one read; also the longest line we keep whole
HEAD_BYTES = 128             # fingerprint length: covers Zeek's #open line, EVE's first timestamp


@dataclass
class Position:
    """Where reading resumes; JSON-serialisable so the runner can keep it in its state file."""
    dev: int
    inode: int
    offset: int
    head: str = ""           # hash of the first head_len bytes when the position was taken
    head_len: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Position:
        return cls(int(data["dev"]), int(data["inode"]), int(data["offset"]),
                   str(data.get("head", "")), int(data.get("head_len", 0)))


@dataclass
class Line:
    text: bytes              # without the newline
    offset: int              # byte offset of the line's start in its file
    oversized: bool = False  # longer than READ_SIZE: this is only its beginning


@dataclass
class Chunk:
    """Lines from one file, in order. `new_file` tells the parser to forget header context."""
    path: str
    lines: list[Line] = field(default_factory=list)
    new_file: bool = False
    rotated: bool = False
    truncated: bool = False


def _head_hash(f: BinaryIO, length: int) -> str:
    f.seek(0)
    return hashlib.blake2b(f.read(length), digest_size=8).hexdigest()


class FileFollower:
    def __init__(self, path: str, position: Position | None = None, read_size: int = READ_SIZE):
        self.path = path
        self.read_size = read_size
        self._saved = position
        self._file: BinaryIO | None = None
        self._reading = path            # the name of the file we hold (a rotated one differs)
        self._ident: tuple[int, int] | None = None
        self._offset = 0
        self._skipping = False          # inside the rest of an oversized line
        self._rotating = False          # old file finished, waiting for the new one to appear

    @property
    def position(self) -> Position | None:
        if self._file is None or self._ident is None:
            return self._saved
        head_len = min(HEAD_BYTES, self._offset)
        return Position(self._ident[0], self._ident[1], self._offset,
                        _head_hash(self._file, head_len), head_len)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None

    def poll(self, budget: int = 8 * READ_SIZE) -> list[Chunk]:
        """Read what is available (about `budget` bytes at most), following rotation."""
        chunks: list[Chunk] = []
        while budget > 0:
            if self._file is None and not self._open(chunks):
                break
            chunk, consumed, at_eof = self._read()
            budget -= max(consumed, 1)
            chunks.append(chunk)
            if at_eof and not self._switch_if_rotated(chunks):
                break
        return [c for c in chunks if c.lines or c.new_file]

    # -- opening ---------------------------------------------------------------------------
    def _open(self, chunks: list[Chunk]) -> bool:
        try:
            f = open(self.path, "rb", buffering=0)
        except OSError:
            return False                # not there (yet): tail -F waits
        st = os.fstat(f.fileno())
        saved, self._saved = self._saved, None
        self._file, self._reading, self._ident = f, self.path, (st.st_dev, st.st_ino)
        self._offset, self._skipping = 0, False
        if saved is not None and self._same_file(f, saved):
            self._resume(saved, st.st_size, chunks)
            return True
        if saved is not None and self._open_rotated(saved):
            return True                 # rotated while we were down: finish that one first
        chunks.append(Chunk(self.path, new_file=True, rotated=self._rotating or saved is not None))
        self._rotating = False
        return True

    def _same_file(self, f: BinaryIO, saved: Position) -> bool:
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != (saved.dev, saved.inode):
            return False
        return not saved.head_len or _head_hash(f, saved.head_len) == saved.head

    def _resume(self, saved: Position, size: int, chunks: list[Chunk]) -> None:
        if size < saved.offset:
            chunks.append(Chunk(self.path, new_file=True, truncated=True))
        else:
            self._offset = saved.offset

    def _open_rotated(self, saved: Position) -> bool:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return False
        for entry in entries:
            try:
                if entry.inode() != saved.inode or not entry.is_file(follow_symlinks=False):
                    continue
                f = open(entry.path, "rb", buffering=0)
            except OSError:
                continue
            if self._same_file(f, saved) and os.fstat(f.fileno()).st_size >= saved.offset:
                self._file.close()
                self._file, self._reading = f, entry.path
                self._ident, self._offset = (saved.dev, saved.inode), saved.offset
                return True
            f.close()
        return False

    # -- reading ---------------------------------------------------------------------------
    def _read(self) -> tuple[Chunk, int, bool]:
        """One read from the current offset: (complete lines, bytes consumed, reached end)."""
        assert self._file is not None
        chunk = Chunk(self._reading)
        size = os.fstat(self._file.fileno()).st_size
        if size < self._offset:         # copytruncate: the file restarted under us
            self._offset, self._skipping = 0, False
            chunk.new_file = chunk.truncated = True
        self._file.seek(self._offset)
        data = self._file.read(self.read_size)
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) < self.read_size:
                return chunk, 0, True   # a partial line waits for its newline
            self._take_oversized(chunk, data)
            return chunk, len(data), False
        self._split(chunk, data[:end])
        self._offset += end + 1
        return chunk, end + 1, len(data) < self.read_size

    def _split(self, chunk: Chunk, data: bytes) -> None:
        offset = self._offset
        for text in data.split(b"\n"):
            if self._skipping:          # the tail of an oversized line already reported
                self._skipping = False
            else:
                chunk.lines.append(Line(text, offset))
            offset += len(text) + 1

    def _take_oversized(self, chunk: Chunk, data: bytes) -> None:
        if not self._skipping:
            chunk.lines.append(Line(data, self._offset, oversized=True))
        self._skipping = True
        self._offset += len(data)

    # -- rotation --------------------------------------------------------------------------
    def _switch_if_rotated(self, chunks: list[Chunk]) -> bool:
        """At the end of the current file: if the path now names another file, finish this one
        and close it. True when there is a new file to read at once."""
        try:
            st = os.stat(self.path)
            current = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if current == self._ident:
            return False
        chunks.append(self._last_partial_line())
        self.close()
        self._rotating = True
        return current is not None

    def _last_partial_line(self) -> Chunk:
        """A rotated file never grows again: a last line without newline is still a record."""
        assert self._file is not None
        chunk = Chunk(self._reading)
        self._file.seek(self._offset)
        rest = self._file.read(self.read_size)
        if rest and not self._skipping:
            chunk.lines.append(Line(rest, self._offset, oversized=len(rest) >= self.read_size))
        self._offset += len(rest)
        return chunk
