// Cooperative sockets: try the call; on EAGAIN wait in the hub for readiness; retry.
#include "hub_impl.hpp"
#include "sys.hpp"

#include <green/event.hpp>
#include <green/socket.hpp>
#include <green/threadpool.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdexcept>
#include <unistd.h>

namespace green {

namespace detail {

namespace {

[[noreturn]] void throw_errno(int e, const std::string& what) { throw std::system_error(e, std::generic_category(), what); }

bool ready_now(int fd, bool write) {
    pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    return sys::poll(&p, 1, 0) > 0 && (p.revents & (write ? POLLOUT | POLLERR | POLLHUP : POLLIN | POLLERR | POLLHUP));
}

}  // namespace

// Waits for fd's readiness in the hub: true when ready, false at the timeout. A regular file
// (which epoll refuses) is always ready.
bool wait_fd(int fd, bool write, std::optional<duration> timeout, bool guess) {
    const char* what = write ? "wait_write" : "wait_read";
    check_timeout(timeout, what);
    forbid_in_hub(what);
    hub_impl& h = this_hub();
    fd_watch& w = h.watch(fd);
    waiter*& slot = write ? w.writer : w.reader;
    if (slot)
        throw concurrent_use_error("another greenlet is already waiting to " + std::string(write ? "write" : "read") +
                                   " fd " + std::to_string(fd));
    if (!w.registered) {
        if (!h.io.add(fd)) {
            if (errno == EPERM) return true;  // a regular file
            throw_errno(errno, std::string(what) + ": cannot poll fd " + std::to_string(fd));
        }
        w.registered = true;
    }
    waiter wt;
    wt.what = what;
    slot = &wt;
    ++h.io_waiters;
    struct cleanup {
        hub_impl& h;
        int fd;
        bool write;
        waiter* wt;
        ~cleanup() {
            --h.io_waiters;
            // cancel_wait may have handed the slot to a new fd with the same number meanwhile.
            if (static_cast<std::size_t>(fd) < h.fds.size() && h.fds[fd]) {
                waiter*& s = write ? h.fds[fd]->writer : h.fds[fd]->reader;
                if (s == wt) s = nullptr;
            }
        }
    } on_exit{h, fd, write, &wt};
    waiter_node guessed;  // unlinks itself when the wait ends
    if (guess) {
        guessed.owner = &wt;
        h.guessed.push_back(guessed);
    }
    const bool ready = block(wt, timeout);
    if (wt.reason == wake_reason::cancelled)
        throw_errno(wt.error, std::string(what) + ": File descriptor was closed in another greenlet");
    return ready;
}

void note_drained(int fd) noexcept {
    hub_impl* h = existing_hub();
    if (h && static_cast<std::size_t>(fd) < h->fds.size() && h->fds[fd] && h->fds[fd]->registered)
        h->fds[fd]->drained_before_poll = h->polls + 1;
}

bool probably_drained(int fd) noexcept {
    hub_impl* h = existing_hub();
    return h && static_cast<std::size_t>(fd) < h->fds.size() && h->fds[fd] &&
           h->fds[fd]->drained_before_poll == h->polls + 1;
}

thread_local bool tls_pool_worker [[gnu::tls_model("initial-exec")]] = false;

void offload(std::function<void()> fn) { get_hub().threadpool().spawn(std::move(fn)).get(); }

}  // namespace detail

using detail::throw_errno;

void wait_read(int fd, std::optional<duration> timeout) {
    // The fd may have been readable since before it was registered, or its edge may have gone
    // to an earlier waiter: look first (edge-triggered epoll would not say it again).
    if (detail::ready_now(fd, false)) return;
    if (!detail::wait_fd(fd, false, timeout)) throw socket_timeout("wait_read: timed out");
}

void wait_write(int fd, std::optional<duration> timeout) {
    if (detail::ready_now(fd, true)) return;
    if (!detail::wait_fd(fd, true, timeout)) throw socket_timeout("wait_write: timed out");
}

void cancel_wait(int fd) noexcept {
    if (detail::hub_impl* h = detail::existing_hub()) {
        h->forget_fd(fd, EBADF);
        if (static_cast<std::size_t>(fd) < h->fds.size() && h->fds[fd]) {
            h->fds[fd]->reader = nullptr;
            h->fds[fd]->writer = nullptr;
        }
    }
}

// ---- endpoint ---------------------------------------------------------------------------

endpoint::endpoint(std::string_view address, std::uint16_t port) {
    std::string text(address);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage_);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage_);
    if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        length_ = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        length_ = sizeof(sockaddr_in6);
    } else {
        throw std::invalid_argument("green::endpoint: not a numeric IPv4 or IPv6 address: '" + text +
                                    "' (use green::resolve for host names)");
    }
}

