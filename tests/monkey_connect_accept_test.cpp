// connect, accept and accept4 after patch_all(): they wait in the hub for the peer, and
// return what libc's blocking calls return.
#include "monkey_support.hpp"

#include <green/timeout.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace monkey_test;

namespace {

// An abstract AF_UNIX address (no file in the file system), unique to this process.
sockaddr_un unix_address(const std::string& name, socklen_t& len) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string full = "green-monkey-test-" + std::to_string(::getpid()) + "-" + name;
    std::memcpy(addr.sun_path + 1, full.data(), full.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + full.size());
    return addr;
}

}  // namespace

TEST_CASE("accept waits in the hub for a client and fills in its address") {
    green::monkey::patch_all();
    tcp_listener listener;
    ticker tick(1ms);
    auto client = green::spawn([&] {
        green::sleep(30ms);
        const int fd = connect_to(listener.port);
        const std::uint16_t port = local_port(fd);
        ::send(fd, "hi", 2, 0);
        ::close(fd);
        return port;
    });
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    const int before = tick.ticks;
    const int conn = ::accept(listener.fd, reinterpret_cast<sockaddr*>(&peer), &len);
    REQUIRE(conn >= 0);
    CHECK(tick.ticks - before >= 10);
    CHECK(len == sizeof peer);
    CHECK(peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(ntohs(peer.sin_port) == client.get());
    CHECK_FALSE(nonblocking_flag(conn));
    CHECK_FALSE(nonblocking_flag(listener.fd));
    char buf[4];
    CHECK(::recv(conn, buf, sizeof buf, MSG_WAITALL) == 2);
    ::close(conn);
}

TEST_CASE("accept4's SOCK_NONBLOCK and SOCK_CLOEXEC reach the new fd, and its non-blocking choice is kept") {
    green::monkey::patch_all();
    tcp_listener listener;
    auto client = green::spawn([&] { return connect_to(listener.port); });
    const int conn = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(conn >= 0);
    CHECK(nonblocking_flag(conn));
    CHECK((::fcntl(conn, F_GETFD) & FD_CLOEXEC) != 0);
    ticker tick;
    const int before = tick.ticks;
    char buf[4];
    CHECK(attempt([&] { return ::recv(conn, buf, sizeof buf, 0); }) == outcome{-1, EAGAIN});
    CHECK(attempt([&] { return ::read(conn, buf, sizeof buf); }) == outcome{-1, EAGAIN});
    CHECK(tick.ticks == before);
    ::close(conn);
    ::close(client.get());
}

TEST_CASE("accept's address buffer too small: truncated, and the length says the real size, as in libc") {
    green::monkey::patch_all();
    tcp_listener listener;
    auto accept_libc = LIBC(accept);
    std::vector<outcome> results;
    std::vector<socklen_t> lengths;
    for (bool hooked : {true, false}) {
        const int client = connect_to(listener.port);
        char small[4];
        socklen_t len = sizeof small;
        const outcome o = attempt([&] {
            return hooked ? ::accept(listener.fd, reinterpret_cast<sockaddr*>(small), &len)
                          : accept_libc(listener.fd, reinterpret_cast<sockaddr*>(small), &len);
        });
        CHECK(o.result >= 0);
        lengths.push_back(len);
        if (o.result >= 0) ::close(static_cast<int>(o.result));
        ::close(client);
    }
    CHECK(lengths[0] == lengths[1]);
    CHECK(lengths[0] == sizeof(sockaddr_in));
}

TEST_CASE("several greenlets blocked in accept on one listener each take a connection") {
    green::monkey::patch_all();
    tcp_listener listener(64);
    constexpr int workers = 4;
    constexpr int clients = 12;
    std::vector<int> served(workers, 0);
    std::vector<green::any_task> tasks;
    for (int w = 0; w < workers; ++w) {
        tasks.push_back(green::spawn([&, w] {
            for (;;) {
                const int conn = ::accept(listener.fd, nullptr, nullptr);
                if (conn < 0) return;  // the listener was closed
                char c;
                if (::recv(conn, &c, 1, 0) == 1) ::send(conn, &c, 1, 0);
                ::close(conn);
                ++served[w];
            }
        }));
    }
    green::sleep(10ms);  // all four wait in accept now
    std::vector<green::task<char>> client_tasks;
    for (int i = 0; i < clients; ++i) {
        client_tasks.push_back(green::spawn([&, i] {
            const int fd = connect_to(listener.port);
            const char c = static_cast<char>('a' + i);
            ::send(fd, &c, 1, 0);
            char back = 0;
            ::recv(fd, &back, 1, 0);
            ::close(fd);
            return back;
        }));
    }
    for (int i = 0; i < clients; ++i) CHECK(client_tasks[i].get() == static_cast<char>('a' + i));
    int total = 0;
    for (int n : served) total += n;
    CHECK(total == clients);
    // Closing the listener wakes every worker still in accept, with EBADF.
    ::close(listener.fd);
    listener.fd = -1;
    CHECK(green::joinall(tasks, {.timeout = 2s}).size() == workers);
}

TEST_CASE("connect to a Unix listener whose backlog is full waits until the listener accepts") {
    green::monkey::patch_all();
    socklen_t len;
    const sockaddr_un addr = unix_address("backlog", len);
    const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(listener, 0) == 0);
    // Fill the backlog: a non-blocking connect says EAGAIN once it is full.
    std::vector<int> fillers;
    for (int i = 0; i < 8; ++i) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        const outcome o = attempt([&] { return ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len); });
        if (o == outcome{-1, EAGAIN}) {
            ::close(fd);
            break;
        }
        REQUIRE(o.result == 0);
        fillers.push_back(fd);
    }
    REQUIRE(fillers.size() < 8);
    ticker tick(1ms);
    auto acceptor = green::spawn([&] {
        green::sleep(50ms);
        std::vector<int> accepted;
        for (std::size_t i = 0; i < fillers.size(); ++i) accepted.push_back(::accept(listener, nullptr, nullptr));
        // The connect under test, if it ever got in line (bounded, so that a failure cannot hang).
        accepted.push_back(green::with_timeout(2s, green::timeout_value(-1),
                                               [&] { return ::accept(listener, nullptr, nullptr); }));
        return accepted;
    });
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const int before = tick.ticks;
    const auto start = clock_type::now();
    CHECK(attempt([&] { return ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len); }) == outcome{0, 0});
    CHECK(seconds_since(start) >= 0.045);
    CHECK(tick.ticks - before >= 10);  // waited in the hub, not in the kernel
    CHECK(::send(fd, "u", 1, 0) == 1);
    for (int a : acceptor.get()) {
        CHECK(a >= 0);
        ::close(a);
    }
    for (int f : fillers) ::close(f);
    ::close(fd);
    ::close(listener);
}

