// green/event.hpp — gevent.event: event and async_result.
//
// An event is a flag greenlets wait for. set() wakes every waiter, in the order they started
// waiting — but not before the caller yields: set() returns first and its greenlet keeps running.
//
//     green::event ready;
//     auto waiter = green::spawn([&] { ready.wait(); std::cout << "go\n"; });
//     green::sleep(50ms);
//     ready.set();                 // "go" prints once this greenlet waits (here: in join)
//     waiter.join();
//
// An async_result is a one-shot value or exception handed from one greenlet to any number of
// readers: a future. It is what the threadpool returns, and a task can be linked to one.
//
//     green::async_result<int> answer;
//     green::spawn([answer]() mutable { green::sleep(10ms); answer.set(42); });
//     int v = answer.get();        // 42; get(timeout) raises timeout_error instead of waiting on
#pragma once

#include <green/hub.hpp>
#include <green/timeout.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace green {

class event : public detail::link_source {
public:
    event() = default;

    // Sets the flag and wakes all current waiters (after the caller yields).
    void set() {
        flag_ = true;
        notify_links();
    }
    void clear() noexcept { flag_ = false; }
    bool is_set() const noexcept { return flag_; }
    bool ready() const noexcept override { return flag_; }

    // Waits until set: true, or false when the timeout passes first. Returns at once if set.
    bool wait(std::optional<duration> timeout = std::nullopt) {
        return detail::wait_ready(*this, timeout, "event::wait");
    }

    waitable as_waitable() const { return waitable(const_cast<event*>(this), {}); }

private:
    bool flag_ = false;
};

namespace detail {

template <class T>
class async_state : public refcounted, public link_source {
public:
    using stored = std::conditional_t<std::is_void_v<T>, none_t, T>;
    bool ready() const noexcept override { return value_.has_value() || error_ != nullptr; }

    template <class... V>
    void set(V&&... v) {
        value_.emplace(std::forward<V>(v)...);
        error_ = nullptr;
        notify_links();
    }
    void set_exception(std::exception_ptr e) {
        value_.reset();
        error_ = std::move(e);
        notify_links();
    }
    std::optional<stored> value_;
    std::exception_ptr error_;

private:
    void retain() noexcept override { add_ref(); }
    void release_retained() noexcept override { release(); }
};

}  // namespace detail

// gevent's AsyncResult. Copies refer to the same result.
template <class T>
class async_result {
    using stored = typename detail::async_state<T>::stored;

public:
    async_result() : state_(new detail::async_state<T>) {}

    // Stores the value (or the exception) and wakes every reader, after the caller yields.
    template <class... V>
    void set(V&&... v) const {
        state_->set(std::forward<V>(v)...);
    }
    void set_exception(std::exception_ptr e) const { state_->set_exception(std::move(e)); }
    template <class E>
        requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
    void set_exception(E&& e) const {
        set_exception(std::make_exception_ptr(std::forward<E>(e)));
    }

    bool ready() const noexcept { return state_->ready(); }
    bool successful() const noexcept { return state_->value_.has_value(); }
    std::exception_ptr exception() const noexcept { return state_->error_; }
    std::optional<stored> value() const { return state_->value_; }

    // The value, waiting for it if needed; rethrows a stored exception. timeout_error when the
    // timeout passes first; get(0s) never blocks (gevent's get(block=False)).
    T get(std::optional<duration> timeout = std::nullopt) const {
        if (!ready()) {
            if ((timeout && timeout->ns.count() == 0) ||
                !detail::wait_ready(*state_, timeout, "async_result::get"))
                throw timeout_error(0, timeout.value_or(duration{}));
        }
        if (state_->error_) std::rethrow_exception(state_->error_);
        if constexpr (!std::is_void_v<T>) return *state_->value_;
    }

    // Waits until ready; the value, or nullopt when it failed or the timeout passed.
    std::optional<stored> wait(std::optional<duration> timeout = std::nullopt) const {
        detail::wait_ready(*state_, timeout, "async_result::wait");
        return state_->value_;
    }

    // Makes it a link target: `t.link(result)` copies a finished task's outcome in (a killed
    // task's greenlet_exit as an exception).
    void operator()(const task<T>& t) const {
        if (t.successful() && t.exception() == nullptr && t.core().result_kind() == detail::task_core::outcome::returned) {
            if constexpr (std::is_void_v<T>)
                set();
            else
                set(*t.value());
        } else {
            set_exception(t.core().error());
        }
    }

    waitable as_waitable() const { return waitable(state_.get(), state_); }
    friend bool operator==(const async_result& a, const async_result& b) noexcept { return a.state_.get() == b.state_.get(); }

private:
    detail::ref_ptr<detail::async_state<T>> state_;
};

}  // namespace green
