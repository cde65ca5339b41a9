// read, write, readv and writev after patch_all(), on pipes and sockets: a call that would
// block waits in the hub; what it returns is what the blocking libc call would have returned.
#include "monkey_support.hpp"

#include <algorithm>
#include <string>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <vector>

using namespace monkey_test;

extern "C" ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen);

namespace {

std::vector<char> pattern(std::size_t n) {
    std::vector<char> data(n);
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>((i * 7 + i / 4096) & 0xff);
    return data;
}

// Reads until EOF with plain read() calls of `chunk` bytes.
std::vector<char> read_to_end(int fd, std::size_t chunk = 65536) {
    std::vector<char> out;
    std::vector<char> buf(chunk);
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        REQUIRE(n >= 0);
        if (n == 0) break;
        out.insert(out.end(), buf.data(), buf.data() + n);
    }
    return out;
}

}  // namespace

TEST_CASE("read on an empty pipe waits in the hub, then returns what was written") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    ticker tick(1ms);
    auto writer = green::spawn([&] {
        green::sleep(30ms);
        return ::write(p.b, "hello", 5);
    });
    char buf[64];
    const int before = tick.ticks;
    const ssize_t n = ::read(p.a, buf, sizeof buf);
    CHECK(n == 5);
    CHECK(std::string(buf, 5) == "hello");
    CHECK(tick.ticks - before >= 10);  // other greenlets ran while it waited
    CHECK(writer.get() == 5);
    CHECK_FALSE(nonblocking_flag(p.a));
    CHECK_FALSE(nonblocking_flag(p.b));
}

TEST_CASE("a read returns what is there without waiting for more; 0 at end of file") {
    green::monkey::patch_all();
    for (bool socket : {false, true}) {
        CAPTURE(socket);
        fd_pair p = socket ? make_socketpair() : make_pipe();
        REQUIRE(::write(p.b, "abc", 3) == 3);
        ticker tick;
        const int before = tick.ticks;
        char buf[100];
        CHECK(::read(p.a, buf, sizeof buf) == 3);
        CHECK(tick.ticks == before);  // data was there: no yield
        auto closer = green::spawn([&] {
            green::sleep(10ms);
            ::close(std::exchange(p.b, -1));
        });
        CHECK(::read(p.a, buf, sizeof buf) == 0);  // waited for the writer to go away
        closer.join();
    }
}

TEST_CASE("a 4 MiB write to a pipe completes fully while a reader drains it") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    const std::vector<char> data = pattern(4 << 20);
    auto reader = green::spawn([&] { return read_to_end(p.a, 10000); });
    const ssize_t written = ::write(p.b, data.data(), data.size());
    CHECK(written == static_cast<ssize_t>(data.size()));
    ::close(std::exchange(p.b, -1));
    CHECK(reader.get() == data);
}

TEST_CASE("a 4 MiB write to a stream socket completes fully while a reader drains it") {
    green::monkey::patch_all();
    for (bool tcp : {false, true}) {
        CAPTURE(tcp);
        fd_pair p = tcp ? make_tcp_pair() : make_socketpair();
        const std::vector<char> data = pattern(4 << 20);
        auto reader = green::spawn([&] { return read_to_end(p.b, 7000); });
        CHECK(::write(p.a, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
        ::shutdown(p.a, SHUT_WR);
        CHECK(reader.get() == data);
    }
}

TEST_CASE("writev of many buffers totalling 3 MiB completes fully, in order, on a pipe and a socket") {
    green::monkey::patch_all();
    for (bool socket : {false, true}) {
        CAPTURE(socket);
        fd_pair p = socket ? make_socketpair() : make_pipe();
        const std::vector<char> data = pattern(3 << 20);
        // Uneven pieces, so that partial writes end in the middle of one.
        std::vector<iovec> pieces;
        for (std::size_t at = 0, size = 1; at < data.size(); at += size, size = size * 3 % 200'003 + 1) {
            size = std::min(size, data.size() - at);
            pieces.push_back(iovec{const_cast<char*>(data.data() + at), size});
        }
        REQUIRE(pieces.size() < IOV_MAX);
        const int in = socket ? p.b : p.a;
        const int out = socket ? p.a : p.b;
        auto reader = green::spawn([&] { return read_to_end(in, 5000); });
        CHECK(::writev(out, pieces.data(), static_cast<int>(pieces.size())) == static_cast<ssize_t>(data.size()));
        if (socket)
            ::shutdown(out, SHUT_WR);
        else
            ::close(std::exchange(p.b, -1));
        CHECK(reader.get() == data);
    }
}

TEST_CASE("readv waits, then scatters what arrived over the buffers") {
    green::monkey::patch_all();
    for (bool socket : {false, true}) {
        CAPTURE(socket);
        fd_pair p = socket ? make_socketpair() : make_pipe();
        auto writer = green::spawn([&] {
            green::sleep(10ms);
            return ::write(p.b, "0123456789", 10);
        });
        char first[4], second[3], third[10];
        iovec iov[3] = {{first, sizeof first}, {second, sizeof second}, {third, sizeof third}};
        CHECK(::readv(p.a, iov, 3) == 10);
        CHECK(std::string(first, 4) == "0123");
        CHECK(std::string(second, 3) == "456");
        CHECK(std::string(third, 3) == "789");
        CHECK(writer.get() == 10);
    }
}

TEST_CASE("two greenlets blocked reading one pipe are both served, as two threads would be") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto reader = [&] {
        char c = 0;
        const ssize_t n = ::read(p.a, &c, 1);
        return n == 1 ? std::string(1, c) : "error " + std::to_string(errno);
    };
    auto first = green::spawn(reader);
    auto second = green::spawn(reader);
    green::sleep(10ms);  // both are waiting now
    REQUIRE(::write(p.b, "x", 1) == 1);
    green::sleep(10ms);
    REQUIRE(::write(p.b, "y", 1) == 1);
    std::vector<std::string> got{first.get(), second.get()};
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"x", "y"});
}

