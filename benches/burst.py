#!/usr/bin/env python3
"""burst.py HOST PORT PATH COUNT - COUNT scrapes that reach the exporter at the same moment.

All connections are opened first and the requests are sent together behind a barrier, so
they arrive within a few milliseconds of each other, well inside one collection. Prints one
JSON object: the status codes, the libproc_collections_total values the bodies carry (one
value means the scrapes shared one collection), body bytes and the burst's wall time.
"""
import json
import re
import socket
import sys
import threading
import time

host, port, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
socks = [socket.create_connection((host, port), timeout=300) for _ in range(count)]
barrier = threading.Barrier(count)
results = [None] * count
request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()


def scrape(i):
    s = socks[i]
    barrier.wait()
    s.sendall(request)
    data = bytearray()
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    s.close()
    results[i] = bytes(data)


started = time.monotonic()
threads = [threading.Thread(target=scrape, args=(i,)) for i in range(count)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.monotonic() - started

statuses, collections, body_bytes = {}, set(), []
for data in results:
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode() if head else "none"
    statuses[status] = statuses.get(status, 0) + 1
    m = re.search(rb"^libproc_collections_total (\S+)$", body, re.M)
    if m:
        collections.add(float(m.group(1)))
    body_bytes.append(len(body))
print(json.dumps(dict(count=count, statuses=statuses, collections=sorted(collections),
                      body_bytes=max(body_bytes), wall_ms=wall * 1e3)))
