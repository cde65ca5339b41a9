// gevent's StreamServer echo: every connection gets its own task, and the handler is written as
// plain blocking code — recv, then send it back. The hub runs all the handlers on one thread.
//
//     echo_server [port]          serves on 127.0.0.1 until Ctrl-C (default port 7000; 0: any)
//                                 try it: nc 127.0.0.1 7000
//     echo_server --demo [port]   starts the server, has three clients echo a line at once,
//                                 prints what they got back and stops (default port 0)
#include <green/hub.hpp>
#include <green/server.hpp>
#include <green/socket.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void log_peer(const green::endpoint& peer, const char* what) {
    std::printf("%s %s\n", peer.to_string().c_str(), what);
    std::fflush(stdout);  // shown at once even when stdout is a pipe
}

// Echoes until the client closes its side.
void echo(green::socket& conn, const green::endpoint& peer, bool verbose) {
    if (verbose) log_peer(peer, "connected");
    char buf[4096];
    for (std::size_t n; (n = conn.recv(buf, sizeof buf)) > 0;) conn.sendall(buf, n);
    if (verbose) log_peer(peer, "closed");
}

// A client: sends one line, returns what came back up to the newline.
std::string echo_line(std::uint16_t port, const std::string& line) {
    green::socket conn = green::create_connection("127.0.0.1", port);
    conn.sendall(line + "\n");
    std::string back;
    while (back.find('\n') == std::string::npos) {
        std::string part = conn.recv(4096);
        if (part.empty()) break;
        back += part;
    }
    return back.substr(0, back.find('\n'));
}

void demo(green::stream_server& server) {
    // Three clients at once: each waits for its echo in the hub, so the server's three handler
    // tasks and the clients all interleave on this one thread.
    std::vector<green::task<std::string>> clients;
    for (int i = 1; i <= 3; ++i)
        clients.push_back(green::spawn(echo_line, server.port(), "hello from client " + std::to_string(i)));
    for (int i = 1; i <= 3; ++i)  // in client order, whichever finished first
        std::printf("client %d got back: %s\n", i, clients[i - 1].get().c_str());
    server.stop();
    std::printf("server stopped\n");
}

}  // namespace

int main(int argc, char** argv) {
    bool demo_mode = argc > 1 && std::strcmp(argv[1], "--demo") == 0;
    const char* port_arg = argc > 1 + demo_mode ? argv[1 + demo_mode] : nullptr;
    char* end = nullptr;
    long port = port_arg ? std::strtol(port_arg, &end, 10) : demo_mode ? 0 : 7000;
    if ((port_arg && *end != '\0') || port < 0 || port > 65535 || argc > 2 + demo_mode) {
        std::fprintf(stderr, "usage: %s [--demo] [port]\n", argv[0]);
        return 2;
    }

    green::stream_server server(green::endpoint("127.0.0.1", static_cast<std::uint16_t>(port)),
                                [demo_mode](green::socket& conn, const green::endpoint& peer) {
                                    echo(conn, peer, !demo_mode);
                                });
    server.start();  // listens now, accepts once main waits
    std::printf("echo server on 127.0.0.1:%u\n", server.port());
    if (demo_mode) {
        demo(server);
    } else {
        std::printf("try: nc 127.0.0.1 %u   (Ctrl-C stops the server)\n", server.port());
        std::fflush(stdout);
        server.serve_forever();
    }
}
