// send, recv, sendto, recvfrom, sendmsg and recvmsg after patch_all(): waits happen in the hub,
// flags mean what they mean to libc (MSG_DONTWAIT never waits, MSG_WAITALL waits for all,
// MSG_PEEK leaves the data), datagrams keep their boundaries.
#include "monkey_support.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace monkey_test;

extern "C" ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags);
extern "C" ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from,
                                  socklen_t* len);

namespace {

std::vector<char> pattern(std::size_t n) {
    std::vector<char> data(n);
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>((i * 13 + i / 1000) & 0xff);
    return data;
}

// A UDP socket bound to 127.0.0.1 and an ephemeral port.
struct udp_socket {
    int fd;
    std::uint16_t port;
    udp_socket() {
        fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in addr = loopback(0);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        port = local_port(fd);
    }
    ~udp_socket() { ::close(fd); }
};

}  // namespace

TEST_CASE("recv waits in the hub for data; send and recv carry it both ways over TCP") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    ticker tick(1ms);
    auto server = green::spawn([&] {
        char buf[64];
        const ssize_t n = ::recv(p.b, buf, sizeof buf, 0);
        std::string reply = "echo " + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        return ::send(p.b, reply.data(), reply.size(), 0);
    });
    green::sleep(20ms);
    const int before = tick.ticks;
    CHECK(::send(p.a, "ping", 4, 0) == 4);
    char buf[64];
    const ssize_t n = ::recv(p.a, buf, sizeof buf, 0);
    CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "echo ping");
    CHECK(server.get() == 9);
    CHECK(tick.ticks >= before);
    CHECK_FALSE(nonblocking_flag(p.a));
    CHECK_FALSE(nonblocking_flag(p.b));
}

TEST_CASE("recvfrom waits for a datagram and says who sent it; datagrams keep their boundaries") {
    green::monkey::patch_all();
    udp_socket server, client;
    auto sender = green::spawn([&] {
        green::sleep(10ms);
        const sockaddr_in to = loopback(server.port);
        for (std::string message : {"one", "two!", "three"})
            REQUIRE(::sendto(client.fd, message.data(), message.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                             sizeof to) == static_cast<ssize_t>(message.size()));
    });
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
        char buf[64];
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n = ::recvfrom(server.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        REQUIRE(n >= 0);
        got.emplace_back(buf, static_cast<std::size_t>(n));
        CHECK(len == sizeof from);
        CHECK(ntohs(from.sin_port) == client.port);
    }
    CHECK(got == std::vector<std::string>{"one", "two!", "three"});
    sender.join();
}

TEST_CASE("recvmsg waits and gathers; a 3 MiB sendmsg on a stream socket completes fully") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    const std::vector<char> data = pattern(3 << 20);
    auto receiver = green::spawn([&] {
        std::vector<char> got;
        std::vector<char> head(1000), tail(9000);
        for (;;) {
            iovec iov[2] = {{head.data(), head.size()}, {tail.data(), tail.size()}};
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = 2;
            const ssize_t n = ::recvmsg(p.b, &msg, 0);
            REQUIRE(n >= 0);
            if (n == 0) break;
            const std::size_t in_head = std::min<std::size_t>(static_cast<std::size_t>(n), head.size());
            got.insert(got.end(), head.begin(), head.begin() + static_cast<std::ptrdiff_t>(in_head));
            got.insert(got.end(), tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(n) - in_head));
        }
        return got;
    });
    iovec iov[3] = {{const_cast<char*>(data.data()), 1},
                    {const_cast<char*>(data.data()) + 1, 2 << 20},
                    {const_cast<char*>(data.data()) + 1 + (2 << 20), data.size() - 1 - (2 << 20)}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 3;
    CHECK(::sendmsg(p.a, &msg, 0) == static_cast<ssize_t>(data.size()));
    ::shutdown(p.a, SHUT_WR);
    CHECK(receiver.get() == data);
}

