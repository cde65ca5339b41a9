// Parity with libc: the same situation through libc's own function and through the hooked one
// - in a greenlet (where the hook acts), in a thread without a hub, and in the hub greenlet
// itself (where it must step aside) - gives the same result and the same errno. Also: the
// hooks never leave O_NONBLOCK changed, a hub-less thread blocks as usual, and before
// patch_all() every hook is libc's.
#include "monkey_support.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/uio.h>
#include <sys/wait.h>
#include <vector>

using namespace monkey_test;

extern char** environ;

namespace {

// An fd number nothing has open.
constexpr int bad_fd = 987'654;

// SIGPIPE ignored for one test: EPIPE then comes back as an error.
struct ignore_sigpipe {
    struct sigaction previous {};
    ignore_sigpipe() {
        struct sigaction sa {};
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, &previous);
    }
    ~ignore_sigpipe() { sigaction(SIGPIPE, &previous, nullptr); }
};

// One situation: run(libc) sets it up, makes the call through libc's own function (libc =
// true) or through the hookable symbol (false), tears it down and says what happened.
struct situation {
    std::string name;
    std::function<outcome(bool libc)> run;
};

#define CALL(libc, fn, ...) ((libc) ? LIBC(fn)(__VA_ARGS__) : ::fn(__VA_ARGS__))

// A TCP pair whose server side was reset by its peer (SO_LINGER 0 then close).
fd_pair reset_pair() {
    fd_pair p = make_tcp_pair();
    const linger hard{1, 0};
    REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
    ::close(std::exchange(p.a, -1));
    pollfd wait_for_reset{p.b, POLLIN, 0};
    REQUIRE(LIBC(poll)(&wait_for_reset, 1, 2000) == 1);
    return p;
}

std::uint16_t unused_port() {
    tcp_listener gone;
    return gone.port;
}

std::string regular_file() {
    char path[] = "/tmp/green-monkey-parity-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "0123456789", 10) == 10);
    ::close(fd);
    return path;
}