endpoint::endpoint(const sockaddr* addr, socklen_t len) {
    if (len > sizeof storage_) throw std::invalid_argument("green::endpoint: address too long");
    std::memcpy(&storage_, addr, len);
    length_ = len;
}

std::uint16_t endpoint::port() const noexcept {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

std::string endpoint::address() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
    else if (family() == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
    return buf;
}

std::string endpoint::to_string() const {
    return family() == AF_INET6 ? "[" + address() + "]:" + std::to_string(port())
                                : address() + ":" + std::to_string(port());
}

// ---- socket -----------------------------------------------------------------------------

namespace {
bool nonblocking(const std::optional<duration>& t) { return t && t->ns.count() == 0; }
}  // namespace

socket::socket(int family, int type, int protocol) {
    fd_ = detail::sys::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd_ < 0) throw_errno(errno, "socket");
    stream_ = (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM;
}

socket socket::adopt(int fd) {
    int flags = detail::sys::fcntl(fd, F_GETFL, 0);
    if (flags < 0 || detail::sys::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno(errno, "socket::adopt");
    detail::forget_fd_info(fd);  // its O_NONBLOCK is now green's, not the user's
    int type = 0;
    socklen_t len = sizeof type;
    const bool stream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    return socket(fd, stream);
}

socket::socket(socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), stream_(other.stream_), timeout_(other.timeout_) {}

socket& socket::operator=(socket&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        stream_ = other.stream_;
        timeout_ = other.timeout_;
    }
    return *this;
}

int socket::release() noexcept {
    cancel_wait(fd_);
    return std::exchange(fd_, -1);
}

void socket::close() noexcept {
    if (fd_ < 0) return;
    cancel_wait(fd_);  // wake waiters with EBADF and drop the epoll registration first
    detail::forget_fd_info(fd_);
    detail::sys::close(fd_);
    fd_ = -1;
}

std::int64_t socket::deadline(std::optional<duration> override_timeout) const {
    std::optional<duration> t = override_timeout ? override_timeout : timeout_;
    if (!t) return -1;
    detail::check_timeout(t, "socket");
    return detail::now_ns() + t->ns.count();
}

void socket::wait(bool write, std::int64_t deadline, const char* what, bool guess) {
    std::optional<duration> left;
    if (deadline >= 0) {
        std::int64_t remaining = deadline - detail::now_ns();
        if (remaining <= 0) throw socket_timeout(std::string(what) + ": timed out");
        left = std::chrono::nanoseconds(remaining);
    }
    if (!detail::wait_fd(fd_, write, left, guess)) throw socket_timeout(std::string(what) + ": timed out");
}

void socket::bind(const endpoint& address) {
    if (::bind(fd_, address.data(), address.size()) < 0) throw_errno(errno, "bind " + address.to_string());
}

void socket::listen(int backlog) {
    if (::listen(fd_, backlog) < 0) throw_errno(errno, "listen");
}

void socket::connect(const endpoint& address, std::optional<duration> timeout) {
    const std::int64_t until = deadline(timeout);
    if (detail::sys::connect(fd_, address.data(), address.size()) == 0) return;
    if (errno != EINPROGRESS && errno != EINTR) throw_errno(errno, "connect " + address.to_string());
    if (nonblocking(timeout ? timeout : timeout_)) throw_errno(EINPROGRESS, "connect " + address.to_string());
    wait(true, until, "connect");
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) < 0) error = errno;
    if (error) throw_errno(error, "connect " + address.to_string());
}

