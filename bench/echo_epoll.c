/* The limit for the echo benchmark: a plain single-threaded epoll echo server in C.
 *
 *     echo_epoll [port]        # port 0 (the default): any free port; prints "port N"
 *
 * Level-triggered epoll on non-blocking fds: a readable fd is read once (up to 4 KiB) and what
 * came is written straight back. That is the least a server can do per request: one read and
 * one write, plus its share of an epoll_wait. It never reads a socket that has nothing to give
 * (level-triggered readiness says so), and it touches epoll_ctl only when a connection opens,
 * closes, or (rarely) cannot take a whole reply and must wait to write the rest. */
#define _GNU_SOURCE /* accept4 */
#include "net_common.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

enum { buffer_size = 4096, max_events = 256 };

/* A reply the socket could not take whole: the rest waits for EPOLLOUT, and the connection is
 * not read meanwhile (an echo server may not race ahead of its client). */
struct pending {
    char data[buffer_size];
    size_t offset, length;
};

static struct pending** pending_by_fd;
static size_t pending_capacity;

static struct pending* pending_for(int fd) {
    if ((size_t)fd >= pending_capacity) {
        size_t n = pending_capacity ? pending_capacity : 1024;
        while (n <= (size_t)fd) n *= 2;
        pending_by_fd = realloc(pending_by_fd, n * sizeof *pending_by_fd);
        memset(pending_by_fd + pending_capacity, 0, (n - pending_capacity) * sizeof *pending_by_fd);
        pending_capacity = n;
    }
    if (!pending_by_fd[fd]) pending_by_fd[fd] = calloc(1, sizeof(struct pending));
    return pending_by_fd[fd];
}

static void close_connection(int fd) {
    if ((size_t)fd < pending_capacity && pending_by_fd[fd]) pending_by_fd[fd]->length = 0;
    close(fd); /* closing also drops it from the epoll set */
}

static void watch(int epfd, int op, int fd, unsigned events) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epfd, op, fd, &ev);
}

/* Writes what it can; returns 0 when all is out, 1 when some waits for EPOLLOUT, -1 on error. */
static int flush(int fd, struct pending* p) {
    while (p->offset < p->length) {
        ssize_t n = write(fd, p->data + p->offset, p->length - p->offset);
        if (n > 0) {
            p->offset += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return 1;
        } else {
            return -1;
        }
    }
    p->length = p->offset = 0;
    return 0;
}

static void on_readable(int epfd, int fd) {
    char buf[buffer_size];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        close_connection(fd);
        return;
    }
    ssize_t sent = write(fd, buf, (size_t)n);
    if (sent == n) return; /* the usual case: one read, one write */
    if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        close_connection(fd);
        return;
    }
    struct pending* p = pending_for(fd);
    if (sent < 0) sent = 0;
    memcpy(p->data, buf + sent, (size_t)(n - sent));
    p->offset = 0;
    p->length = (size_t)(n - sent);
    watch(epfd, EPOLL_CTL_MOD, fd, EPOLLOUT);
}

static void on_writable(int epfd, int fd) {
    int r = flush(fd, pending_for(fd));
    if (r < 0)
        close_connection(fd);
    else if (r == 0)
        watch(epfd, EPOLL_CTL_MOD, fd, EPOLLIN);
}

static void accept_all(int epfd, int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return; /* EAGAIN: none left; EMFILE and such: try again at the next event */
        }
        set_nodelay(fd);
        watch(epfd, EPOLL_CTL_ADD, fd, EPOLLIN);
    }
}

int main(int argc, char** argv) {
    int listener = listen_on(port_argument(argc, argv), SOCK_NONBLOCK | SOCK_CLOEXEC);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event events[max_events];
    watch(epfd, EPOLL_CTL_ADD, listener, EPOLLIN);
    announce_port(local_port(listener));
    for (;;) {
        int n = epoll_wait(epfd, events, max_events, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == listener)
                accept_all(epfd, listener);
            else if (events[i].events & EPOLLOUT)
                on_writable(epfd, fd);
            else
                on_readable(epfd, fd);
        }
    }
}