TEST_CASE("MSG_DONTWAIT never waits: EAGAIN at once, no yield") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    ticker tick;
    const int before = tick.ticks;
    char buf[16];
    CHECK(attempt([&] { return ::recv(p.a, buf, sizeof buf, MSG_DONTWAIT); }) == outcome{-1, EAGAIN});
    CHECK(attempt([&] { return ::recvfrom(p.a, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr); }) ==
          outcome{-1, EAGAIN});
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    CHECK(attempt([&] { return ::recvmsg(p.a, &msg, MSG_DONTWAIT); }) == outcome{-1, EAGAIN});
    fill(p.a);
    CHECK(attempt([&] { return ::send(p.a, buf, sizeof buf, MSG_DONTWAIT); }) == outcome{-1, EAGAIN});
    CHECK(attempt([&] { return ::sendto(p.a, buf, sizeof buf, MSG_DONTWAIT, nullptr, 0); }) == outcome{-1, EAGAIN});
    CHECK(attempt([&] { return ::sendmsg(p.a, &msg, MSG_DONTWAIT); }) == outcome{-1, EAGAIN});
    CHECK(tick.ticks == before);
}

TEST_CASE("MSG_WAITALL waits until all the bytes asked for have come, as libc's does") {
    green::monkey::patch_all();
    for (bool use_recvmsg : {false, true}) {
        CAPTURE(use_recvmsg);
        fd_pair p = make_tcp_pair();
        auto writer = green::spawn([&] {
            for (const char* part : {"abc", "defg", "hij"}) {
                ::send(p.a, part, std::strlen(part), 0);
                green::sleep(10ms);
            }
        });
        char buf[10] = {};
        ssize_t n;
        if (use_recvmsg) {
            iovec iov{buf, sizeof buf};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            n = ::recvmsg(p.b, &msg, MSG_WAITALL);
        } else {
            n = ::recv(p.b, buf, sizeof buf, MSG_WAITALL);
        }
        CHECK(n == 10);
        CHECK(std::string(buf, 10) == "abcdefghij");
        writer.join();
        // The peer going away ends the wait early with what came, as in libc.
        REQUIRE(::send(p.a, "xy", 2, 0) == 2);
        auto closer = green::spawn([&] {
            green::sleep(10ms);
            ::shutdown(p.a, SHUT_WR);
        });
        CHECK(::recv(p.b, buf, sizeof buf, MSG_WAITALL) == 2);
        closer.join();
    }
}

TEST_CASE("MSG_PEEK | MSG_WAITALL waits until all the bytes are there, and leaves them there") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    auto writer = green::spawn([&] {
        for (const char* part : {"ab", "cde", "f"}) {
            ::send(p.a, part, std::strlen(part), 0);
            green::sleep(10ms);
        }
    });
    char buf[6] = {};
    CHECK(::recv(p.b, buf, sizeof buf, MSG_PEEK | MSG_WAITALL) == 6);
    CHECK(std::string(buf, 6) == "abcdef");
    char again[6] = {};
    CHECK(::recv(p.b, again, sizeof again, 0) == 6);
    CHECK(std::string(again, 6) == "abcdef");
    writer.join();
}

TEST_CASE("MSG_PEEK waits for data and leaves it there") {
    green::monkey::patch_all();
    fd_pair p = make_socketpair();
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::send(p.b, "peek", 4, 0);
    });
    char buf[8];
    CHECK(::recv(p.a, buf, sizeof buf, MSG_PEEK) == 4);
    CHECK(::recv(p.a, buf, sizeof buf, 0) == 4);
    CHECK(std::string(buf, 4) == "peek");
    writer.join();
}

