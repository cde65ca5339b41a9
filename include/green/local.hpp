// green/local.hpp — greenlet-local storage, gevent's `local`.
//
// A C++ thread_local is one value per OS thread, so every greenlet of a thread shares it. A
// green::local<T> holds one T per greenlet instead: made on first access in each greenlet
// (default-constructed, or by the function given), and destroyed when that greenlet finishes.
//
//     green::local<std::string> request_id;              // e.g. for logging
//
//     void handle(green::socket& conn) {
//         *request_id = new_id();                         // this task's own value
//         log("start");                                   // log() reads *request_id
//         ...
//     }
//
// The main greenlet has its own value, destroyed at thread exit. A local may be used from any
// greenlet of any thread; each greenlet only ever sees its own value.
#pragma once

#include <green/greenlet.hpp>

#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>

namespace green {

namespace detail {

// The current greenlet's slot for `key`: made with make() on first use, destroyed with
// destroy() when the greenlet finishes.
void* local_slot(std::uint64_t key, void* (*make)(const void* context), void (*destroy)(void*) noexcept,
                 const void* context);
void* find_local_slot(std::uint64_t key) noexcept;
void erase_local_slot(std::uint64_t key) noexcept;
std::uint64_t new_local_key() noexcept;

}  // namespace detail

template <class T>
class local {
public:
    // Values start as T().
    local()
        requires std::is_default_constructible_v<T>
        : init_([] { return T(); }) {}
    // Values start as init() (called in the greenlet that first needs one).
    explicit local(std::function<T()> init) : init_(std::move(init)) {}
    local(const local&) = delete;
    local& operator=(const local&) = delete;

    // The current greenlet's value, made on first use.
    T& get() {
        return *static_cast<T*>(detail::local_slot(key_, &make, &destroy, this));
    }
    T& operator*() { return get(); }
    T* operator->() { return &get(); }

    // Whether the current greenlet has made its value yet.
    bool has_value() const noexcept { return detail::find_local_slot(key_) != nullptr; }
    // Destroys the current greenlet's value; the next get() makes a new one.
    void reset() noexcept { detail::erase_local_slot(key_); }

private:
    static void* make(const void* self) { return new T(static_cast<const local*>(self)->init_()); }
    static void destroy(void* p) noexcept { delete static_cast<T*>(p); }

    std::function<T()> init_;
    std::uint64_t key_ = detail::new_local_key();
};

}  // namespace green
