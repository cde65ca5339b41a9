// stream_server: the accept loop and its error policy.
#include "hub_impl.hpp"

#include <green/server.hpp>

#include <cerrno>

namespace green {

stream_server::stream_server(endpoint address, handler on_connection, spawner spawn)
    : address_(address), handler_(std::move(on_connection)), spawn_(std::move(spawn)) {}

stream_server::stream_server(socket listener, handler on_connection, spawner spawn)
    : listener_(std::move(listener)), handler_(std::move(on_connection)), spawn_(std::move(spawn)) {
    address_ = listener_.local_endpoint();
}

stream_server::~stream_server() {
    if (!started()) return;
    try {
        stop();
    } catch (...) {
    }
}

endpoint stream_server::address() const { return listener_ ? listener_.local_endpoint() : address_; }

void stream_server::start() {
    if (started()) return;
    if (!listener_) {
        socket s(address_.family(), SOCK_STREAM);
        s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
        s.bind(address_);
        s.listen(SOMAXCONN);
        listener_ = std::move(s);
    }
    stopping_ = false;
    accept_task_ = spawn([this] { accept_loop(); });
    accept_task_->set_name("stream_server " + address().to_string());
}

void stream_server::serve_forever() {
    start();
    accept_task_->join();
}

void stream_server::accept_loop() {
    using namespace std::chrono_literals;
    duration backoff = 10ms;
    while (!stopping_) {
        endpoint peer;
        socket connection;
        try {
            connection = listener_.accept(&peer);
            backoff = 10ms;
        } catch (const std::system_error& e) {
            const int code = e.code().value();
            if (stopping_ || code == EBADF || code == EINVAL) break;  // the listener was closed
            if (code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM) {
                // Out of fds or memory: the pending connection waits; so do we, then retry.
                green::sleep(backoff);
                backoff = std::min(backoff.ns * 2, std::chrono::nanoseconds(1s));
            }
            // ECONNABORTED, EPROTO, EPERM, ECONNRESET...: that one connection is gone.
            continue;
        }
        const std::uint64_t id = next_handler_++;
        auto body = [this, connection = std::make_shared<socket>(std::move(connection)), peer] {
            handler_(*connection, peer);
        };
        any_task t = spawn_ ? spawn_(std::move(body)) : any_task(green::spawn(std::move(body)));
        handlers_.emplace(id, t);
        t.rawlink([this, id](any_task) { handlers_.erase(id); });
    }
}

void stream_server::stop(std::optional<duration> timeout) {
    if (!started()) return;
    stopping_ = true;
    listener_.close();  // wakes the accept loop with EBADF
    accept_task_->join();
    accept_task_.reset();
    std::vector<any_task> running;
    for (auto& [id, t] : handlers_) running.push_back(t);
    if (!running.empty()) {
        joinall(running, {.timeout = timeout});
        killall(running);
    }
    handlers_.clear();
}

}  // namespace green
