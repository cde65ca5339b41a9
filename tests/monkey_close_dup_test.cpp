// close, dup, dup2, dup3, fcntl and ioctl after patch_all(): closing an fd wakes the greenlets
// waiting on it with EBADF without touching the number again; dup'ed fds keep their own
// waits; the user's non-blocking choice is followed through every call that makes or
// changes it.
#include "monkey_support.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <vector>

using namespace monkey_test;

namespace {

// Reads one byte in a new greenlet; its result is what read returned, or -errno.
green::task<int> read_one(int fd) {
    return green::spawn([fd] {
        char c;
        const ssize_t n = ::read(fd, &c, 1);
        return n < 0 ? -errno : (n == 1 ? static_cast<int>(static_cast<unsigned char>(c)) : 0);
    });
}

}  // namespace

TEST_CASE("close wakes a greenlet waiting to read with EBADF; a new fd with the same number is left alone") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto reader = read_one(p.a);
    green::sleep(10ms);
    REQUIRE_FALSE(reader.dead());
    const int number = p.a;
    ::close(std::exchange(p.a, -1));
    // The number comes back at once, before the woken reader runs, and has data waiting.
    fd_pair reused = make_pipe();
    REQUIRE(reused.a == number);
    REQUIRE(::write(reused.b, "k", 1) == 1);
    CHECK(reader.get() == -EBADF);
    // The woken reader did not read from the new pipe: the byte is still there.
    char c = 0;
    CHECK(::read(reused.a, &c, 1) == 1);
    CHECK(c == 'k');
}

TEST_CASE("close wakes a greenlet waiting to write with EBADF") {
    green::monkey::patch_all();
    fd_pair s = make_socketpair();
    fill(s.a);
    auto writer = green::spawn([&] {
        const ssize_t n = ::write(s.a, "w", 1);
        return n < 0 ? -errno : static_cast<int>(n);
    });
    green::sleep(10ms);
    REQUIRE_FALSE(writer.dead());
    ::close(std::exchange(s.a, -1));
    CHECK(writer.get() == -EBADF);
}

TEST_CASE("close wakes every greenlet waiting on the fd, not only the first") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    std::vector<green::task<int>> readers{read_one(p.a), read_one(p.a), read_one(p.a)};
    green::sleep(10ms);
    ::close(std::exchange(p.a, -1));
    for (auto& r : readers) CHECK(r.get(2s) == -EBADF);
}

TEST_CASE("a dup'ed fd keeps working after the original, which was waited on, is closed") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    // Wait on the original once, so that the hub has it registered.
    auto first = read_one(p.a);
    green::sleep(5ms);
    ::write(p.b, "1", 1);
    CHECK(first.get() == '1');
    const int copy = ::dup(p.a);
    REQUIRE(copy >= 0);
    ::close(std::exchange(p.a, -1));
    auto second = read_one(copy);
    green::sleep(5ms);
    REQUIRE_FALSE(second.dead());
    ::write(p.b, "2", 1);
    CHECK(second.get(2s) == '2');
    // And the other way round: waited on the copy, closed the copy, the original still works.
    fd_pair q = make_pipe();
    const int other = ::fcntl(q.a, F_DUPFD_CLOEXEC, 100);
    REQUIRE(other >= 100);
    auto on_copy = read_one(other);
    green::sleep(5ms);
    ::write(q.b, "3", 1);
    CHECK(on_copy.get() == '3');
    ::close(other);
    auto on_original = read_one(q.a);
    green::sleep(5ms);
    ::write(q.b, "4", 1);
    CHECK(on_original.get(2s) == '4');
    ::close(copy);
}

