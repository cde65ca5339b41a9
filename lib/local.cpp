// Greenlet-local storage: values kept in the current greenlet's object.
#include "greenlet_impl.hpp"

#include <green/local.hpp>

#include <atomic>

namespace green::detail {

namespace {
std::atomic<std::uint64_t> next_key{1};

greenlet_impl* current_greenlet() { return current_impl(current_state()); }
}  // namespace

std::uint64_t new_local_key() noexcept { return next_key.fetch_add(1, std::memory_order_relaxed); }

void* find_local_slot(std::uint64_t key) noexcept {
    thread_state* ts = existing_state();
    if (!ts) return nullptr;
    for (const auto& v : current_impl(ts)->locals)
        if (v.key == key) return v.value;
    return nullptr;
}

void* local_slot(std::uint64_t key, void* (*make)(const void*), void (*destroy)(void*) noexcept, const void* context) {
    greenlet_impl* g = current_greenlet();
    for (const auto& v : g->locals)
        if (v.key == key) return v.value;
    void* value = make(context);
    try {
        g->locals.push_back({key, value, destroy});
    } catch (...) {
        destroy(value);
        throw;
    }
    return value;
}

void erase_local_slot(std::uint64_t key) noexcept {
    thread_state* ts = existing_state();
    if (!ts) return;
    auto& locals = current_impl(ts)->locals;
    for (auto it = locals.begin(); it != locals.end(); ++it) {
        if (it->key == key) {
            greenlet_impl::local_value v = *it;
            locals.erase(it);
            v.destroy(v.value);
            return;
        }
    }
}

}  // namespace green::detail
