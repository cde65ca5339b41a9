// The greenlet object and the per-thread state behind green::greenlet. Internal to the library:
// the hub (layer 2) uses it for its per-greenlet wait state and the running greenlet, and
// switches only through the public greenlet API.
#pragma once

#include "context.hpp"
#include "small_cache.hpp"
#include "stack_pool.hpp"

#include <green/greenlet.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
#include <vector>

namespace green::detail {

struct thread_state;
struct greenlet_impl;

// A stack that stack_policy::shared greenlets of one thread take turns on. The owner is the one
// whose frames are on it now; the others keep theirs copied out (greenlet_impl::saved).
struct shared_stack {
    stack_region region;
    greenlet_impl* owner = nullptr;
};

// Something the layers above attach to a greenlet or a thread (the hub). Layer 1 calls
// shutdown() while it is still attached (at thread exit), then destroys it.
struct greenlet_extension {
    virtual ~greenlet_extension() = default;
    virtual void shutdown() noexcept {}
};

// A greenlet. The fields the inline switch needs come first (greenlet_core); `owner` holds a
// reference on its thread_state.
struct greenlet_impl : greenlet_core {
    bool is_main = false;
    bool leaked = false;              // survived a kill-on-last-handle: holds its own reference
    greenlet_impl* parent = nullptr;  // a strong reference; null only for main
    fiber_annotations fiber;
    stack_region stack;
    std::size_t stack_size = 0;
    // stack_policy::shared: the stack it runs on (set when it starts), its frames while it is
    // off the stack, and whether its first context is still to be made on the stack.
    shared_stack* shared = nullptr;
    char* saved = nullptr;
    std::size_t saved_size = 0;
    std::size_t saved_capacity = 0;
    bool fresh = false;
    // The run function: owned (made by greenlet's constructor) or borrowed from an object
    // that outlives the greenlet's run (a task is its own greenlet's run function).
    struct run_slot {
        run_base* fn = nullptr;
        bool owned = false;
        run_slot() = default;
        run_slot(const run_slot&) = delete;
        run_slot& operator=(const run_slot&) = delete;
        ~run_slot() { reset(); }
        void reset() noexcept {
            if (owned) delete fn;
            fn = nullptr;
            owned = false;
        }
        void own(std::unique_ptr<run_base> p) noexcept {
            reset();
            fn = p.release();
            owned = fn != nullptr;
        }
        void borrow(run_base* p) noexcept {
            reset();
            fn = p;
        }
        explicit operator bool() const noexcept { return fn != nullptr; }
        run_base* operator->() const noexcept { return fn; }
    } run;
    std::uint64_t id = 0;
    std::string name;
    // The thread's started, unfinished greenlets, killed when the thread exits.
    greenlet_impl* live_prev = nullptr;
    greenlet_impl* live_next = nullptr;
    std::unique_ptr<greenlet_extension> extension;

    // green::local values: made on first use in this greenlet, destroyed when it finishes.
    struct local_value {
        std::uint64_t key;
        void* value;
        void (*destroy)(void*) noexcept;
    };
    std::vector<local_value> locals;
    void destroy_locals() noexcept {
        while (!locals.empty()) {  // a destructor may use (or make) other locals
            local_value v = locals.back();
            locals.pop_back();
            v.destroy(v.value);
        }
    }

    lifecycle life() const noexcept { return state.load(std::memory_order_relaxed); }
    static void* operator new(std::size_t size) { return allocate_small(size); }
    static void operator delete(void* p, std::size_t size) noexcept { free_small(p, size); }
    thread_state* owner_state() const noexcept;
};

// A thread's greenlet state. The part the inline switch uses comes first (thread_core).
struct thread_state : thread_core {
    greenlet_impl* main = nullptr;
    trace_function tracer;
    bool in_tracer = false;

    std::atomic<std::uint32_t> refs{1};  // the thread itself, and each greenlet it started
    std::atomic<bool> exited{false};
    pid_t tid = 0;
    pthread_t handle{};

    // Greenlets whose last handle was dropped on another thread, killed here at the next
    // opportunity (greenlet's "deleteme" list).
    std::mutex pending_kills_lock;
    std::vector<greenlet_impl*> pending_kills;
    std::atomic<bool> has_pending_kills{false};

    greenlet_impl* live_head = nullptr;
    std::optional<stack_pool> stacks;
    small_cache objects;
    // stack_policy::shared: one shared stack per stack size, and the switcher — a context on
    // a stack of its own that swaps frames when the running greenlet's stack must be
    // overwritten (see bring_onto_stack).
    std::vector<std::unique_ptr<shared_stack>> shared_stacks;
    greenlet_impl* switcher = nullptr;
    greenlet_impl* switcher_target = nullptr;
    stack_policy default_policy = stack_policy::dedicated;
    void* signal_stack = nullptr;

    // Layer 2 hangs the thread's hub here; destroyed before the greenlets are torn down.
    std::unique_ptr<greenlet_extension> hub_object;
};

inline greenlet_impl* impl(greenlet_core* g) noexcept { return static_cast<greenlet_impl*>(g); }
inline greenlet_impl* impl(const greenlet& g) noexcept { return impl(g.native()); }
inline thread_state* greenlet_impl::owner_state() const noexcept { return static_cast<thread_state*>(owner); }
inline greenlet_impl* current_impl(const thread_state* ts) noexcept { return impl(ts->current); }

// The calling thread's state, created on first use.
thread_state* current_state();
// The calling thread's state if it has one, without creating it.
inline thread_state* existing_state() noexcept { return static_cast<thread_state*>(tls_core); }

// Kills the greenlets of a thread whose dropped handles were queued from other threads.
void run_pending_kills(thread_state* ts);

// A greenlet whose run function is `run`, which the caller keeps alive until the greenlet has
// started and finished, or until clear_run. Returns one reference.
greenlet_core* create_borrowing(run_base* run, greenlet_core* parent, greenlet_options options);
// Drops an unstarted greenlet's run function (switching to it then reports it has none).
void clear_run(greenlet_core* g) noexcept;
// Starts g, an unstarted greenlet of this thread with a run function and no arguments, from
// the current greenlet: switch_to() without the walk and the checks (the hub's task starts).
void start_greenlet(greenlet_core* g);

}  // namespace green::detail
