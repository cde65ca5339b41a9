// stream_server: echo at scale, EMFILE survival, resetting peers, half-close, stop().
#include <green/hub.hpp>
#include <green/server.hpp>
#include <green/socket.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

void echo(green::socket& conn, const green::endpoint&) {
    char buf[4096];
    for (std::size_t n; (n = conn.recv(buf, sizeof buf)) > 0;) conn.sendall(buf, n);
}

std::uint64_t checksum(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// Sends `message`, reads the echo back, returns its checksum.
std::uint64_t round_trip(std::uint16_t port, const std::string& message) {
    green::socket c = green::create_connection("127.0.0.1", port);
    c.sendall(message);
    c.shutdown(SHUT_WR);  // half-close: the server sees EOF after the message and closes
    std::string echoed;
    for (std::string part; !(part = c.recv(65536)).empty();) echoed += part;
    return checksum(echoed);
}

}  // namespace

TEST_CASE("1,000 concurrent echo connections, checksums intact (with half-close)") {
    green::stream_server server(green::endpoint("127.0.0.1", 0), echo);
    server.start();
    const std::uint16_t port = server.port();
    std::vector<green::task<bool>> clients;
    for (int i = 0; i < 1000; ++i) {
        clients.push_back(green::spawn([port, i] {
            std::string message(1000 + i * 7 % 3000, static_cast<char>('a' + i % 26));
            message += std::to_string(i);
            return round_trip(port, message) == checksum(message);
        }));
    }
    int good = 0;
    for (auto& c : clients) good += c.get();
    CHECK(good == 1000);
    server.stop();
    CHECK(server.connections() == 0);
}

TEST_CASE("a peer that resets mid-stream ends its handler; the server keeps serving") {
    int resets = 0;
    green::stream_server server(green::endpoint("127.0.0.1", 0), [&](green::socket& conn, const green::endpoint&) {
        try {
            char buf[4096];
            for (std::size_t n; (n = conn.recv(buf, sizeof buf)) > 0;) conn.sendall(buf, n);
        } catch (const std::system_error& e) {
            if (e.code().value() == ECONNRESET || e.code().value() == EPIPE) ++resets;
        }
    });
    server.start();
    {
        green::socket c = green::create_connection("127.0.0.1", server.port());
        c.sendall(std::string(100000, 'x'));
        linger hard{1, 0};  // close with RST, with unread echo pending
        ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    }
    green::sleep(50ms);
    CHECK(round_trip(server.port(), "still here") == checksum("still here"));
    server.stop();
    CHECK(resets == 1);
}

TEST_CASE("the server survives EMFILE: it backs off, then serves once fds are free") {
    // In a child process: it lowers RLIMIT_NOFILE for itself only.
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int status = 1;
        try {
            green::stream_server server(green::endpoint("127.0.0.1", 0), echo);
            server.start();
            const std::uint16_t port = server.port();
            // UBSan's dynamic type check opens a file on its first sight of a type, which fails
            // while the process has no fd to spare: the client task and a system_error are
            // met once here, before the fds run out.
            auto client = green::spawn([port] { return round_trip(port, "hello"); });
            try {
                throw std::system_error(EMFILE, std::generic_category());
            } catch (const std::system_error& e) {
                static_cast<void>(e.code().value());
            }
            // Use up the fds but one, for the client's socket: accepting then fails with EMFILE.
            rlimit limit{64, 64};
            setrlimit(RLIMIT_NOFILE, &limit);
            std::vector<int> hogs;
            for (int fd; (fd = ::dup(0)) >= 0;) hogs.push_back(fd);
            ::close(hogs.back());
            hogs.pop_back();
            green::sleep(100ms);  // the server is failing with EMFILE meanwhile
            for (int fd : hogs) ::close(fd);
            status = client.get(5s) == checksum("hello") ? 0 : 2;
            server.stop();
        } catch (...) {
            status = 3;
        }
        _exit(status);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("stop() waits for handlers up to its timeout, then kills them") {
    int finished = 0, killed = 0;
    green::stream_server server(green::endpoint("127.0.0.1", 0), [&](green::socket&, const green::endpoint&) {
        try {
            green::sleep(1h);
            ++finished;
        } catch (const green::greenlet_exit&) {
            ++killed;
            throw;
        }
    });
    server.start();
    green::socket c = green::create_connection("127.0.0.1", server.port());
    green::sleep(20ms);
    CHECK(server.connections() == 1);
    server.stop(20ms);
    CHECK(killed == 1);
    CHECK(finished == 0);
    CHECK(server.connections() == 0);
}