TEST_CASE("connect and accept errors are libc's") {
    green::monkey::patch_all();
    auto connect_libc = LIBC(connect);
    auto accept_libc = LIBC(accept);
    // A port nobody listens on: take one and close it.
    std::uint16_t closed_port;
    {
        tcp_listener gone;
        closed_port = gone.port;
    }
    const sockaddr_in refused = loopback(closed_port);
    auto connect_refused = [&](bool hooked) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const outcome o = attempt([&] {
            return hooked ? ::connect(fd, reinterpret_cast<const sockaddr*>(&refused), sizeof refused)
                          : connect_libc(fd, reinterpret_cast<const sockaddr*>(&refused), sizeof refused);
        });
        ::close(fd);
        return o;
    };
    CHECK(in_greenlet([&] { return connect_refused(true); }) == outcome{-1, ECONNREFUSED});
    CHECK(connect_refused(false) == outcome{-1, ECONNREFUSED});

    fd_pair p = make_pipe();
    CHECK(in_greenlet([&] {
              return attempt([&] { return ::connect(p.a, reinterpret_cast<const sockaddr*>(&refused), sizeof refused); });
          }) == attempt([&] { return connect_libc(p.a, reinterpret_cast<const sockaddr*>(&refused), sizeof refused); }));

    const int unlistened = ::socket(AF_INET, SOCK_STREAM, 0);
    const outcome hooked_accept = in_greenlet([&] { return attempt([&] { return ::accept(unlistened, nullptr, nullptr); }); });
    CHECK(hooked_accept == attempt([&] { return accept_libc(unlistened, nullptr, nullptr); }));
    CHECK(hooked_accept == outcome{-1, EINVAL});
    ::close(unlistened);

    // A second connect on a connected socket.
    tcp_listener listener;
    const int fd = connect_to(listener.port);
    const sockaddr_in there = listener.address();
    const outcome again = in_greenlet(
        [&] { return attempt([&] { return ::connect(fd, reinterpret_cast<const sockaddr*>(&there), sizeof there); }); });
    CHECK(again == attempt([&] { return connect_libc(fd, reinterpret_cast<const sockaddr*>(&there), sizeof there); }));
    CHECK(again == outcome{-1, EISCONN});
    ::close(fd);
}

TEST_CASE("20 greenlet clients and an accepting greenlet talk over plain blocking calls") {
    green::monkey::patch_all();
    tcp_listener listener(32);
    constexpr int clients = 20;
    auto server = green::spawn([&] {
        std::vector<green::any_task> handlers;
        for (int i = 0; i < clients; ++i) {
            const int conn = ::accept(listener.fd, nullptr, nullptr);
            REQUIRE(conn >= 0);
            handlers.push_back(green::spawn([conn] {
                char buf[64];
                ssize_t n;
                while ((n = ::recv(conn, buf, sizeof buf, 0)) > 0) ::send(conn, buf, static_cast<std::size_t>(n), 0);
                ::close(conn);
            }));
        }
        green::joinall(handlers);
    });
    std::vector<green::task<std::string>> talks;
    for (int i = 0; i < clients; ++i) {
        talks.push_back(green::spawn([&, i] {
            const int fd = connect_to(listener.port);
            std::string got;
            for (int round = 0; round < 3; ++round) {
                const std::string line = std::to_string(i) + ":" + std::to_string(round) + ";";
                ::send(fd, line.data(), line.size(), 0);
                char buf[64];
                const ssize_t n = ::recv(fd, buf, line.size(), MSG_WAITALL);
                got.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            }
            ::close(fd);
            return got;
        }));
    }
    for (int i = 0; i < clients; ++i) {
        const std::string s = std::to_string(i);
        CHECK(talks[i].get() == s + ":0;" + s + ":1;" + s + ":2;");
    }
    CHECK(server.join(5s));
}
