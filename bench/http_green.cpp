// The HTTP benchmark's green server: green::stream_server with a minimal HTTP/1.1 keep-alive
// responder that answers every request with "Hello, World!".
//
//     http_green [port]        # port 0 (the default): any free port; prints "port N"
//
// Each connection's task reads into a buffer and answers each complete request in it
// (everything up to a blank line: the benchmark's GETs have no body), one sendall each; the
// same work as http_epoll, written as straight-line code.
#include "net_common.h"

#include <green/server.hpp>
#include <green/socket.hpp>

#include <cstring>
#include <string_view>
#include <system_error>

namespace {

constexpr std::string_view response = HELLO_RESPONSE;

void serve(green::socket& conn, const green::endpoint&) {
    set_nodelay(conn.fd());
    char buf[8192];
    std::size_t length = 0;
    try {
        for (;;) {
            const std::size_t n = conn.recv(buf + length, sizeof buf - length);
            if (n == 0) return;
            length += n;
            std::size_t start = 0;
            for (const void* end; (end = memmem(buf + start, length - start, "\r\n\r\n", 4));) {
                start = static_cast<std::size_t>(static_cast<const char*>(end) - buf) + 4;
                conn.sendall(response);
            }
            if (start == 0 && length == sizeof buf) return;  // a request too big for this responder
            std::memmove(buf, buf + start, length - start);
            length -= start;
        }
    } catch (const std::system_error&) {
        // the client reset the connection: that handler is done
    }
}

}  // namespace

int main(int argc, char** argv) {
    green::stream_server server(green::endpoint("127.0.0.1", port_argument(argc, argv)), serve);
    server.start();
    announce_port(server.port());
    server.serve_forever();
}
