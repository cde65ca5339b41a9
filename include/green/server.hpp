// green/server.hpp — gevent's StreamServer: accept connections, one task per connection.
//
//     green::stream_server server(green::endpoint("127.0.0.1", 0), [](green::socket& conn, const green::endpoint&) {
//         char buf[4096];
//         for (std::size_t n; (n = conn.recv(buf, sizeof buf)) > 0;) conn.sendall(buf, n);
//     });
//     server.start();                              // accepts in a task; returns at once
//     std::cout << "echo on port " << server.port() << '\n';
//     server.serve_forever();                      // or keep doing other things
//
// Each connection runs handler(socket, peer) in a new task; the socket closes when the handler
// returns. The accept loop keeps serving through resource exhaustion (EMFILE, ENFILE,
// ENOBUFS, ENOMEM: it backs off from 10 ms up to 1 s and retries) and through connections that
// abort or reset before they are accepted. stop() closes the listener, gives running handlers
// up to its timeout to finish, then kills them.
#pragma once

#include <green/hub.hpp>
#include <green/socket.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>

namespace green {

class stream_server {
public:
    using handler = std::function<void(socket& connection, const endpoint& peer)>;
    // Starts a handler task; the default is green::spawn. A pool's spawn limits concurrency
    // (gevent's spawn=Pool(n)): while it blocks, the server stops accepting.
    using spawner = std::function<any_task(std::function<void()>)>;

    // Listens on `address` (port 0: any free port) once started.
    stream_server(endpoint address, handler on_connection, spawner spawn = {});
    // Serves on a socket that is already bound and listening.
    stream_server(socket listener, handler on_connection, spawner spawn = {});
    stream_server(const stream_server&) = delete;
    stream_server& operator=(const stream_server&) = delete;
    // Stops the server (with the default timeout) if it is running.
    ~stream_server();

    // Binds and listens (if needed) and starts accepting in a task. Returns at once.
    void start();
    // Starts, then waits until stop() is called (from another greenlet).
    void serve_forever();
    // Closes the listener, waits up to `timeout` for running handlers, then kills the rest.
    void stop(std::optional<duration> timeout = std::chrono::seconds(1));

    bool started() const noexcept { return accept_task_.has_value(); }
    // The address it listens on: with port 0, the port the system chose (after start()).
    endpoint address() const;
    std::uint16_t port() const { return address().port(); }
    // Handlers running now.
    std::size_t connections() const noexcept { return handlers_.size(); }

private:
    void accept_loop();

    endpoint address_;
    socket listener_;
    handler handler_;
    spawner spawn_;
    std::optional<task<void>> accept_task_;
    std::unordered_map<std::uint64_t, any_task> handlers_;
    std::uint64_t next_handler_ = 0;
    bool stopping_ = false;
};

}  // namespace green
