#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_resp.c: HTTP/1.1 responses as kvfsd and
etcd's gateway send them, each after a flags byte (bit 0: HEAD) and a byte
that picks a split point. Rerun and commit the files:

    python3 tests/fuzz/gen_resp_corpus.py tests/fuzz/corpus/resp
"""
import os
import sys

R = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Type: application/json\r\n\r\n"
    b'{"status":"success","x":1}'[:24],
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n",
    "not_found": b"HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\n\r\n{\"detail\":\"not found\"",
    "no_content": b"HTTP/1.1 204 No Content\r\n\r\n",
    "close": b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nbody to the end",
    "busy": b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
    "pipelined": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
}
d = sys.argv[1] if len(sys.argv) > 1 else "."
for name, resp in R.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes([0, 17]) + resp)
with open(os.path.join(d, "head"), "wb") as f:
    f.write(bytes([1, 5]) + b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