std::vector<situation> situations() {
    std::vector<situation> all;
    auto add = [&](std::string name, std::function<outcome(bool)> run) { all.push_back({std::move(name), std::move(run)}); };
    static char big[70'000];

    // EBADF: an fd that is not open.
    add("read, bad fd", [](bool libc) { char b[4]; return attempt([&] { return CALL(libc, read, bad_fd, b, 4); }); });
    add("write, bad fd", [](bool libc) { return attempt([&] { return CALL(libc, write, bad_fd, "x", 1); }); });
    add("recv, bad fd", [](bool libc) { char b[4]; return attempt([&] { return CALL(libc, recv, bad_fd, b, 4, 0); }); });
    add("send, bad fd", [](bool libc) { return attempt([&] { return CALL(libc, send, bad_fd, "x", 1, 0); }); });
    add("readv, bad fd", [](bool libc) {
        char b[4];
        iovec v{b, 4};
        return attempt([&] { return CALL(libc, readv, bad_fd, &v, 1); });
    });
    add("accept, bad fd", [](bool libc) { return attempt([&] { return CALL(libc, accept, bad_fd, nullptr, nullptr); }); });
    add("connect, bad fd", [](bool libc) {
        const sockaddr_in a = loopback(1);
        return attempt([&] { return CALL(libc, connect, bad_fd, reinterpret_cast<const sockaddr*>(&a), sizeof a); });
    });

    // EAGAIN: the user made the fd non-blocking.
    add("read, non-blocking empty pipe", [](bool libc) {
        fd_pair p = make_pipe(O_NONBLOCK);
        char b[4];
        return attempt([&] { return CALL(libc, read, p.a, b, 4); });
    });
    add("write, non-blocking full pipe", [](bool libc) {
        fd_pair p = make_pipe(O_NONBLOCK);
        while (LIBC(write)(p.b, big, sizeof big) > 0) {
        }
        return attempt([&] { return CALL(libc, write, p.b, "x", 1); });
    });
    add("recv, non-blocking empty socket", [](bool libc) {
        fd_pair s = make_socketpair(SOCK_STREAM | SOCK_NONBLOCK);
        char b[4];
        return attempt([&] { return CALL(libc, recv, s.a, b, 4, 0); });
    });
    add("accept, non-blocking listener", [](bool libc) {
        tcp_listener l;
        REQUIRE(::fcntl(l.fd, F_SETFL, O_NONBLOCK) == 0);
        return attempt([&] { return CALL(libc, accept, l.fd, nullptr, nullptr); });
    });

    // EPIPE: the reading side is gone (SIGPIPE is ignored by the test).
    add("write, pipe without reader", [](bool libc) {
        fd_pair p = make_pipe();
        ::close(std::exchange(p.a, -1));
        return attempt([&] { return CALL(libc, write, p.b, "x", 1); });
    });
    add("send, socket whose peer closed", [](bool libc) {
        fd_pair s = make_socketpair();
        ::close(std::exchange(s.b, -1));
        return attempt([&] { return CALL(libc, send, s.a, "x", 1, 0); });
    });
    add("writev, socket whose peer closed", [](bool libc) {
        fd_pair s = make_socketpair();
        ::close(std::exchange(s.b, -1));
        iovec v{const_cast<char*>("xy"), 2};
        return attempt([&] { return CALL(libc, writev, s.a, &v, 1); });
    });
    add("send, unconnected TCP socket", [](bool libc) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const outcome o = attempt([&] { return CALL(libc, send, fd, "x", 1, 0); });
        ::close(fd);
        return o;
    });

    // ECONNRESET, ECONNREFUSED, ENOTCONN, ENOTSOCK.
    add("recv, connection reset", [](bool libc) {
        fd_pair p = reset_pair();
        char b[4];
        return attempt([&] { return CALL(libc, recv, p.b, b, 4, 0); });
    });
    add("read, connection reset", [](bool libc) {
        fd_pair p = reset_pair();
        char b[4];
        return attempt([&] { return CALL(libc, read, p.b, b, 4); });
    });
    add("send, connection reset", [](bool libc) {
        fd_pair p = reset_pair();
        return attempt([&] { return CALL(libc, send, p.b, "x", 1, 0); });
    });
    add("connect, refused", [](bool libc) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const sockaddr_in a = loopback(unused_port());
        const outcome o = attempt([&] { return CALL(libc, connect, fd, reinterpret_cast<const sockaddr*>(&a), sizeof a); });
        ::close(fd);
        return o;
    });
    add("recv, unconnected TCP socket", [](bool libc) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        char b[4];
        const outcome o = attempt([&] { return CALL(libc, recv, fd, b, 4, 0); });
        ::close(fd);
        return o;
    });
    add("read, listening socket", [](bool libc) {
        tcp_listener l;
        char b[4];
        return attempt([&] { return CALL(libc, read, l.fd, b, 4); });
    });
    add("recv, pipe", [](bool libc) {
        fd_pair p = make_pipe();
        char b[4];
        return attempt([&] { return CALL(libc, recv, p.a, b, 4, 0); });
    });

    // SO_RCVTIMEO / SO_SNDTIMEO running out.
    add("recv, SO_RCVTIMEO expires", [](bool libc) {
        fd_pair s = make_socketpair();
        set_timeout(s.a, SO_RCVTIMEO, 40);
        char b[4];
        return attempt([&] { return CALL(libc, recv, s.a, b, 4, 0); });
    });
    add("recvmsg, SO_RCVTIMEO expires", [](bool libc) {
        fd_pair s = make_socketpair();
        set_timeout(s.a, SO_RCVTIMEO, 40);
        char b[4];
        iovec v{b, 4};
        msghdr m{};
        m.msg_iov = &v;
        m.msg_iovlen = 1;
        return attempt([&] { return CALL(libc, recvmsg, s.a, &m, 0); });
    });
    add("recv, negative SO_RCVTIMEO (the kernel makes it 'do not wait')", [](bool libc) {
        fd_pair s = make_socketpair();
        const timeval negative{-1, 0};
        REQUIRE(::setsockopt(s.a, SOL_SOCKET, SO_RCVTIMEO, &negative, sizeof negative) == 0);
        char b[4];
        return attempt([&] { return CALL(libc, recv, s.a, b, 4, 0); });
    });
    add("send, SO_SNDTIMEO expires on a full socket", [](bool libc) {
        fd_pair s = make_socketpair();
        fill(s.a);
        set_timeout(s.a, SO_SNDTIMEO, 40);
        return attempt([&] { return CALL(libc, send, s.a, "x", 1, 0); });
    });

    // Regular files: never waited for.
    add("read, regular file", [](bool libc) {
        const std::string path = regular_file();
        const int fd = ::open(path.c_str(), O_RDONLY);
        char b[64];
        const outcome first = attempt([&] { return CALL(libc, read, fd, b, 4); });
        const outcome rest = attempt([&] { return CALL(libc, read, fd, b, sizeof b); });
        const outcome eof = attempt([&] { return CALL(libc, read, fd, b, sizeof b); });
        ::close(fd);
        ::unlink(path.c_str());
        return outcome{first.result * 10000 + rest.result * 100 + eof.result, first.error + rest.error + eof.error};
    });
    add("write, regular file opened read-only", [](bool libc) {
        const std::string path = regular_file();
        const int fd = ::open(path.c_str(), O_RDONLY);
        const outcome o = attempt([&] { return CALL(libc, write, fd, "x", 1); });
        ::close(fd);
        ::unlink(path.c_str());
        return o;
    });

    // Arguments the kernel refuses.
    add("readv, more than IOV_MAX buffers", [](bool libc) {
        fd_pair s = make_socketpair();
        ::send(s.b, "x", 1, 0);
        std::vector<iovec> v(IOV_MAX + 1, iovec{big, 1});
        return attempt([&] { return CALL(libc, readv, s.a, v.data(), static_cast<int>(v.size())); });
    });
    add("writev, more than IOV_MAX buffers", [](bool libc) {
        fd_pair s = make_socketpair();
        std::vector<iovec> v(IOV_MAX + 1, iovec{big, 1});
        return attempt([&] { return CALL(libc, writev, s.a, v.data(), static_cast<int>(v.size())); });
    });
    add("writev on a pipe, negative count", [](bool libc) {
        fd_pair p = make_pipe();
        iovec v{big, 1};
        volatile int count = -1;  // out of the compiler's sight, which would refuse it
        return attempt([&] { return CALL(libc, writev, p.b, &v, count); });
    });
    add("sendto, UDP without an address", [](bool libc) {
        const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        const outcome o = attempt([&] { return CALL(libc, sendto, fd, "x", 1, 0, nullptr, 0); });
        ::close(fd);
        return o;
    });
    return all;
}

}  // namespace