TEST_CASE("two greenlets blocked writing one full socket are both served") {
    green::monkey::patch_all();
    fd_pair p = make_socketpair();
    fill(p.a);
    const std::vector<char> data = pattern(100'000);
    auto writer = [&] { return ::write(p.a, data.data(), data.size()); };
    auto first = green::spawn(writer);
    auto second = green::spawn(writer);
    green::sleep(10ms);
    CHECK_FALSE(first.dead());
    CHECK_FALSE(second.dead());
    // Drain without ever blocking, until both are done (or clearly stuck).
    std::vector<char> buf(65536);
    const auto start = clock_type::now();
    while (!(first.dead() && second.dead()) && seconds_since(start) < 5) {
        const ssize_t n = ::recv(p.b, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n <= 0) green::sleep(1ms);
    }
    while (::recv(p.b, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
    }
    CHECK(first.get() == static_cast<ssize_t>(data.size()));
    CHECK(second.get() == static_cast<ssize_t>(data.size()));
}

TEST_CASE("errno is left alone by a read or write that succeeds after waiting") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto clobber = green::spawn([&] {
        errno = EIO;
        green::sleep(10ms);
        errno = EIO;
        ::write(p.b, "z", 1);
        errno = EIO;
    });
    char c;
    errno = 0;
    CHECK(::read(p.a, &c, 1) == 1);
    CHECK(errno == 0);
    clobber.join();

    fd_pair s = make_socketpair();
    const std::size_t filled = fill(s.a);
    auto drain = green::spawn([&] {
        green::sleep(10ms);
        std::vector<char> buf(filled + 1);
        std::size_t got = 0;
        while (got < filled + 1) {
            errno = EIO;
            got += static_cast<std::size_t>(::read(s.b, buf.data(), buf.size()));
        }
        errno = EIO;
    });
    errno = 0;
    CHECK(::write(s.a, "w", 1) == 1);
    CHECK(errno == 0);
    drain.join();
}

TEST_CASE("the fortified __read_chk waits like read") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::write(p.b, "chk", 3);
    });
    char buf[8];
    ticker tick(1ms);
    const int before = tick.ticks;
    CHECK(__read_chk(p.a, buf, sizeof buf, sizeof buf) == 3);
    CHECK(tick.ticks > before);
    writer.join();
}

TEST_CASE("an fd number closed behind the hooks' back and reused for something else reads like libc") {
    green::monkey::patch_all();
    // A socket the hooks know about, closed with a raw system call (as glibc's fclose or a
    // library's own syscall would): the number comes back for an eventfd.
    fd_pair s = make_socketpair();
    REQUIRE(::write(s.b, "s", 1) == 1);
    char c;
    REQUIRE(::read(s.a, &c, 1) == 1);
    const int number = s.a;
    REQUIRE(::syscall(SYS_close, number) == 0);
    s.a = -1;
    const int efd = ::eventfd(5, 0);
    REQUIRE(efd == number);
    std::uint64_t value = 0;
    const outcome hooked = attempt([&] { return ::read(efd, &value, sizeof value); });
    CHECK(hooked == outcome{8, 0});
    CHECK(value == 5u);
    ::close(efd);
}
