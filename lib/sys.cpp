// The real libc functions: dlsym(RTLD_NEXT) once, or the raw system call.
#include "sys.hpp"

#include <atomic>
#include <csignal>
#include <cerrno>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace green::detail::sys {

namespace {

// The next definition of `name` after libgreen's (libc's), looked up once; nullptr in a static
// binary. A plain atomic rather than a function-local static: these run inside sanitizer
// interceptors too (TSan's nanosleep calls libgreen's), where a static's init guard is not seen.
template <class F>
F next_definition(std::atomic<void*>& slot, const char* name) {
    static char not_found;
    void* p = slot.load(std::memory_order_acquire);
    if (!p) {
        p = dlsym(RTLD_NEXT, name);
        if (!p) p = &not_found;
        slot.store(p, std::memory_order_release);
    }
    return p == &not_found ? nullptr : reinterpret_cast<F>(p);
}

}  // namespace

ssize_t read(int fd, void* buf, std::size_t n) {
    static std::atomic<void*> slot{nullptr};
    const auto real_read = next_definition<ssize_t (*)(int, void*, std::size_t)>(slot, "read");
    return real_read ? real_read(fd, buf, n) : ::syscall(SYS_read, fd, buf, n);
}

ssize_t write(int fd, const void* buf, std::size_t n) {
    static std::atomic<void*> slot{nullptr};
    const auto real_write = next_definition<ssize_t (*)(int, const void*, std::size_t)>(slot, "write");
    return real_write ? real_write(fd, buf, n) : ::syscall(SYS_write, fd, buf, n);
}

ssize_t readv(int fd, const iovec* iov, int count) {
    static std::atomic<void*> slot{nullptr};
    const auto real_readv = next_definition<ssize_t (*)(int, const iovec*, int)>(slot, "readv");
    return real_readv ? real_readv(fd, iov, count) : ::syscall(SYS_readv, fd, iov, count);
}

ssize_t writev(int fd, const iovec* iov, int count) {
    static std::atomic<void*> slot{nullptr};
    const auto real_writev = next_definition<ssize_t (*)(int, const iovec*, int)>(slot, "writev");
    return real_writev ? real_writev(fd, iov, count) : ::syscall(SYS_writev, fd, iov, count);
}

ssize_t recv(int fd, void* buf, std::size_t n, int flags) {
    static std::atomic<void*> slot{nullptr};
    const auto real_recv = next_definition<ssize_t (*)(int, void*, std::size_t, int)>(slot, "recv");
    return real_recv ? real_recv(fd, buf, n, flags) : ::syscall(SYS_recvfrom, fd, buf, n, flags, nullptr, nullptr);
}

ssize_t recvfrom(int fd, void* buf, std::size_t n, int flags, sockaddr* addr, socklen_t* len) {
    static std::atomic<void*> slot{nullptr};
    const auto real_recvfrom = next_definition<ssize_t (*)(int, void*, std::size_t, int, sockaddr*, socklen_t*)>(slot, "recvfrom");
    return real_recvfrom ? real_recvfrom(fd, buf, n, flags, addr, len)
                         : ::syscall(SYS_recvfrom, fd, buf, n, flags, addr, len);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    static std::atomic<void*> slot{nullptr};
    const auto real_recvmsg = next_definition<ssize_t (*)(int, msghdr*, int)>(slot, "recvmsg");
    return real_recvmsg ? real_recvmsg(fd, msg, flags) : ::syscall(SYS_recvmsg, fd, msg, flags);
}

ssize_t send(int fd, const void* buf, std::size_t n, int flags) {
    static std::atomic<void*> slot{nullptr};
    const auto real_send = next_definition<ssize_t (*)(int, const void*, std::size_t, int)>(slot, "send");
    return real_send ? real_send(fd, buf, n, flags) : ::syscall(SYS_sendto, fd, buf, n, flags, nullptr, 0);
}

ssize_t sendto(int fd, const void* buf, std::size_t n, int flags, const sockaddr* addr, socklen_t len) {
    static std::atomic<void*> slot{nullptr};
    const auto real_sendto = next_definition<ssize_t (*)(int, const void*, std::size_t, int, const sockaddr*, socklen_t)>(slot, "sendto");
    return real_sendto ? real_sendto(fd, buf, n, flags, addr, len) : ::syscall(SYS_sendto, fd, buf, n, flags, addr, len);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    static std::atomic<void*> slot{nullptr};
    const auto real_sendmsg = next_definition<ssize_t (*)(int, const msghdr*, int)>(slot, "sendmsg");
    return real_sendmsg ? real_sendmsg(fd, msg, flags) : ::syscall(SYS_sendmsg, fd, msg, flags);
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
    static std::atomic<void*> slot{nullptr};
    const auto real_connect = next_definition<int (*)(int, const sockaddr*, socklen_t)>(slot, "connect");
    return real_connect ? real_connect(fd, addr, len) : static_cast<int>(::syscall(SYS_connect, fd, addr, len));
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    static std::atomic<void*> slot{nullptr};
    const auto real_accept4 = next_definition<int (*)(int, sockaddr*, socklen_t*, int)>(slot, "accept4");
    return real_accept4 ? real_accept4(fd, addr, len, flags)
                        : static_cast<int>(::syscall(SYS_accept4, fd, addr, len, flags));
}

