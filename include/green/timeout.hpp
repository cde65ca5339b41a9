// green/timeout.hpp — gevent's Timeout and with_timeout.
//
// A green::timeout is a deadline for the greenlet that creates it: if the scope it guards is
// still running when it expires, the hub raises green::timeout_error (or the exception you gave)
// wherever that greenlet is waiting. Leaving the scope cancels it. Like gevent's Timeout,
// timeout_error is not a std::exception, so `catch (const std::exception&)` in between does not
// swallow it, and it says which timeout fired, so nested timeouts stay apart:
//
//     green::timeout outer(1s);
//     try {
//         green::timeout inner(5s);
//         fetch_everything();                     // blocks in sockets, sleeps, queues...
//     } catch (const green::timeout_error& e) {
//         if (!e.is(outer)) throw;                // not ours
//         std::cout << "gave up after " << e.what() << '\n';   // "1 seconds"... see what()
//     }
//
//     auto v = green::with_timeout(50ms, green::timeout_value(std::string("dflt")), fetch, url);
//
// A timeout can only interrupt a greenlet that waits: a busy loop or a real blocking system
// call (without monkey patching) runs to its end.
#pragma once

#include <green/hub.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace green {

class timeout;

// Raised by an expired timeout, and by waits given a timeout that report it this way (get(),
// with_timeout, killall). Not a std::exception (gevent's Timeout is a BaseException).
class timeout_error {
public:
    timeout_error(std::uint64_t source, duration length);
    // "0.05 seconds", as gevent prints it.
    const char* what() const noexcept { return message_.c_str(); }
    // True when `t` is the timeout that raised this.
    bool is(const timeout& t) const noexcept;
    duration length() const noexcept { return length_; }

private:
    std::uint64_t source_;
    duration length_;
    std::string message_;
};

class timeout {
public:
    // Starts counting now. std::nullopt never fires (and arms nothing).
    explicit timeout(std::optional<duration> length);
    // When it fires, raises `exception` instead of timeout_error.
    template <class E>
        requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
    timeout(std::optional<duration> length, E&& exception)
        : timeout(length, std::make_exception_ptr(std::forward<E>(exception))) {}
    timeout(std::optional<duration> length, std::exception_ptr exception);
    timeout(const timeout&) = delete;
    timeout& operator=(const timeout&) = delete;
    ~timeout();

    // Stops it; it will not fire. start() arms it again for the same length, from now.
    void cancel() noexcept;
    void start();
    bool pending() const noexcept { return timer_.armed(); }
    std::optional<duration> length() const noexcept { return length_; }
    std::uint64_t id() const noexcept { return id_; }

private:
    struct fire_timer : detail::timer_node {
        timeout* owner = nullptr;
    };
    static void fire(detail::timer_node& t);
    std::optional<duration> length_;
    std::exception_ptr exception_;
    green::greenlet target_;
    std::uint64_t id_;
    fire_timer timer_;
};

// with_timeout's fallback: the value returned instead of raising timeout_error.
template <class T>
struct timeout_value_t {
    T value;
};
template <class T>
timeout_value_t<std::decay_t<T>> timeout_value(T&& v) {
    return {std::forward<T>(v)};
}

// Calls fn(args...) under a timeout: its result, or timeout_error when `length` passes first.
template <class F, class... A>
    requires std::is_invocable_v<F, A...>
auto with_timeout(duration length, F&& fn, A&&... args) {
    timeout guard(length);
    return std::forward<F>(fn)(std::forward<A>(args)...);
}

// The same, returning `fallback` on timeout instead of raising.
template <class T, class F, class... A>
auto with_timeout(duration length, timeout_value_t<T> fallback, F&& fn, A&&... args)
    -> std::common_type_t<T, std::invoke_result_t<F, A...>> {
    timeout guard(length);
    try {
        return std::forward<F>(fn)(std::forward<A>(args)...);
    } catch (const timeout_error& e) {
        if (!e.is(guard)) throw;
        return std::move(fallback.value);
    }
}

}  // namespace green
