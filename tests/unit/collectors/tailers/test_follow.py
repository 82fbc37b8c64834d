"""FileFollower: complete lines only, rotation, truncation, resume, recycled inodes."""
from __future__ import annotations

import os

from collectors.tailers.follow import FileFollower, Position


def texts(chunks) -> list[bytes]:
    return [line.text for chunk in chunks for line in chunk.lines]


def append(path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_partial_line_waits_for_its_newline(tmp_path):
    log = tmp_path / "conn.log"
    append(log, b"one\ntw")
    follower = FileFollower(str(log))
    assert texts(follower.poll()) == [b"one"]
    assert texts(follower.poll()) == []
    append(log, b"o\nthree\n")
    chunks = follower.poll()
    assert texts(chunks) == [b"two", b"three"]
    assert [line.offset for line in chunks[0].lines] == [4, 8]
    assert follower.position.offset == 14


def test_missing_file_is_waited_for(tmp_path):
    follower = FileFollower(str(tmp_path / "eve.json"))
    assert follower.poll() == [] and follower.position is None
    append(tmp_path / "eve.json", b"{}\n")
    assert texts(follower.poll()) == [b"{}"]


def test_rotation_finishes_old_file_then_reads_new(tmp_path):
    log = tmp_path / "conn.log"
    append(log, b"a1\na2\n")
    follower = FileFollower(str(log))
    assert texts(follower.poll()) == [b"a1", b"a2"]
    append(log, b"a3\na4-no-newline")
    os.rename(log, tmp_path / "conn.10:00:00-11:00:00.log")
    append(log, b"b1\n")
    chunks = follower.poll()
    assert texts(chunks) == [b"a3", b"a4-no-newline", b"b1"]
    assert chunks[0].path == str(log)  # the name it had when opened; offsets stay exact
    new = [c for c in chunks if c.new_file]
    assert len(new) == 1 and new[0].rotated and new[0].path == str(log)


def test_rotation_with_a_gap_before_the_new_file(tmp_path):
    log = tmp_path / "eve.json"
    append(log, b"x\n")
    follower = FileFollower(str(log))
    follower.poll()
    os.rename(log, tmp_path / "eve.json.1")
    assert follower.poll() == []
    append(log, b"y\n")
    chunks = follower.poll()
    assert texts(chunks) == [b"y"] and any(c.rotated for c in chunks)


def test_truncation_restarts_at_zero(tmp_path):
    log = tmp_path / "eve.json"
    append(log, b"first line\nsecond line\n")
    follower = FileFollower(str(log))
    follower.poll()
    with open(log, "wb") as f:      # copytruncate
        f.write(b"new\n")
    chunks = follower.poll()
    assert texts(chunks) == [b"new"] and chunks[0].truncated and chunks[0].new_file


def test_resume_from_position(tmp_path):
    log = tmp_path / "conn.log"
    append(log, b"l1\nl2\n")
    first = FileFollower(str(log))
    first.poll()
    saved = Position.from_json(first.position.to_json())
    first.close()
    append(log, b"l3\n")
    assert texts(FileFollower(str(log), saved).poll()) == [b"l3"]


def test_resume_after_rotation_while_down_drains_the_old_file(tmp_path):
    log = tmp_path / "conn.log"
    append(log, b"l1\n")
    first = FileFollower(str(log))
    first.poll()
    saved = first.position
    first.close()
    append(log, b"l2\n")
    os.rename(log, tmp_path / "conn.old.log")
    append(log, b"n1\n")
    chunks = FileFollower(str(log), saved).poll()
    assert texts(chunks) == [b"l2", b"n1"]


def test_recycled_inode_is_not_resumed(tmp_path):
    log = tmp_path / "conn.log"
    append(log, b"#open\t2024-03-11-10-00-00\nold\n")
    first = FileFollower(str(log))
    first.poll()
    saved = first.position
    first.close()
    with open(log, "r+b") as f:     # same inode, different content (as after delete + reuse)
        f.write(b"#open\t2024-03-11-11-00-00\nnew\n")
    assert texts(FileFollower(str(log), saved).poll()) == [b"#open\t2024-03-11-11-00-00", b"new"]


def test_oversized_line_is_reported_once(tmp_path):
    log = tmp_path / "eve.json"
    append(log, b"x" * 100 + b"\nok\n")
    chunks = FileFollower(str(log), read_size=32).poll()
    lines = [line for chunk in chunks for line in chunk.lines]
    assert [(len(line.text), line.oversized) for line in lines] == [(32, True), (2, False)]
