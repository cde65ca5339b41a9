/* The limit for the HTTP benchmark: a plain single-threaded epoll server in C answering every
 * request with "Hello, World!" over HTTP/1.1 keep-alive.
 *
 *     http_epoll [port]        # port 0 (the default): any free port; prints "port N"
 *
 * Level-triggered epoll on non-blocking fds, as echo_epoll. A readable connection is read once;
 * each complete request in its buffer (everything up to a blank line: the benchmark's GETs have
 * no body) gets the fixed response, one write each. A response the socket cannot take whole
 * closes the connection: with one request in flight per connection (wrk's way) it never
 * happens, and handling it would only add code the benchmark never runs. */
#define _GNU_SOURCE /* accept4, memmem */
#include "net_common.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

enum { buffer_size = 8192, max_events = 256 };

struct request_buffer {
    char data[buffer_size];
    size_t length;
};

static struct request_buffer** buffers;
static size_t buffer_capacity;

static struct request_buffer* buffer_for(int fd) {
    if ((size_t)fd >= buffer_capacity) {
        size_t n = buffer_capacity ? buffer_capacity : 1024;
        while (n <= (size_t)fd) n *= 2;
        buffers = realloc(buffers, n * sizeof *buffers);
        memset(buffers + buffer_capacity, 0, (n - buffer_capacity) * sizeof *buffers);
        buffer_capacity = n;
    }
    if (!buffers[fd]) buffers[fd] = calloc(1, sizeof(struct request_buffer));
    return buffers[fd];
}

static void close_connection(int fd) {
    buffer_for(fd)->length = 0;
    close(fd);
}

static void on_readable(int fd) {
    static const char response[] = HELLO_RESPONSE;
    struct request_buffer* b = buffer_for(fd);
    ssize_t n = read(fd, b->data + b->length, sizeof b->data - b->length);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        close_connection(fd);
        return;
    }
    b->length += (size_t)n;
    size_t start = 0;
    for (const char* end; (end = memmem(b->data + start, b->length - start, "\r\n\r\n", 4));) {
        start = (size_t)(end - b->data) + 4;
        if (write(fd, response, sizeof response - 1) != (ssize_t)(sizeof response - 1)) {
            close_connection(fd);
            return;
        }
    }
    if (start == 0 && b->length == sizeof b->data) { /* a request too big for this responder */
        close_connection(fd);
        return;
    }
    memmove(b->data, b->data + start, b->length - start);
    b->length -= start;
}

int main(int argc, char** argv) {
    int listener = listen_on(port_argument(argc, argv), SOCK_NONBLOCK | SOCK_CLOEXEC);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    struct epoll_event events[max_events];
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    announce_port(local_port(listener));
    for (;;) {
        int n = epoll_wait(epfd, events, max_events, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd != listener) {
                on_readable(fd);
                continue;
            }
            for (int conn; (conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
                struct epoll_event conn_ev = {.events = EPOLLIN, .data.fd = conn};
                set_nodelay(conn);
                epoll_ctl(epfd, EPOLL_CTL_ADD, conn, &conn_ev);
            }
        }
    }
}
