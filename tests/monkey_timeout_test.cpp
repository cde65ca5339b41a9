// SO_RCVTIMEO and SO_SNDTIMEO after patch_all(): a hooked call waits in the hub for as long as
// the socket's timeout says and then fails as libc's does (EAGAIN; EINPROGRESS for connect);
// without one it waits for ever: no timeout is invented.
#include "monkey_support.hpp"

#include <green/timeout.hpp>

#include <functional>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <vector>

using namespace monkey_test;

namespace {

// How long a call took, and what it returned.
struct timed {
    outcome result;
    double seconds;
};

template <class F>
timed time_call(F&& call) {
    const auto start = clock_type::now();
    const outcome o = attempt(call);
    return {o, seconds_since(start)};
}

// A listener on 127.0.0.1 whose backlog is full and which never accepts: a new connect to it
// gets no answer (its SYN is dropped). Holds the clients that filled the backlog.
struct unanswering_peer {
    tcp_listener listener{1};
    std::vector<int> clients;
    unanswering_peer() {
        for (int i = 0; i < 8; ++i) {
            const int fd = connect_to(listener.port, SOCK_NONBLOCK);
            clients.push_back(fd);
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, 300) == 0) return;  // this one got no answer: the backlog is full
        }
        FAIL("could not fill a listen(1) backlog with 8 connections");
    }
    ~unanswering_peer() {
        for (int fd : clients) ::close(fd);
    }
};

}  // namespace

TEST_CASE("SO_RCVTIMEO: every receiving call fails with EAGAIN after about the timeout, waiting in the hub") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    set_timeout(p.a, SO_RCVTIMEO, 80);
    ticker tick(1ms);
    char buf[16];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<std::pair<const char*, std::function<long()>>> calls{
        {"read", [&] { return ::read(p.a, buf, sizeof buf); }},
        {"recv", [&] { return ::recv(p.a, buf, sizeof buf, 0); }},
        {"recvfrom", [&] { return ::recvfrom(p.a, buf, sizeof buf, 0, nullptr, nullptr); }},
        {"recvmsg", [&] { return ::recvmsg(p.a, &msg, 0); }},
        {"readv", [&] { return ::readv(p.a, &iov, 1); }},
    };
    for (auto& [name, call] : calls) {
        CAPTURE(name);
        const int before = tick.ticks;
        const timed t = time_call(call);
        CHECK(t.result == outcome{-1, EAGAIN});
        CHECK(t.seconds >= 0.075);
        CHECK(t.seconds < 0.5);
        CHECK(tick.ticks - before >= 20);
    }
    // Data arriving within the timeout ends the wait as usual.
    auto writer = green::spawn([&] {
        green::sleep(20ms);
        ::send(p.b, "in time", 7, 0);
    });
    CHECK(::recv(p.a, buf, sizeof buf, 0) == 7);
    writer.join();
}

TEST_CASE("SO_RCVTIMEO with MSG_WAITALL returns what came when the timeout ends the wait") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    set_timeout(p.a, SO_RCVTIMEO, 80);
    REQUIRE(::send(p.b, "part", 4, 0) == 4);
    char buf[16];
    const timed t = time_call([&] { return ::recv(p.a, buf, sizeof buf, MSG_WAITALL); });
    CHECK(t.result == outcome{4, 0});
    CHECK(t.seconds >= 0.075);
}

TEST_CASE("SO_SNDTIMEO: a send on a full socket fails with EAGAIN after about the timeout; a partial one returns the count") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    set_timeout(p.a, SO_SNDTIMEO, 80);
    fill(p.a);
    ticker tick(1ms);
    const int before = tick.ticks;
    const timed t = time_call([&] { return ::send(p.a, "x", 1, 0); });
    CHECK(t.result == outcome{-1, EAGAIN});
    CHECK(t.seconds >= 0.075);
    CHECK(t.seconds < 0.5);
    CHECK(tick.ticks - before >= 20);

    // Room for some of it, then nobody reads: what went out is returned after the timeout.
    fd_pair q = make_socketpair();
    set_timeout(q.a, SO_SNDTIMEO, 80);
    std::vector<char> big(4 << 20, 'b');
    const timed partial = time_call([&] { return ::write(q.a, big.data(), big.size()); });
    CHECK(partial.result.result > 0);
    CHECK(partial.result.result < static_cast<long>(big.size()));
    CHECK(partial.seconds >= 0.075);
}

