// Support for the monkey-patching tests (tests/monkey_*_test.cpp): libc's own functions to
// compare the hooks with, the places a call can be made from (a greenlet, a thread without a
// hub, the hub greenlet itself), fd pairs, and a ticker that shows whether the hub ran other
// greenlets during a call.
//
// patch_all() is process-wide and cannot be undone, and a whole test binary may run in one
// process: every test calls patch_all() first and assumes nothing else about what ran before.
#pragma once

#include <green/event.hpp>
#include <green/hub.hpp>
#include <green/monkey.hpp>
#include <green/timeout.hpp>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <optional>
#include <ostream>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace monkey_test {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// What a call returned, and errno when it failed: the two things a hook must get right.
struct outcome {
    long result = 0;
    int error = 0;  // errno if result < 0, else 0
    friend bool operator==(const outcome&, const outcome&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const outcome& o) {
    os << o.result;
    if (o.result < 0) os << " (" << (strerrorname_np(o.error) ? strerrorname_np(o.error) : "?") << ")";
    return os;
}

// Runs a libc-style call and records its result and errno.
template <class F>
outcome attempt(F&& call) {
    errno = 0;
    const long r = static_cast<long>(call());
    return {r, r < 0 ? errno : 0};
}

// attempt() for a call that must not wait long: a hook that wrongly waits shows up as
// {-2, ETIME} after 2 s instead of hanging the test.
template <class F>
outcome within_2s(F&& call) {
    return green::with_timeout(2s, green::timeout_value(outcome{-2, ETIME}), [&] { return attempt(call); });
}

// libc's own definition of a function, bypassing libgreen's. (dlsym(RTLD_NEXT) from a test
// would find libgreen's definition, which comes before libc's in the search order.)
template <class F>
F* libc_function(const char* name) {
    static void* const handle = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    REQUIRE(handle != nullptr);
    void* f = dlsym(handle, name);
    REQUIRE_MESSAGE(f != nullptr, "libc has no " << name);
    return reinterpret_cast<F*>(f);
}
#define LIBC(name) ::monkey_test::libc_function<decltype(::name)>(#name)

// Where a call runs.
template <class F>
auto in_greenlet(F fn) {
    return green::spawn(std::move(fn)).get();
}

// In a std::thread: no hub there, so every hook must behave like libc.
template <class F>
auto in_thread(F fn) {
    std::optional<decltype(fn())> result;
    std::thread worker([&] { result.emplace(fn()); });
    worker.join();
    return std::move(*result);
}

// In the hub greenlet itself (a callback): hooks must not wait there either. (An async_result
// rather than a local green::event: it is reference-counted, so nothing the hub does after
// waking us can touch a destroyed object.)
template <class F>
auto in_hub(F fn) {
    green::async_result<decltype(fn())> result;
    green::get_hub().run_callback([fn = std::move(fn), result]() mutable { result.set(fn()); });
    return result.get();
}

// An fd pair closed at the end of the test (unless already closed: set the member to -1).
struct fd_pair {
    int a = -1;
    int b = -1;
    fd_pair() = default;
    fd_pair(int x, int y) : a(x), b(y) {}
    fd_pair(fd_pair&& o) noexcept : a(std::exchange(o.a, -1)), b(std::exchange(o.b, -1)) {}
    fd_pair& operator=(fd_pair&&) = delete;
    ~fd_pair() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
    }
};

// a: the read end, b: the write end.
inline fd_pair make_pipe(int flags = 0) {
    int fds[2];
    REQUIRE(::pipe2(fds, flags) == 0);
    return {fds[0], fds[1]};
}

inline fd_pair make_socketpair(int type = SOCK_STREAM) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, type, 0, fds) == 0);
    return {fds[0], fds[1]};
}

inline sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

inline std::uint16_t local_port(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    return ntohs(addr.sin_port);
}

// A blocking TCP listener on 127.0.0.1 and an ephemeral port.
struct tcp_listener {
    int fd = -1;
    std::uint16_t port = 0;
    explicit tcp_listener(int backlog = 16) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in addr = loopback(0);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd, backlog) == 0);
        port = local_port(fd);
    }
    tcp_listener(const tcp_listener&) = delete;
    ~tcp_listener() {
        if (fd >= 0) ::close(fd);
    }
    sockaddr_in address() const { return loopback(port); }
};

inline int connect_to(std::uint16_t port, int extra_type = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM | extra_type, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr = loopback(port);
    const int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    REQUIRE((r == 0 || errno == EINPROGRESS));
    return fd;
}

// A connected pair of blocking TCP sockets on 127.0.0.1: a is the client, b the server side.
inline fd_pair make_tcp_pair() {
    tcp_listener listener;
    const int client = connect_to(listener.port);
    const int server = ::accept(listener.fd, nullptr, nullptr);
    REQUIRE(server >= 0);
    return {client, server};
}

// A timeval of `ms` milliseconds, for SO_RCVTIMEO / SO_SNDTIMEO and select.
inline timeval ms_timeval(long ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

inline void set_timeout(int fd, int option, long ms) {
    const timeval tv = ms_timeval(ms);
    REQUIRE(::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv) == 0);
}

// Fills a socket's (or pipe's) send buffer without blocking; returns the bytes written.
inline std::size_t fill(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    REQUIRE(::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
    static char chunk[65536];
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::write(fd, chunk, sizeof chunk);
        if (n <= 0) break;
        total += static_cast<std::size_t>(n);
    }
    REQUIRE(::fcntl(fd, F_SETFL, flags) == 0);
    return total;
}

inline bool nonblocking_flag(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

inline double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// A greenlet that counts while it runs, every `period` (0: on every turn of the hub). A count
// that moved during a call proves the call waited in the hub; one that did not, that it never
// yielded.
class ticker {
public:
    explicit ticker(green::duration period = 0s) {
        task_.emplace(green::spawn([this, period] {
            for (;;) {
                ++ticks;
                if (period.ns.count() == 0)
                    green::sleep();
                else
                    green::sleep(period);
            }
        }));
        green::sleep();  // let it start, so that later counts only move when the hub runs
    }
    ticker(const ticker&) = delete;
    ~ticker() { task_->kill(); }
    int ticks = 0;

private:
    std::optional<green::task<void>> task_;
};

}  // namespace monkey_test
