// The real libc functions, bypassing green's own interposed versions (lib/monkey.cpp).
//
// libgreen defines read, write, poll, close... so that monkey patching reaches code in other
// libraries; green's own code must not go through those hooks (the hub reads its eventfd, the
// overflow handler writes to stderr from a signal handler). Each function is found once with
// dlsym(RTLD_NEXT), lazily and thread-safely; where dlsym finds nothing (a static binary) the
// raw system call is used instead.
#pragma once

#include <cstddef>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

namespace green::detail::sys {

ssize_t read(int fd, void* buf, std::size_t n);
ssize_t write(int fd, const void* buf, std::size_t n);
ssize_t readv(int fd, const iovec* iov, int count);
ssize_t writev(int fd, const iovec* iov, int count);
ssize_t recv(int fd, void* buf, std::size_t n, int flags);
ssize_t recvfrom(int fd, void* buf, std::size_t n, int flags, sockaddr* addr, socklen_t* len);
ssize_t recvmsg(int fd, msghdr* msg, int flags);
ssize_t send(int fd, const void* buf, std::size_t n, int flags);
ssize_t sendto(int fd, const void* buf, std::size_t n, int flags, const sockaddr* addr, socklen_t len);
ssize_t sendmsg(int fd, const msghdr* msg, int flags);
int connect(int fd, const sockaddr* addr, socklen_t len);
int accept4(int fd, sockaddr* addr, socklen_t* len, int flags);
int poll(pollfd* fds, nfds_t n, int timeout_ms);
int select(int n, fd_set* r, fd_set* w, fd_set* e, timeval* timeout);
int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* sigmask);
int pselect(int n, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* sigmask);
int epoll_pwait(int epfd, epoll_event* events, int max, int timeout_ms, const sigset_t* sigmask);
int close(int fd);
int socket(int domain, int type, int protocol);
int fcntl(int fd, int cmd, long arg);
int nanosleep(const timespec* req, timespec* rem);
// Returns an error number, not -1 and errno, as clock_nanosleep does.
int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem);
// glibc's sleep and usleep, over the real nanosleep.
unsigned sleep(unsigned seconds);
int usleep(useconds_t microseconds);

}  // namespace green::detail::sys
