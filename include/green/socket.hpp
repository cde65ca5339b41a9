// green/socket.hpp — layer 3: cooperative sockets (gevent.socket).
//
// A green::socket looks blocking to the greenlet using it and never blocks the thread: its fd is
// non-blocking underneath, and a call that would block waits in the hub for readiness, so other
// greenlets run meanwhile. wait_read / wait_write do the same for any fd.
//
//     green::socket listener(AF_INET, SOCK_STREAM);
//     listener.bind(green::endpoint("127.0.0.1", 0));
//     listener.listen();
//     green::spawn([&] {
//         green::socket conn = listener.accept();
//         char buf[64];
//         std::size_t n = conn.recv(buf, sizeof buf);
//         conn.sendall(buf, n);                         // echo it back
//     });
//     green::socket client = green::create_connection("127.0.0.1", listener.local_endpoint().port());
//     client.sendall("hi", 2);
//
// Errors are std::system_error carrying the errno (ECONNREFUSED, ECONNRESET, EPIPE...). A socket
// timeout (settimeout, or the timeout of connect/create_connection) raises green::socket_timeout,
// a std::system_error with ETIMEDOUT. Two greenlets waiting to read (or to write) the same fd is
// an error (green::concurrent_use_error), as in gevent. Closing a socket that another greenlet
// waits on wakes that greenlet with EBADF ("File descriptor was closed in another greenlet").
#pragma once

#include <green/hub.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>

namespace green {

// gevent's ConcurrentObjectUseError: a second greenlet waits for the same event on one fd.
class concurrent_use_error : public error {
public:
    using error::error;
};

// A socket operation ran out of time (the socket's timeout, or the one given to connect).
class socket_timeout : public std::system_error {
public:
    explicit socket_timeout(const std::string& what) : std::system_error(ETIMEDOUT, std::generic_category(), what) {}
};

// Waits until fd is readable (writable), or raises socket_timeout when the timeout passes,
// std::system_error(EBADF) if the fd is closed (through green) meanwhile, concurrent_use_error
// if another greenlet already waits on it. Returns at once if it is ready now. A regular file is
// always ready.
void wait_read(int fd, std::optional<duration> timeout = std::nullopt);
void wait_write(int fd, std::optional<duration> timeout = std::nullopt);

// Wakes greenlets waiting on fd with EBADF and drops the hub's registration of it; call before
// closing an fd you waited on with wait_read/wait_write (green::socket::close does it).
void cancel_wait(int fd) noexcept;

// An IPv4 or IPv6 address and port. Built from numeric addresses only; resolve() looks up names.
class endpoint {
public:
    endpoint() = default;
    // "127.0.0.1", "::1", "0.0.0.0"...; throws std::invalid_argument for anything else.
    endpoint(std::string_view address, std::uint16_t port);
    endpoint(const sockaddr* addr, socklen_t len);

    int family() const noexcept { return storage_.ss_family; }
    std::uint16_t port() const noexcept;
    std::string address() const;
    std::string to_string() const;  // "127.0.0.1:8080", "[::1]:8080"
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return length_; }

    friend bool operator==(const endpoint& a, const endpoint& b) noexcept { return a.to_string() == b.to_string(); }

private:
    sockaddr_storage storage_{};
    socklen_t length_ = 0;
};

class socket {
public:
    socket() = default;
    // A new socket (AF_INET/AF_INET6, SOCK_STREAM/SOCK_DGRAM), non-blocking underneath.
    socket(int family, int type, int protocol = 0);
    // Takes ownership of an open fd and makes it non-blocking underneath.
    static socket adopt(int fd);

    socket(socket&& other) noexcept;
    socket& operator=(socket&& other) noexcept;
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;
    ~socket() { close(); }

    int fd() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    // Gives up ownership of the fd without closing it.
    int release() noexcept;

    // Per-socket timeout for every blocking operation (gevent's settimeout): std::nullopt
    // waits for ever (the default); 0s makes the socket non-blocking: a call that would block
    // raises std::system_error(EAGAIN).
    void settimeout(std::optional<duration> timeout) noexcept { timeout_ = timeout; }
    std::optional<duration> gettimeout() const noexcept { return timeout_; }

    void bind(const endpoint& address);
    void listen(int backlog = 128);
    // Connects, waiting cooperatively; `timeout` replaces the socket's for this call.
    void connect(const endpoint& address, std::optional<duration> timeout = std::nullopt);
    socket accept(endpoint* peer = nullptr);

    // Reads up to n bytes; 0 means the peer closed its side.
    std::size_t recv(void* buffer, std::size_t n, int flags = 0);
    std::string recv(std::size_t max, int flags = 0);
    std::size_t recv_into(std::vector<char>& buffer, int flags = 0) { return recv(buffer.data(), buffer.size(), flags); }
    // Writes some of the bytes (at least one); never raises SIGPIPE (EPIPE instead).
    std::size_t send(const void* data, std::size_t n, int flags = 0);
    // Writes them all, waiting as needed.
    void sendall(const void* data, std::size_t n, int flags = 0);
    void sendall(std::string_view data, int flags = 0) { sendall(data.data(), data.size(), flags); }

    void shutdown(int how);
    // Closes the fd; a greenlet waiting on it wakes with EBADF. Idempotent.
    void close() noexcept;

    void setsockopt(int level, int name, int value);
    endpoint local_endpoint() const;
    endpoint peer_endpoint() const;

private:
    socket(int fd, bool stream) noexcept : fd_(fd), stream_(stream) {}
    // Waits for readiness within the operation's deadline (socket_timeout when it passes).
    void wait(bool write, std::int64_t deadline, const char* what, bool guess = false);
    std::int64_t deadline(std::optional<duration> override_timeout = std::nullopt) const;

    int fd_ = -1;
    bool stream_ = false;  // SOCK_STREAM: a short recv means the buffer is probably empty
    std::optional<duration> timeout_;
};

// Resolves host and port with getaddrinfo, run in the hub's threadpool so the hub keeps
// running. Throws std::system_error (the getaddrinfo error in the message) when it fails.
std::vector<endpoint> resolve(const std::string& host, std::uint16_t port, int type = SOCK_STREAM);

// Resolves host and connects to the first address that answers (gevent's create_connection).
socket create_connection(const std::string& host, std::uint16_t port, std::optional<duration> timeout = std::nullopt);

}  // namespace green