TEST_CASE("every situation gives libc's result and errno: in a greenlet, a hub-less thread and the hub") {
    green::monkey::patch_all();
    ignore_sigpipe quiet;
    for (const situation& s : situations()) {
        CAPTURE(s.name);
        const outcome real = s.run(true);
        CHECK(in_greenlet([&] { return s.run(false); }) == real);
        CHECK(in_thread([&] { return s.run(false); }) == real);
        CHECK(in_hub([&] { return s.run(false); }) == real);
    }
}

TEST_CASE("a regular file read in a greenlet never yields") {
    green::monkey::patch_all();
    char path[] = "/tmp/green-monkey-file-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    std::vector<char> data(1 << 20, 'f');
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
    ticker tick;
    const int before = tick.ticks;
    std::vector<char> back(data.size());
    CHECK(::read(fd, back.data(), back.size()) == static_cast<ssize_t>(back.size()));
    pollfd p{fd, POLLIN, 0};
    CHECK(::poll(&p, 1, 1000) == 1);  // a regular file is always ready
    CHECK(tick.ticks == before);
    CHECK(back == data);
    ::close(fd);
    ::unlink(path);
}

TEST_CASE("SO_RCVTIMEO expiry takes about as long through the hook as through libc") {
    green::monkey::patch_all();
    auto timed_recv = [](bool libc) {
        fd_pair s = make_socketpair();
        set_timeout(s.a, SO_RCVTIMEO, 100);
        char b[4];
        const auto start = clock_type::now();
        const outcome o = attempt([&] { return CALL(libc, recv, s.a, b, 4, 0); });
        return std::pair<outcome, double>(o, seconds_since(start));
    };
    const auto [real, real_time] = timed_recv(true);
    const auto [hooked, hooked_time] = in_greenlet([&] { return timed_recv(false); });
    CHECK(hooked == real);
    CHECK(real == outcome{-1, EAGAIN});
    CHECK(real_time >= 0.095);
    CHECK(hooked_time >= 0.095);
    CHECK(hooked_time < real_time + 0.2);
}

