/* What the network benchmark's programs share: a listening socket on 127.0.0.1, the line that
 * tells the driver (net_bench.sh) which port it got, and the HTTP hello-world response.
 * Plain C, so the C peers and the C++ servers use the very same code. */
#ifndef GREEN_BENCH_NET_COMMON_H
#define GREEN_BENCH_NET_COMMON_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/* The whole response to every request; HTTP/1.1 keeps the connection open by default. */
#define HELLO_RESPONSE \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"

/* The port from argv[1], or 0 (any free port) without one. */
static inline unsigned short port_argument(int argc, char** argv) {
    return argc > 1 ? (unsigned short)atoi(argv[1]) : 0;
}

/* A TCP socket listening on 127.0.0.1:port (0: any free port), with `type_flags` (e.g.
 * SOCK_NONBLOCK) added to SOCK_STREAM. Exits with a message when that fails. */
static inline int listen_on(unsigned short port, int type_flags) {
    int fd = socket(AF_INET, SOCK_STREAM | type_flags, 0);
    int one = 1;
    struct sockaddr_in addr;
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(fd, SOMAXCONN) < 0) {
        perror("bind/listen");
        exit(1);
    }
    return fd;
}

/* Prints "port N" on stdout, the first line the driver waits for. */
static inline void announce_port(unsigned short port) {
    printf("port %u\n", port);
    fflush(stdout);
}

/* The port a bound socket got. */
static inline unsigned short local_port(int fd) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr*)&addr, &len);
    return ntohs(addr.sin_port);
}

/* Replies go out at once: small writes are not held back (Nagle) on any of the servers. */
static inline void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

#endif