TEST_CASE("connect with SO_SNDTIMEO to a peer that never answers: EINPROGRESS after the timeout, then EALREADY") {
    green::monkey::patch_all();
    unanswering_peer peer;
    const sockaddr_in there = peer.listener.address();
    auto connect_twice = [&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        set_timeout(fd, SO_SNDTIMEO, 100);
        auto once = [&] { return time_call([&] { return ::connect(fd, reinterpret_cast<const sockaddr*>(&there), sizeof there); }); };
        const timed first = once();
        const timed second = once();
        ::close(fd);
        return std::pair<timed, timed>(first, second);
    };
    ticker tick(1ms);
    const int before = tick.ticks;
    const auto [first, second] = connect_twice();
    CHECK(tick.ticks - before >= 40);  // both waits were in the hub
    // libc's, in a thread without a hub: the same results after the same waits.
    const auto [real_first, real_second] = in_thread(connect_twice);
    CHECK(real_first.result == outcome{-1, EINPROGRESS});
    CHECK(real_second.result == outcome{-1, EALREADY});
    CHECK(first.result == real_first.result);
    CHECK(second.result == real_second.result);
    for (double s : {first.seconds, second.seconds, real_first.seconds, real_second.seconds}) {
        CHECK(s >= 0.095);
        CHECK(s < 0.6);
    }
}

TEST_CASE("accept with SO_RCVTIMEO fails with EAGAIN after about the timeout") {
    green::monkey::patch_all();
    tcp_listener listener;
    set_timeout(listener.fd, SO_RCVTIMEO, 80);
    const timed t = time_call([&] { return ::accept(listener.fd, nullptr, nullptr); });
    CHECK(t.result == outcome{-1, EAGAIN});
    CHECK(t.seconds >= 0.075);
    CHECK(t.seconds < 0.5);
}

TEST_CASE("an accepted socket has its listener's SO_RCVTIMEO, as in libc") {
    green::monkey::patch_all();
    tcp_listener listener;
    set_timeout(listener.fd, SO_RCVTIMEO, 80);
    for (bool hooked : {true, false}) {
        CAPTURE(hooked);
        const int client = connect_to(listener.port);
        const int conn = ::accept(listener.fd, nullptr, nullptr);
        REQUIRE(conn >= 0);
        timeval tv{};
        socklen_t len = sizeof tv;
        REQUIRE(::getsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0);
        CHECK(tv.tv_usec == 80'000);  // the kernel copies it from the listener
        char buf[4];
        auto receive = [&] { return static_cast<long>(::recv(conn, buf, sizeof buf, 0)); };
        const timed t = hooked ? time_call([&] { return green::with_timeout(2s, green::timeout_value(-2L), receive); })
                               : in_thread([&] { return time_call(receive); });
        CHECK(t.result == outcome{-1, EAGAIN});
        CHECK(t.seconds >= 0.075);
        ::close(conn);
        ::close(client);
    }
}

TEST_CASE("SO_RCVTIMEO set before the hooks knew the socket (raw system calls) is honoured") {
    green::monkey::patch_all();
    int fds[2];
    REQUIRE(::syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    fd_pair s(fds[0], fds[1]);
    const timeval tv = ms_timeval(80);
    REQUIRE(::syscall(SYS_setsockopt, s.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    char c;
    const timed t = time_call([&] {
        return green::with_timeout(2s, green::timeout_value(-2L), [&] { return static_cast<long>(::read(s.a, &c, 1)); });
    });
    CHECK(t.result == outcome{-1, EAGAIN});
    CHECK(t.seconds >= 0.075);
}

TEST_CASE("no timeout is invented: without SO_RCVTIMEO a read still waits after 1.2 s") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    auto writer = green::spawn([&] {
        green::sleep(1200ms);
        ::send(p.b, "late", 4, 0);
    });
    char buf[8];
    const timed t = time_call([&] { return ::recv(p.a, buf, sizeof buf, 0); });
    CHECK(t.result == outcome{4, 0});
    CHECK(t.seconds >= 1.15);
    writer.join();
}

TEST_CASE("a timeout set to zero again means no timeout") {
    green::monkey::patch_all();
    fd_pair p = make_socketpair();
    set_timeout(p.a, SO_RCVTIMEO, 50);
    set_timeout(p.a, SO_RCVTIMEO, 0);
    auto writer = green::spawn([&] {
        green::sleep(150ms);
        ::send(p.b, "z", 1, 0);
    });
    char c;
    const timed t = time_call([&] { return ::recv(p.a, &c, 1, 0); });
    CHECK(t.result == outcome{1, 0});
    CHECK(t.seconds >= 0.145);
    writer.join();
}

TEST_CASE("green::timeout interrupts a hooked call by raising; the fd is left as it was and still works") {
    green::monkey::patch_all();
    fd_pair p = make_socketpair();
    const int flags = ::fcntl(p.a, F_GETFL);
    bool raised = false;
    try {
        green::timeout limit(30ms);
        char c;
        ::recv(p.a, &c, 1, 0);
    } catch (const green::timeout_error&) {
        raised = true;
    }
    CHECK(raised);
    CHECK(::fcntl(p.a, F_GETFL) == flags);
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::send(p.b, "ok", 2, 0);
    });
    char buf[4];
    CHECK(::recv(p.a, buf, sizeof buf, 0) == 2);
    writer.join();
}
