#!/usr/bin/python3
# gevent's side of green's demos/crawler: fetch N pages from a server that takes `delay` seconds
# to answer each one, one greenlet per page, so the waits overlap and the crawl costs about
# `delay` whatever N is. The client is unmodified blocking code (urllib.request.urlopen) made
# cooperative by monkey.patch_all(), the gevent tutorial's way; the slow server runs in the same
# process (gevent.server.StreamServer on 127.0.0.1, a free port): it reads the request, sleeps
# `delay`, answers "page <path>" with Content-Length over HTTP/1.0 and closes.
#
#     /usr/bin/python3 bench/crawler_gevent.py [--pages N] [--delay SECONDS]   # 100 pages, 1.0 s
#
# Prints "Cost time: X s" like the C++ demo and "@ crawler_s gevent X" (seconds, wall time from
# the first spawn to the last page checked); if any page failed it prints no "@" line and exits 1.
from gevent import monkey

monkey.patch_all()  # first, before anything imports socket

import argparse
import sys
import time
import urllib.request

import gevent
from gevent.server import StreamServer


def slow_page(delay):
    def handle(conn, _address):
        request = b""
        while b"\r\n\r\n" not in request:
            part = conn.recv(4096)
            if not part:
                return
            request += part
        path = request.split(b" ", 2)[1]  # "GET /7 HTTP/1.1"
        gevent.sleep(delay)
        body = b"page " + path
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.close()
    return handle


def fetch(port, page):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=30) as response:
            return response.read() == f"page /{page}".encode()
    except Exception as error:  # any failure is a failed page, reported
        print(f"page {page}: {error}", file=sys.stderr)
        return False


def main():
    parser = argparse.ArgumentParser(description="gevent peer of green's demos/crawler")
    parser.add_argument("--pages", type=int, default=100, metavar="N")
    parser.add_argument("--delay", type=float, default=1.0, metavar="SECONDS")
    args = parser.parse_args()
    if not 1 <= args.pages <= 10000:
        parser.error("--pages must be within 1-10000")
    if not 0 <= args.delay <= 60:
        parser.error("--delay must be within 0-60 s")

    # The server is on loopback: a proxy from the environment must not carry the requests.
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({})))
    # All N connections arrive at once; the backlog must hold them until the server accepts.
    server = StreamServer(("127.0.0.1", 0), slow_page(args.delay), backlog=max(args.pages, 128))
    server.start()
    port = server.server_port
    print(f"A slow server on 127.0.0.1:{port} answers each page after {args.delay:.1f} s. "
          f"Fetching {args.pages} pages:")

    start = time.perf_counter()
    fetches = [gevent.spawn(fetch, port, page) for page in range(args.pages)]
    gevent.joinall(fetches)
    ok = sum(1 for f in fetches if f.value)
    took = time.perf_counter() - start
    server.stop()

    label = f"concurrent, {args.pages} greenlets with blocking urllib:"
    print(f"{label:<44} {ok}/{args.pages} pages. Cost time: {took:.2f} s")
    if ok < args.pages:
        sys.exit(1)  # a crawl with failed pages is no measurement: no "@" line
    print(f"@ crawler_s gevent {took:.3f}")


if __name__ == "__main__":
    main()