socket socket::accept(endpoint* peer) {
    const std::int64_t until = deadline();
    for (;;) {
        sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int fd = detail::sys::accept4(fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (peer) *peer = endpoint(reinterpret_cast<sockaddr*>(&addr), len);
            socket s(fd, stream_);
            s.timeout_ = timeout_;
            return s;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno(errno, "accept");
        if (nonblocking(timeout_)) throw_errno(errno, "accept");
        wait(false, until, "accept");
    }
}

std::size_t socket::recv(void* buffer, std::size_t n, int flags) {
    const std::int64_t until = deadline();
    // The last recv came up short and nothing has been polled since: skip the try that would
    // fail with EAGAIN (a tenth of an echo server's CPU), waiting for the next poll instead.
    const bool may_wait = !nonblocking(timeout_) && !(flags & MSG_DONTWAIT);
    if (stream_ && may_wait && detail::probably_drained(fd_)) wait(false, until, "recv", true);
    for (;;) {
        ssize_t got = detail::sys::recv(fd_, buffer, n, flags);
        if (got >= 0) {
            if (stream_ && got > 0 && static_cast<std::size_t>(got) < n && !(flags & MSG_PEEK))
                detail::note_drained(fd_);
            return static_cast<std::size_t>(got);
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno(errno, "recv");
        if (!may_wait) throw_errno(errno, "recv");
        wait(false, until, "recv");
    }
}

std::string socket::recv(std::size_t max, int flags) {
    std::string out(max, '\0');
    out.resize(recv(out.data(), max, flags));
    return out;
}

std::size_t socket::send(const void* data, std::size_t n, int flags) {
    const std::int64_t until = deadline();
    for (;;) {
        ssize_t sent = detail::sys::send(fd_, data, n, flags | MSG_NOSIGNAL);
        if (sent >= 0) return static_cast<std::size_t>(sent);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno(errno, "send");
        if (nonblocking(timeout_) || (flags & MSG_DONTWAIT)) throw_errno(errno, "send");
        wait(true, until, "send");
    }
}

void socket::sendall(const void* data, std::size_t n, int flags) {
    const std::int64_t until = deadline();
    auto* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t sent = detail::sys::send(fd_, p, n, flags | MSG_NOSIGNAL);
        if (sent >= 0) {
            p += sent;
            n -= static_cast<std::size_t>(sent);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno(errno, "sendall");
        if (nonblocking(timeout_)) throw_errno(errno, "sendall");
        wait(true, until, "sendall");
    }
}

void socket::shutdown(int how) {
    if (::shutdown(fd_, how) < 0) throw_errno(errno, "shutdown");
}

void socket::setsockopt(int level, int name, int value) {
    if (::setsockopt(fd_, level, name, &value, sizeof value) < 0) throw_errno(errno, "setsockopt");  // tracked by monkey
}

endpoint socket::local_endpoint() const {
    sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) < 0) throw_errno(errno, "getsockname");
    return endpoint(reinterpret_cast<sockaddr*>(&addr), len);
}

endpoint socket::peer_endpoint() const {
    sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) < 0) throw_errno(errno, "getpeername");
    return endpoint(reinterpret_cast<sockaddr*>(&addr), len);
}

// ---- name resolution --------------------------------------------------------------------

namespace {

std::vector<endpoint> getaddrinfo_blocking(const std::string& host, std::uint16_t port, int type, int extra_flags) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_NUMERICSERV | extra_flags;
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    if (rc != 0) {
        int e = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
        throw std::system_error(e, std::generic_category(), "resolve " + host + ": " + gai_strerror(rc));
    }
    std::vector<endpoint> out;
    for (addrinfo* a = list; a; a = a->ai_next) out.emplace_back(a->ai_addr, a->ai_addrlen);
    freeaddrinfo(list);
    return out;
}

}  // namespace

std::vector<endpoint> resolve(const std::string& host, std::uint16_t port, int type) {
    // A numeric address needs no lookup and never blocks.
    try {
        return getaddrinfo_blocking(host, port, type, AI_NUMERICHOST);
    } catch (const std::system_error&) {
    }
    // glibc's resolver does its own I/O out of green's reach: it runs on another thread while
    // this greenlet waits in the hub.
    auto outcome = std::make_shared<std::pair<std::vector<endpoint>, std::exception_ptr>>();
    detail::offload([outcome, host, port, type] {
        try {
            outcome->first = getaddrinfo_blocking(host, port, type, 0);
        } catch (...) {
            outcome->second = std::current_exception();
        }
    });
    if (outcome->second) std::rethrow_exception(outcome->second);
    return std::move(outcome->first);
}

socket create_connection(const std::string& host, std::uint16_t port, std::optional<duration> timeout) {
    std::exception_ptr last;
    for (const endpoint& address : resolve(host, port)) {
        try {
            socket s(address.family(), SOCK_STREAM);
            s.settimeout(timeout);
            s.connect(address);
            return s;
        } catch (const std::system_error&) {
            last = std::current_exception();
        }
    }
    if (last) std::rethrow_exception(last);
    throw std::system_error(EHOSTUNREACH, std::generic_category(), "create_connection " + host + ": no address");
}

}  // namespace green
