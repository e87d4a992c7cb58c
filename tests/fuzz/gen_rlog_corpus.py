#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_rlog.c: frame payloads of the Raft log
(src/store/log.h) as rlog_write and rlog_compact write them, in the input
format fuzz_rlog.c describes. Rerun and commit the files:

    python3 tests/fuzz/gen_rlog_corpus.py tests/fuzz/corpus/rlog
"""
import os
import struct
import sys


def rec(t, payload):
    return struct.pack("<BI", t, len(payload)) + payload


def entry(index, term, typ, data):
    return rec(1, struct.pack("<QQB", index, term, typ) + data)


def hard(term, vote):
    return rec(2, struct.pack("<QQ", term, vote))


def trunc(index):
    return rec(3, struct.pack("<Q", index))


def snap(index, term, upto, members):
    return rec(4, struct.pack("<QQQ", index, term, upto) + members)


def case(frames, tail=b"", magic_bad=False):
    flags = (len(frames) - 1) << 2 | (2 if tail else 0) | (1 if magic_bad else 0)
    out = bytes([flags])
    for f in frames:
        out += struct.pack("<H", len(f)) + f
    return out + tail


CONF = bytes([1, 1]) + struct.pack("<Q", 1) + bytes([0, 9, 0]) + b"tcp://a:1"
C = {
    "entries": case([hard(1, 1) + entry(1, 1, 2, CONF) + entry(2, 1, 1, b"put k v"),
                     entry(3, 1, 1, b"x")]),
    "truncate": case([entry(1, 1, 1, b"a") + entry(2, 1, 1, b"b"),
                      hard(2, 2) + trunc(2) + entry(2, 2, 1, b"c")]),
    "snapshot": case([entry(1, 1, 1, b"a") + entry(2, 1, 1, b"b"),
                      snap(2, 1, 2, CONF) + hard(1, 0), entry(3, 1, 1, b"d")]),
    "torn_tail": case([entry(1, 1, 1, b"a")], tail=b"\x11\x22\x33\x44\x05\x00\x00\x00"),
    "zero_tail": case([entry(1, 1, 1, b"a")], tail=bytes(40)),
    "bad_magic": case([entry(1, 1, 1, b"a")], magic_bad=True),
}
d = sys.argv[1] if len(sys.argv) > 1 else "."
for name, data in C.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