TEST_CASE("dup2 over a waited fd wakes the waiter with EBADF; the number then reads the new file") {
    green::monkey::patch_all();
    fd_pair waited = make_pipe(), other = make_pipe();
    auto reader = read_one(waited.a);
    green::sleep(10ms);
    REQUIRE(::dup2(other.a, waited.a) == waited.a);
    CHECK(reader.get() == -EBADF);
    auto again = read_one(waited.a);
    green::sleep(5ms);
    REQUIRE_FALSE(again.dead());
    ::write(other.b, "n", 1);
    CHECK(again.get(2s) == 'n');
    // dup3 likewise.
    auto third = read_one(waited.a);
    green::sleep(5ms);
    fd_pair last = make_pipe();
    REQUIRE(::dup3(last.a, waited.a, O_CLOEXEC) == waited.a);
    CHECK(third.get() == -EBADF);
    CHECK((::fcntl(waited.a, F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("dup2 and dup3 that fail leave a waiter on the target alone, and fail as libc's") {
    green::monkey::patch_all();
    fd_pair p = make_pipe(), closed = make_pipe();
    const int bad = closed.a;
    ::close(std::exchange(closed.a, -1));
    auto reader = read_one(p.a);
    green::sleep(5ms);
    CHECK(attempt([&] { return ::dup2(bad, p.a); }) == attempt([&] { return LIBC(dup2)(bad, p.a); }));
    CHECK(attempt([&] { return ::dup2(bad, p.a); }) == outcome{-1, EBADF});
    CHECK(attempt([&] { return ::dup3(p.b, p.a, 12345); }) == outcome{-1, EINVAL});
    CHECK(attempt([&] { return ::dup3(p.a, p.a, 0); }) == outcome{-1, EINVAL});
    green::sleep(5ms);
    CHECK_FALSE(reader.dead());
    ::write(p.b, "s", 1);
    CHECK(reader.get(2s) == 's');
    // dup2 onto itself: the fd if it is open, EBADF if not.
    CHECK(attempt([&] { return ::dup2(p.a, p.a); }) == outcome{p.a, 0});
    CHECK(attempt([&] { return ::dup2(bad, bad); }) == outcome{-1, EBADF});
}

TEST_CASE("close's own errors are libc's") {
    green::monkey::patch_all();
    auto close_libc = LIBC(close);
    fd_pair p = make_pipe();
    const int gone = p.a;
    ::close(std::exchange(p.a, -1));
    for (int fd : {-1, gone, 1 << 20}) {
        CAPTURE(fd);
        CHECK(in_greenlet([&] { return attempt([&] { return ::close(fd); }); }) == attempt([&] { return close_libc(fd); }));
    }
}

TEST_CASE("the user's O_NONBLOCK, from every call that sets it, makes hooked calls return EAGAIN at once") {
    green::monkey::patch_all();
    ticker tick;
    const int before = tick.ticks;
    auto would_block = [](int fd) {
        char c;
        return within_2s([&] { return ::read(fd, &c, 1); }) == outcome{-1, EAGAIN};
    };
    {
        fd_pair p = make_pipe(O_NONBLOCK);
        CHECK(would_block(p.a));
    }
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
        fd_pair s(fds[0], fds[1]);
        CHECK(would_block(s.a));
    }
    {
        tcp_listener listener;
        const int fd = connect_to(listener.port, SOCK_NONBLOCK);  // socket(SOCK_NONBLOCK)
        const int conn = ::accept(listener.fd, nullptr, nullptr);
        fd_pair keep(fd, conn);
        CHECK(would_block(fd));
    }
    {
        fd_pair p = make_pipe();
        REQUIRE(::fcntl(p.a, F_SETFL, ::fcntl(p.a, F_GETFL) | O_NONBLOCK) == 0);
        CHECK(would_block(p.a));
    }
    {
        fd_pair s = make_socketpair();
        int on = 1;
        REQUIRE(::ioctl(s.a, FIONBIO, &on) == 0);
        CHECK(would_block(s.a));
    }
    {
        fd_pair p = make_pipe();
        REQUIRE(::fcntl64(p.a, F_SETFL, O_NONBLOCK) == 0);
        CHECK(would_block(p.a));
    }
    CHECK(tick.ticks == before);
}

TEST_CASE("clearing O_NONBLOCK again, through any of those calls, makes hooked calls wait again") {
    green::monkey::patch_all();
    auto waits = [](int reader, int writer) {
        auto w = green::spawn([writer] {
            green::sleep(10ms);
            ::write(writer, "b", 1);
        });
        char c;
        const outcome o = within_2s([&] { return ::read(reader, &c, 1); });
        w.join();
        return o == outcome{1, 0};
    };
    {
        fd_pair p = make_pipe(O_NONBLOCK);
        REQUIRE(::fcntl(p.a, F_SETFL, 0) == 0);
        CHECK(waits(p.a, p.b));
    }
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
        fd_pair s(fds[0], fds[1]);
        int off = 0;
        REQUIRE(::ioctl(s.a, FIONBIO, &off) == 0);
        CHECK(waits(s.a, s.b));
    }
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
        fd_pair s(fds[0], fds[1]);
        REQUIRE(::fcntl64(s.a, F_SETFL, 0) == 0);
        CHECK(waits(s.a, s.b));
    }
}

TEST_CASE("O_NONBLOCK set through a dup'ed fd is honoured on the original: they share it, as in libc") {
    green::monkey::patch_all();
    for (bool socket : {false, true}) {
        CAPTURE(socket);
        fd_pair p = socket ? make_socketpair() : make_pipe();
        const int copy = ::dup(p.a);
        REQUIRE(::fcntl(copy, F_SETFL, O_NONBLOCK) == 0);
        CHECK(nonblocking_flag(p.a));  // one open file description, one flag
        ticker tick;
        const int before = tick.ticks;
        char c;
        CHECK(within_2s([&] { return ::read(p.a, &c, 1); }) == outcome{-1, EAGAIN});
        CHECK(within_2s([&] { return ::recv(p.a, &c, 1, 0); }) == (socket ? outcome{-1, EAGAIN} : outcome{-1, ENOTSOCK}));
        CHECK(tick.ticks == before);
        ::close(copy);
    }
    // connect and accept too.
    tcp_listener listener;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int copy = ::dup(fd);
    REQUIRE(::fcntl(copy, F_SETFL, O_NONBLOCK) == 0);
    const sockaddr_in there = listener.address();
    const outcome connected = within_2s([&] { return ::connect(fd, reinterpret_cast<const sockaddr*>(&there), sizeof there); });
    CHECK((connected == outcome{-1, EINPROGRESS} || connected == outcome{0, 0}));
    const int listener_copy = ::dup(listener.fd);
    REQUIRE(::fcntl(listener_copy, F_SETFL, O_NONBLOCK) == 0);
    pollfd incoming{listener.fd, POLLIN, 0};
    REQUIRE(::poll(&incoming, 1, 2000) == 1);
    const int accepted = ::accept(listener.fd, nullptr, nullptr);  // the one that connected
    CHECK(accepted >= 0);
    ::close(accepted);
    CHECK(within_2s([&] { return ::accept(listener.fd, nullptr, nullptr); }) == outcome{-1, EAGAIN});
    ::close(listener_copy);
    ::close(copy);
    ::close(fd);
}

TEST_CASE("dup, dup3 and F_DUPFD copy the user's non-blocking choice to the new fd") {
    green::monkey::patch_all();
    fd_pair p = make_pipe(O_NONBLOCK);
    std::vector<int> copies{::dup(p.a), ::fcntl(p.a, F_DUPFD, 50), ::fcntl(p.a, F_DUPFD_CLOEXEC, 60)};
    const int target = ::dup(p.b);
    REQUIRE(::dup3(p.a, target, O_CLOEXEC) == target);
    copies.push_back(target);
    ticker tick;
    const int before = tick.ticks;
    for (int fd : copies) {
        CAPTURE(fd);
        char c;
        CHECK(within_2s([&] { return ::read(fd, &c, 1); }) == outcome{-1, EAGAIN});
        ::close(fd);
    }
    CHECK(tick.ticks == before);
}

TEST_CASE("fds the hooks never saw made (raw system calls) are described on first use") {
    green::monkey::patch_all();
    int fds[2];
    REQUIRE(::syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    fd_pair s(fds[0], fds[1]);
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::write(s.b, "r", 1);
    });
    ticker tick(1ms);
    const int before = tick.ticks;
    char c;
    CHECK(::read(s.a, &c, 1) == 1);
    CHECK(tick.ticks > before);
    writer.join();
    // Made non-blocking behind the hooks' back: seen on first use too.
    int more[2];
    REQUIRE(::syscall(SYS_pipe2, more, 0) == 0);
    fd_pair p(more[0], more[1]);
    REQUIRE(::syscall(SYS_fcntl, p.a, F_SETFL, O_NONBLOCK) == 0);
    CHECK(within_2s([&] { return ::read(p.a, &c, 1); }) == outcome{-1, EAGAIN});
}

