#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_snap.c: small snapshot streams in the
format of src/store/kv_snap.c (metadata, user keys with version-2 and
version-1 records, the end mark). Rerun after a format change and commit
the files:

    python3 tests/fuzz/gen_snap_corpus.py tests/fuzz/corpus/snap
"""
import os
import struct
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def record(kind, value, mode=0o644, mtime=1_700_000_000_000_000_000, create=3, mod=5, version=2):
    return (bytes([2, kind]) + varint(mode) + varint(zigzag(mtime)) + varint(create)
            + varint(zigzag(mod - create)) + varint(version) + value)


def record_v1(kind, value):
    return bytes([1, kind, 0, 0]) + struct.pack("<IqQQQ", 0o600, 1, 7, 9, 3) + value


def item(key, value):
    return struct.pack("<I", len(key)) + key + struct.pack("<I", len(value)) + value


END = struct.pack("<I", 0xFFFFFFFF)
META = item(b"\0applied", struct.pack("<Q", 42)) + item(b"\0count", struct.pack("<Q", 3))

streams = {
    "empty": META[:0] + item(b"\0applied", struct.pack("<Q", 1)) + END,
    "three_keys": META + item(b"kalpha", record(1, b"one")) + item(b"kdir/", record(2, b""))
    + item(b"kconf", record(0, b'{"port":80}')) + END,
    "v1_record": META + item(b"kold", record_v1(1, b"from an earlier build")) + END,
    "cut_short": META + item(b"kalpha", record(1, b"one"))[:9],
}
d = sys.argv[1] if len(sys.argv) > 1 else "."
for name, data in streams.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