TEST_CASE("hooked calls leave the fd's flags exactly as they found them") {
    green::monkey::patch_all();
    ignore_sigpipe quiet;
    fd_pair p = make_pipe(), s = make_socketpair(), t = make_tcp_pair();
    tcp_listener listener;
    std::vector<int> fds{p.a, p.b, s.a, s.b, t.a, t.b, listener.fd};
    std::vector<int> flags;
    for (int fd : fds) flags.push_back(::fcntl(fd, F_GETFL));
    // Every kind of call, each made to wait at least once.
    auto feeder = green::spawn([&] {
        for (int i = 0; i < 3; ++i) {
            green::sleep(5ms);
            ::write(p.b, "p", 1);
            ::send(s.b, "s", 1, 0);
            ::send(t.b, "t", 1, 0);
        }
        const int c = connect_to(listener.port);
        ::close(c);
    });
    char c;
    iovec v{&c, 1};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    CHECK(::read(p.a, &c, 1) == 1);
    CHECK(::readv(s.a, &v, 1) == 1);
    CHECK(::recvmsg(t.a, &m, 0) == 1);
    CHECK(::read(p.a, &c, 1) == 1);
    CHECK(::recv(s.a, &c, 1, 0) == 1);
    CHECK(::read(t.a, &c, 1) == 1);
    CHECK(::recvfrom(s.a, &c, 1, 0, nullptr, nullptr) == 1);
    CHECK(::read(p.a, &c, 1) == 1);
    CHECK(::recv(t.a, &c, 1, 0) == 1);
    const int accepted = ::accept(listener.fd, nullptr, nullptr);
    CHECK(accepted >= 0);
    ::close(accepted);
    feeder.join();
    // Writers that wait for room.
    fill(p.b);
    fill(s.a);
    auto drainer = green::spawn([&] {
        green::sleep(5ms);
        std::vector<char> sink(1 << 20);
        ::read(p.a, sink.data(), sink.size());
        ::recv(s.b, sink.data(), sink.size(), 0);
    });
    CHECK(::write(p.b, "w", 1) == 1);
    CHECK(::send(s.a, "w", 1, 0) == 1);
    drainer.join();
    for (std::size_t i = 0; i < fds.size(); ++i) {
        CAPTURE(i);
        CHECK(::fcntl(fds[i], F_GETFL) == flags[i]);
    }
}

TEST_CASE("a std::thread without a hub blocks in read as usual while the hub thread goes on") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    std::atomic<bool> started{false};
    std::optional<std::pair<outcome, double>> seen;
    std::thread reader([&] {
        started = true;
        char b[8];
        const auto start = clock_type::now();
        const outcome o = attempt([&] { return ::read(p.a, b, sizeof b); });
        seen.emplace(o, seconds_since(start));
    });
    while (!started) std::this_thread::yield();
    ticker tick(1ms);
    const int before = tick.ticks;
    green::sleep(60ms);  // the hub runs on: the thread's read blocks only that thread
    CHECK(tick.ticks - before >= 20);
    CHECK_FALSE(nonblocking_flag(p.a));
    REQUIRE(::write(p.b, "thread", 6) == 6);
    reader.join();
    REQUIRE(seen.has_value());
    CHECK(seen->first == outcome{6, 0});
    CHECK(seen->second >= 0.055);
}

TEST_CASE("before patch_all every hook is libc's in greenlets too") {
    if (green::monkey::is_patched(green::monkey::patch::time) || green::monkey::is_patched(green::monkey::patch::socket)) {
        // This process was patched by an earlier test (a whole binary runs in one process):
        // run this test alone in a fresh one.
        char self[4096];
        const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
        REQUIRE(n > 0);
        self[n] = '\0';
        std::string filter = "--test-case=before patch_all every hook is libc's in greenlets too";
        char* argv[] = {self, filter.data(), const_cast<char*>("--no-version"), nullptr};
        pid_t child;
        REQUIRE(::posix_spawn(&child, self, nullptr, nullptr, argv, environ) == 0);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        return;
    }
    CHECK_FALSE(green::monkey::is_patched());
    ignore_sigpipe quiet;
    // Every situation, through the hook in a greenlet, in the hub and in the main greenlet.
    for (const situation& s : situations()) {
        CAPTURE(s.name);
        const outcome real = s.run(true);
        CHECK(in_greenlet([&] { return s.run(false); }) == real);
        CHECK(in_hub([&] { return s.run(false); }) == real);
        CHECK(s.run(false) == real);
    }
    // The calls that would wait do block the thread: a ticker greenlet does not move.
    ticker tick(1ms);
    const int before = tick.ticks;
    fd_pair p = make_pipe();
    std::thread writer([&] {
        std::this_thread::sleep_for(30ms);
        LIBC(write)(p.b, "b", 1);
    });
    auto blocked = green::spawn([&] {
        char c;
        const outcome r = attempt([&] { return ::read(p.a, &c, 1); });
        ::usleep(20'000);
        return r;
    });
    CHECK(blocked.get() == outcome{1, 0});
    writer.join();
    CHECK(tick.ticks - before < 10);  // about 50 had the calls waited in the hub
    CHECK_FALSE(green::monkey::is_patched());
}