TEST_CASE("a large sendmsg with SCM_RIGHTS passes the fd exactly once") {
    green::monkey::patch_all();
    fd_pair p = make_socketpair();
    fd_pair passed = make_pipe();
    const std::vector<char> data = pattern(2 << 20);  // far more than the socket buffer
    auto receiver = green::spawn([&] {
        std::size_t bytes = 0;
        int fds_received = 0;
        std::vector<char> buf(65536);
        for (;;) {
            iovec iov{buf.data(), buf.size()};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            const ssize_t n = ::recvmsg(p.b, &msg, 0);
            REQUIRE(n >= 0);
            if (n == 0) break;
            bytes += static_cast<std::size_t>(n);
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
                const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < count; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    ::close(fd);
                    ++fds_received;
                }
            }
        }
        return std::pair<std::size_t, int>(bytes, fds_received);
    });
    iovec iov{const_cast<char*>(data.data()), data.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &passed.a, sizeof(int));
    CHECK(::sendmsg(p.a, &msg, 0) == static_cast<ssize_t>(data.size()));
    ::shutdown(p.a, SHUT_WR);
    const auto [bytes, fds_received] = receiver.get();
    CHECK(bytes == data.size());
    CHECK(fds_received == 1);
}

TEST_CASE("the fortified __recv_chk and __recvfrom_chk wait like recv and recvfrom") {
    green::monkey::patch_all();
    fd_pair p = make_socketpair(SOCK_DGRAM);
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::send(p.b, "one", 3, 0);
        green::sleep(10ms);
        ::send(p.b, "two", 3, 0);
    });
    ticker tick(1ms);
    char buf[8];
    int before = tick.ticks;
    CHECK(__recv_chk(p.a, buf, sizeof buf, sizeof buf, 0) == 3);
    CHECK(tick.ticks > before);
    before = tick.ticks;
    CHECK(__recvfrom_chk(p.a, buf, sizeof buf, sizeof buf, 0, nullptr, nullptr) == 3);
    CHECK(tick.ticks > before);
    writer.join();
}

TEST_CASE("a datagram send waits for room once and is never split") {
    green::monkey::patch_all();
    fd_pair p = make_socketpair(SOCK_DGRAM);
    // Fill the receiver's queue with datagrams.
    int queued = 0;
    while (::send(p.a, "0123456789", 10, MSG_DONTWAIT) == 10) ++queued;
    REQUIRE(queued > 0);
    auto reader = green::spawn([&] {
        green::sleep(10ms);
        char buf[64];
        std::vector<ssize_t> sizes;
        for (int i = 0; i < queued + 1; ++i) sizes.push_back(::recv(p.b, buf, sizeof buf, 0));
        return sizes;
    });
    CHECK(::send(p.a, "last one", 8, 0) == 8);  // waits until the reader makes room
    std::vector<ssize_t> sizes = reader.get();
    CHECK(sizes.back() == 8);
    sizes.pop_back();
    CHECK(std::all_of(sizes.begin(), sizes.end(), [](ssize_t n) { return n == 10; }));
}

// After a short recv the hook waits for the hub's next poll before trying again (it saves the
// EAGAIN call). A TCP read also stops short at an urgent mark with data still queued, for
// which no new edge comes: that wait must end after the poll anyway.
TEST_CASE("a recv that stopped short at an urgent mark does not strand the data after it") {
    green::monkey::patch_all();
    fd_pair p = make_tcp_pair();
    auto reader = green::spawn([&] {
        std::vector<std::string> got;
        char buf[100];
        for (int i = 0; i < 3; ++i) {
            const outcome r = within_2s([&] { return ::recv(p.b, buf, i == 0 ? 1 : sizeof buf, 0); });
            got.emplace_back(r.result > 0 ? std::string(buf, static_cast<std::size_t>(r.result)) : "failed");
            if (i == 0) green::sleep(50ms);  // the rest arrives, and the hub polls its edges away
        }
        return got;
    });
    green::sleep(10ms);
    CHECK(::send(p.a, "1", 1, 0) == 1);
    green::sleep(10ms);
    CHECK(::send(p.a, "abc", 3, 0) == 3);
    CHECK(::send(p.a, "X", 1, MSG_OOB) == 1);
    CHECK(::send(p.a, "def", 3, 0) == 3);
    CHECK(reader.get() == std::vector<std::string>{"1", "abc", "def"});
}