int poll(pollfd* fds, nfds_t n, int timeout_ms) {
    static std::atomic<void*> slot{nullptr};
    const auto real_poll = next_definition<int (*)(pollfd*, nfds_t, int)>(slot, "poll");
    if (real_poll) return real_poll(fds, n, timeout_ms);
    timespec ts{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1'000'000};
    return static_cast<int>(::syscall(SYS_ppoll, fds, n, timeout_ms < 0 ? nullptr : &ts, nullptr, 0));
}

int select(int n, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
    static std::atomic<void*> slot{nullptr};
    const auto real_select = next_definition<int (*)(int, fd_set*, fd_set*, fd_set*, timeval*)>(slot, "select");
    return real_select ? real_select(n, r, w, e, timeout) : static_cast<int>(::syscall(SYS_select, n, r, w, e, timeout));
}

// The kernel's sigset size, for the raw system calls (glibc's sigset_t is larger).
constexpr long kernel_sigset_size = _NSIG / 8;

int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* sigmask) {
    static std::atomic<void*> slot{nullptr};
    const auto real = next_definition<int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*)>(slot, "ppoll");
    if (real) return real(fds, n, timeout, sigmask);
    timespec copy{};  // the system call writes the time left back; glibc's ppoll does not
    if (timeout) copy = *timeout;
    return static_cast<int>(::syscall(SYS_ppoll, fds, n, timeout ? &copy : nullptr, sigmask, kernel_sigset_size));
}

int pselect(int n, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* sigmask) {
    static std::atomic<void*> slot{nullptr};
    const auto real =
        next_definition<int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*)>(slot, "pselect");
    if (real) return real(n, r, w, e, timeout, sigmask);
    timespec copy{};
    if (timeout) copy = *timeout;
    struct {
        const sigset_t* set;
        long size;
    } mask{sigmask, kernel_sigset_size};
    return static_cast<int>(::syscall(SYS_pselect6, n, r, w, e, timeout ? &copy : nullptr, &mask));
}

int epoll_pwait(int epfd, epoll_event* events, int max, int timeout_ms, const sigset_t* sigmask) {
    static std::atomic<void*> slot{nullptr};
    const auto real = next_definition<int (*)(int, epoll_event*, int, int, const sigset_t*)>(slot, "epoll_pwait");
    return real ? real(epfd, events, max, timeout_ms, sigmask)
                : static_cast<int>(::syscall(SYS_epoll_pwait, epfd, events, max, timeout_ms, sigmask, kernel_sigset_size));
}

int close(int fd) {
    static std::atomic<void*> slot{nullptr};
    const auto real_close = next_definition<int (*)(int)>(slot, "close");
    return real_close ? real_close(fd) : static_cast<int>(::syscall(SYS_close, fd));
}

int socket(int domain, int type, int protocol) {
    static std::atomic<void*> slot{nullptr};
    const auto real_socket = next_definition<int (*)(int, int, int)>(slot, "socket");
    return real_socket ? real_socket(domain, type, protocol)
                       : static_cast<int>(::syscall(SYS_socket, domain, type, protocol));
}

int fcntl(int fd, int cmd, long arg) {
    static std::atomic<void*> slot{nullptr};
    const auto real_fcntl = next_definition<int (*)(int, int, ...)>(slot, "fcntl");
    return real_fcntl ? real_fcntl(fd, cmd, arg) : static_cast<int>(::syscall(SYS_fcntl, fd, cmd, arg));
}

int nanosleep(const timespec* req, timespec* rem) {
    static std::atomic<void*> slot{nullptr};
    const auto real_nanosleep = next_definition<int (*)(const timespec*, timespec*)>(slot, "nanosleep");
    return real_nanosleep ? real_nanosleep(req, rem) : static_cast<int>(::syscall(SYS_nanosleep, req, rem));
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
    // An atomic slot, constant-initialised: no static init guard, which sanitizer interceptors
    // (TSan's wraps clock_nanosleep and calls ours) do not model.
    static std::atomic<void*> slot{nullptr};
    static char not_found;
    void* p = slot.load(std::memory_order_acquire);
    if (!p) {
        p = dlsym(RTLD_NEXT, "clock_nanosleep");
        slot.store(p ? p : &not_found, std::memory_order_release);
    }
    if (p && p != &not_found)
        return reinterpret_cast<int (*)(clockid_t, int, const timespec*, timespec*)>(p)(clock, flags, req, rem);
    const int saved = errno;  // the system call says -1 and errno; clock_nanosleep returns it
    const int r = ::syscall(SYS_clock_nanosleep, clock, flags, req, rem) == 0 ? 0 : errno;
    errno = saved;
    return r;
}

// sleep and usleep are glibc's own algorithms over nanosleep (glibc's are exactly these): the
// whole seconds left, truncated, when a signal interrupts sleep, and errno kept otherwise.
unsigned sleep(unsigned seconds) {
    const int saved = errno;
    timespec ts{static_cast<time_t>(seconds), 0};
    if (sys::nanosleep(&ts, &ts) != 0) return static_cast<unsigned>(ts.tv_sec);
    errno = saved;
    return 0;
}

int usleep(useconds_t microseconds) {
    const timespec ts{static_cast<time_t>(microseconds / 1'000'000), static_cast<long>(microseconds % 1'000'000) * 1000};
    return sys::nanosleep(&ts, nullptr);
}

}  // namespace green::detail::sys