TEST_CASE("an fd closed behind the hooks' back (raw syscall) does not strand the next fd with its number") {
    green::monkey::patch_all();
    fd_pair source = make_pipe();  // for the dup at the end; made first, so it takes no number
    // Waited on once, so the hub has the number registered; then closed with a raw system call
    // (as fclose or close_range would), which the hooks never see.
    fd_pair old = make_pipe();
    auto first = read_one(old.a);
    green::sleep(5ms);
    ::write(old.b, "o", 1);
    REQUIRE(first.get() == 'o');
    const int number = old.a;
    REQUIRE(::syscall(SYS_close, number) == 0);
    old.a = -1;
    for (bool socket : {false, true}) {
        CAPTURE(socket);
        fd_pair fresh = socket ? make_socketpair() : make_pipe();
        REQUIRE(fresh.a == number);
        auto writer = green::spawn([&] {
            green::sleep(10ms);
            ::write(fresh.b, "f", 1);
        });
        char c = 0;
        CHECK(within_2s([&] { return ::read(fresh.a, &c, 1); }) == outcome{1, 0});
        writer.join();
        REQUIRE(::syscall(SYS_close, fresh.a) == 0);  // behind the hooks' back again
        fresh.a = -1;
    }
    // Made by dup: the same.
    const int copy = ::dup(source.a);
    REQUIRE(copy == number);
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::write(source.b, "d", 1);
    });
    char c = 0;
    CHECK(within_2s([&] { return ::read(copy, &c, 1); }) == outcome{1, 0});
    writer.join();
    ::close(copy);
}
