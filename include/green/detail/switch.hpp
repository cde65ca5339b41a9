// The inline fast path of greenlet::switch_to — not part of the API.
//
// Why inline: Boost.Context's jump ends in an indirect jmp, not a ret, so a raw ping-pong never
// executes a return between switches. Any out-of-line wrapper adds a ret whose target the
// CPU's return-stack predictor always gets wrong: measured here, that alone doubles the cost of
// a round trip (24.6 ns against 11 ns). So the common case — switching to a suspended greenlet
// of this thread with nobody tracing — jumps straight from the caller's code, and everything
// else goes to the library.
//
// The structs below are the leading part of the library's greenlet and thread objects: only
// what that common case reads and writes. Sanitizer builds (whose switches must be annotated)
// always take the library path; the ABI tag on the library entry points makes a build that
// mixes sanitized and plain code fail to link rather than run with unannotated switches.
#pragma once

#include <green/value.hpp>

#include <boost/context/detail/fcontext.hpp>

#include <atomic>
#include <cstdint>
#include <exception>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GREEN_DETAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GREEN_DETAIL_SANITIZED 1
#endif
#endif

#if defined(GREEN_DETAIL_SANITIZED)
#define GREEN_DETAIL_ABI abi_sanitized
#else
#define GREEN_DETAIL_ABI abi_plain
#endif

namespace green::detail {

enum class lifecycle : std::uint8_t { unstarted, active, dead };

// The Itanium C++ ABI's per-thread exception state (__cxa_eh_globals): the stack of caught
// exceptions and the uncaught count. Saved and restored on every switch so that each greenlet
// has its own `throw;`, std::current_exception() and std::uncaught_exceptions().
struct alignas(16) eh_globals {
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;
};

// What one switch hands to the greenlet it resumes: values, or an exception to raise there.
// Empty whenever user code runs: the receiver moves it out at once.
struct message {
    value args;
    std::exception_ptr error;
};

struct thread_core;

struct greenlet_core {
    std::atomic<std::uint32_t> refs{1};
    std::atomic<lifecycle> state{lifecycle::unstarted};
    // Set when the greenlet died, or lost its last handle while running: whoever it switches
    // to next must give back its stack, free it, or kill it.
    std::atomic<bool> needs_attention{false};
    bool check_canary = false;  // on an unguarded (map-count fallback) stack
    bool on_shared_stack = false;  // stack_policy::shared: the library switches it in
    thread_core* owner = nullptr;  // the thread that started it (or whose main it is)
    boost::context::detail::fcontext_t context = nullptr;  // saved registers while suspended
    eh_globals eh;
};

class list_head;

struct thread_core {
    greenlet_core* current = nullptr;
    eh_globals* eh = nullptr;  // this thread's __cxa_get_globals()
    bool tracing = false;
    message in_flight;
    // Set by the thread's hub (layer 2) for its inline yield: the hub greenlet and its run
    // queue; null before the hub exists and once it shuts down.
    greenlet_core* hub = nullptr;
    list_head* run_queue = nullptr;
};

extern thread_local thread_core* tls_core [[gnu::tls_model("initial-exec")]];

inline namespace GREEN_DETAIL_ABI {
value switch_slow(greenlet_core* target);
value switch_slow(greenlet_core* target, value&& args);
void arrival_slow(thread_core* ts, greenlet_core* prev);
void check_canary_or_die(greenlet_core* self);
[[noreturn]] void raise_in_flight(thread_core* ts);
}  // namespace GREEN_DETAIL_ABI

#if !defined(GREEN_DETAIL_SANITIZED)
// Switches when that is the simple case; returns false (having done nothing) otherwise.
[[gnu::always_inline]] inline bool try_fast_switch(thread_core* ts, greenlet_core* target) {
    greenlet_core* self = ts->current;
    if (__builtin_expect(target->owner != ts || target->state.load(std::memory_order_relaxed) != lifecycle::active ||
                             target == self || ts->tracing || target->on_shared_stack,
                         0))
        return false;
    if (__builtin_expect(self->check_canary, 0)) check_canary_or_die(self);
    __builtin_memcpy(&self->eh, ts->eh, sizeof(eh_globals));
    __builtin_memcpy(ts->eh, &target->eh, sizeof(eh_globals));
    ts->current = target;
    boost::context::detail::transfer_t t = boost::context::detail::jump_fcontext(target->context, self);
    auto* prev = static_cast<greenlet_core*>(t.data);
    prev->context = t.fctx;
    if (__builtin_expect(prev->needs_attention.load(std::memory_order_relaxed), 0)) arrival_slow(ts, prev);
    return true;
}

[[gnu::always_inline]] inline value receive(thread_core* ts) {
    if (__builtin_expect(ts->in_flight.error != nullptr, 0)) raise_in_flight(ts);
    return std::move(ts->in_flight.args);
}
#endif

[[gnu::always_inline]] inline value switch_to(greenlet_core* target) {
#if !defined(GREEN_DETAIL_SANITIZED)
    thread_core* ts = tls_core;
    if (__builtin_expect(ts != nullptr, 1) && try_fast_switch(ts, target)) return receive(ts);
#endif
    return switch_slow(target);
}

[[gnu::always_inline]] inline value switch_to(greenlet_core* target, value&& args) {
#if !defined(GREEN_DETAIL_SANITIZED)
    thread_core* ts = tls_core;
    if (__builtin_expect(ts != nullptr, 1)) {
        ts->in_flight.args = std::move(args);
        if (try_fast_switch(ts, target)) return receive(ts);
        args = std::move(ts->in_flight.args);
    }
#endif
    return switch_slow(target, std::move(args));
}

}  // namespace green::detail
