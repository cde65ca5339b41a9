// The echo benchmark's monkey-patched server: the code of a plain blocking, thread-per-
// connection echo server (blocking ::accept, ::read, ::write on ordinary blocking fds), with
// spawned greenlets in place of threads. After green::monkey::patch_all(), each of those calls
// waits in the hub when it would block.
//
//     echo_patched [port]      # port 0 (the default): any free port; prints "port N"
#include "net_common.h"

#include <green/hub.hpp>
#include <green/monkey.hpp>

#include <cerrno>
#include <unistd.h>

namespace {

void echo(int fd) {
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        for (ssize_t sent = 0; sent < n;) {  // what a blocking program does with a short write
            ssize_t r = ::write(fd, buf + sent, static_cast<std::size_t>(n - sent));
            if (r < 0) {
                ::close(fd);
                return;
            }
            sent += r;
        }
    }
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    green::monkey::patch_all();
    const int listener = listen_on(port_argument(argc, argv), 0);
    announce_port(local_port(listener));
    auto acceptor = green::spawn([listener] {
        for (;;) {
            int fd = ::accept(listener, nullptr, nullptr);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                return;
            }
            set_nodelay(fd);
            green::spawn(echo, fd);
        }
    });
    acceptor.join();
}
