// The echo benchmark's green server: green::stream_server, one task per connection, each
// echoing with green::socket recv/sendall, as a gevent user would write it.
//
//     echo_green [port]        # port 0 (the default): any free port; prints "port N"
//
// Single-threaded, like its peers: the hub's loop is the only event loop.
#include "net_common.h"

#include <green/server.hpp>
#include <green/socket.hpp>

#include <system_error>

int main(int argc, char** argv) {
    green::stream_server server(green::endpoint("127.0.0.1", port_argument(argc, argv)),
                                [](green::socket& conn, const green::endpoint&) {
                                    set_nodelay(conn.fd());
                                    char buf[4096];
                                    try {
                                        for (std::size_t n; (n = conn.recv(buf, sizeof buf)) > 0;) conn.sendall(buf, n);
                                    } catch (const std::system_error&) {
                                        // the client reset the connection: that handler is done
                                    }
                                });
    server.start();
    announce_port(server.port());
    server.serve_forever();
}
