"""The echo benchmark's gevent peer: gevent.server.StreamServer, one greenlet per connection,
each echoing with recv(4096) / sendall, as the gevent docs' echo server does.

    /usr/bin/python3 bench/echo_gevent.py [port]    # port 0 (the default): any free port

Like the other echo servers: listens on 127.0.0.1, prints "port N" on stdout once it listens,
sets TCP_NODELAY on every connection, and serves until killed. Single-threaded: gevent's hub
(libev, Debian's python3-gevent) is the only event loop. Run by net_bench.sh, which skips it
when /usr/bin/python3 cannot import gevent.
"""
import socket
import sys

from gevent.server import StreamServer


def echo(conn, _address):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass  # the client reset the connection: that handler is done
    finally:
        conn.close()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = StreamServer(("127.0.0.1", port), echo)
    server.start()
    print("port %d" % server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
