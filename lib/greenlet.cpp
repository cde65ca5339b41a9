// Greenlet semantics: switching with the parent-chain walk, starting, dying, throwing,
// kill-on-last-handle, per-thread main greenlets and thread teardown.
//
// The control flow mirrors greenlet's own (TUserGreenlet.cpp): one loop walks from the target
// past dead greenlets, starting an unstarted one or jumping into an active one; a dying
// greenlet hands its result to each ancestor in turn until one accepts it. Values and
// exceptions travel in the thread's `in_flight` slot, never on a stack. The common switch
// (green/detail/switch.hpp) is inlined into the caller; everything here is the rest.
#include "greenlet_impl.hpp"

#include <cxxabi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#define GREEN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GREEN_LIKELY(x) __builtin_expect(!!(x), 1)

namespace green::detail {

thread_local thread_core* tls_core [[gnu::tls_model("initial-exec")]] = nullptr;

namespace {

std::atomic<std::uint64_t> next_id{1};

thread_state* this_thread() noexcept { return static_cast<thread_state*>(tls_core); }

void release_thread_state(thread_state* ts) noexcept {
    if (ts->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete ts;
}

// ---- thread identity, for the cross-thread error ---------------------------------------

std::string describe_thread(const thread_state* ts) {
    std::ostringstream out;
    out << "thread " << ts->tid;
    char name[32] = {};
    if (!ts->exited.load() && pthread_getname_np(ts->handle, name, sizeof name) == 0 && name[0])
        out << " '" << name << "'";
    return out.str();
}

[[noreturn]] void throw_thread_error(const thread_state* here, const thread_state* owner) {
    if (!owner || owner->exited.load())
        throw error("cannot switch to a different thread (which happens to have exited)");
    throw error("cannot switch to a different thread\n\tCurrent: " + describe_thread(here) +
                "\n\tExpected: " + describe_thread(owner));
}

// An unstarted greenlet belongs to the thread of its parent chain.
thread_state* thread_of(const greenlet_impl* g) noexcept {
    while (g->life() == lifecycle::unstarted && g->parent) g = g->parent;
    return g->owner_state();
}

void check_thread(const thread_state* ts, const greenlet_impl* target) {
    const thread_state* owner = target->owner ? target->owner_state() : thread_of(target);
    if (GREEN_UNLIKELY(owner != ts)) throw_thread_error(ts, owner);
}

std::string display_name(const greenlet_impl* g) {
    return g->name.empty() ? "#" + std::to_string(g->id) : "'" + g->name + "'";
}

// ---- the live list ----------------------------------------------------------------------

void link_live(thread_state* ts, greenlet_impl* g) noexcept {
    g->live_prev = nullptr;
    g->live_next = ts->live_head;
    if (ts->live_head) ts->live_head->live_prev = g;
    ts->live_head = g;
}

void unlink_live(thread_state* ts, greenlet_impl* g) noexcept {
    if (g->live_prev)
        g->live_prev->live_next = g->live_next;
    else if (ts && ts->live_head == g)
        ts->live_head = g->live_next;
    if (g->live_next) g->live_next->live_prev = g->live_prev;
    g->live_prev = g->live_next = nullptr;
}

// ---- tracing ----------------------------------------------------------------------------

void call_tracer(thread_state* ts, greenlet_impl* origin, greenlet_impl* target, bool is_throw) {
    if (ts->in_tracer) return;
    ts->in_tracer = true;
    try {
        add_ref(origin);
        add_ref(target);
        greenlet o = greenlet::adopt(origin);
        greenlet t = greenlet::adopt(target);
        trace_function tracer = ts->tracer;  // the tracer may replace itself
        tracer(is_throw ? "throw" : "switch", o, t);
    } catch (...) {
        ts->in_tracer = false;
        ts->tracer = nullptr;
        ts->tracing = false;
        throw;
    }
    ts->in_tracer = false;
}

// ---- switching --------------------------------------------------------------------------

[[noreturn]] void entry(transfer_t t);

[[noreturn]] void report_canary(const greenlet_impl* g) {
    report_overflow(g->name.empty() ? std::to_string(g->id).c_str() : g->name.c_str());
}

// Leaves `self` for `target` (active, or readied by prepare_start) with the sanitizer
// annotations; returns when some greenlet switches back to `self`.
void switch_stack(thread_state* ts, greenlet_impl* self, greenlet_impl* target) {
    if (GREEN_UNLIKELY(self->check_canary) && !self->stack.canary_intact()) report_canary(self);
    eh_globals* eh = ts->eh;
    __builtin_memcpy(&self->eh, eh, sizeof(eh_globals));
    __builtin_memcpy(eh, &target->eh, sizeof(eh_globals));
    ts->current = target;
    transfer_t t = jump(self->fiber, target->fiber, target->context, static_cast<greenlet_core*>(self), false);
    auto* prev = static_cast<greenlet_core*>(t.data);
    prev->context = t.fctx;
    arrived(self->fiber);
    if (GREEN_UNLIKELY(prev->needs_attention.load(std::memory_order_relaxed))) arrival_slow(ts, prev);
}

// Gives `target` a stack and an entry point; it starts running at the next jump into it.
shared_stack* shared_stack_for(thread_state* ts, std::size_t size) {
    for (auto& s : ts->shared_stacks)
        if (s->region.size == size) return s.get();
    auto s = std::make_unique<shared_stack>();
    s->region = ts->stacks->acquire(size);
    ts->shared_stacks.push_back(std::move(s));
    return ts->shared_stacks.back().get();
}

void prepare_start(thread_state* ts, greenlet_impl* target) {
    if (target->on_shared_stack) {
        // Its first context is made on the shared stack once that is free for it.
        target->shared = shared_stack_for(ts, target->stack_size);
        target->fresh = true;
        target->fiber.set_stack(target->shared->region.base, target->shared->region.size);
    } else {
        target->stack = ts->stacks->acquire(target->stack_size);
        target->check_canary = !target->stack.guarded;
        target->fiber.set_stack(target->stack.base, target->stack.size);
        target->context = make_context(target->stack.top(), target->stack.size, &entry);
    }
    ts->refs.fetch_add(1, std::memory_order_relaxed);
    target->owner = ts;
    target->eh = eh_globals{};
    target->state.store(lifecycle::active, std::memory_order_relaxed);
    link_live(ts, target);
}

// ---- shared stacks ---------------------------------------------------------------------

// Copies live stack bytes. Not instrumented: the frames include ASan's poisoned redzones,
// which are part of what is being moved, not accesses by the program.
#if GREEN_ASAN
__attribute__((no_sanitize_address))
#endif
void copy_stack_bytes(char* to, const char* from, std::size_t n) noexcept {
#if GREEN_ASAN
    for (std::size_t i = 0; i < n; ++i) to[i] = from[i];
#else
    std::memcpy(to, from, n);
#endif
}

// Puts target's frames on its shared stack: the current owner's are copied out first (a dead
// owner's are garbage), then target's copied back in, or its first context made.
void swap_in(greenlet_impl* target) noexcept {
    shared_stack* s = target->shared;
    if (greenlet_impl* owner = s->owner; owner && owner != target && owner->life() == lifecycle::active) {
        const std::size_t used = static_cast<std::size_t>(s->region.top() - static_cast<char*>(owner->context));
        if (used > owner->saved_capacity) {
            char* bigger = static_cast<char*>(std::realloc(owner->saved, used));
            if (!bigger) {
                std::fputs("green: fatal: out of memory saving a shared-stack greenlet\n", stderr);
                std::abort();
            }
            owner->saved = bigger;
            owner->saved_capacity = used;
        }
        copy_stack_bytes(owner->saved, static_cast<const char*>(owner->context), used);
        owner->saved_size = used;
    }
    s->owner = target;
#if GREEN_ASAN
    // The stack held another greenlet's frames: their poisoning is not this one's.
    ASAN_UNPOISON_MEMORY_REGION(s->region.base, s->region.size);
#endif
    if (target->fresh) {
        target->fresh = false;
        target->context = make_context(s->region.top(), s->region.size, &entry);
    } else {
        copy_stack_bytes(static_cast<char*>(target->context), target->saved, target->saved_size);
    }
}

greenlet_impl* switcher_of(thread_state* ts);

// Makes target's stack ready before a switch into it. Returns true when the switch has been
// done here (through the switcher) and the caller has been resumed since.
bool bring_onto_stack(thread_state* ts, greenlet_impl* self, greenlet_impl* target) {
    shared_stack* s = target->shared;
    if (!s || s->owner == target) return false;
    if (s->owner != self) {
        swap_in(target);
        return false;
    }
    // The running greenlet's own frames are on that stack: it cannot overwrite them while it
    // runs there. The switcher, on a stack of its own, does it.
    ts->switcher_target = target;
    switch_stack(ts, self, switcher_of(ts));
    return true;
}

// The switcher: resumed by a greenlet that must leave for a target on the same shared stack,
// it swaps the frames and switches on, leaving the in-flight message untouched.
[[noreturn]] void switcher_entry(transfer_t t) {
    thread_state* ts = this_thread();
    greenlet_impl* self = current_impl(ts);
    auto* prev = static_cast<greenlet_core*>(t.data);
    prev->context = t.fctx;
    arrived(self->fiber);
    if (GREEN_UNLIKELY(prev->needs_attention.load(std::memory_order_relaxed))) arrival_slow(ts, prev);
    for (;;) {
        greenlet_impl* target = ts->switcher_target;
        swap_in(target);
        switch_stack(ts, self, target);
    }
}

greenlet_impl* switcher_of(thread_state* ts) {
    if (!ts->switcher) {
        auto* g = new greenlet_impl;
        g->id = next_id.fetch_add(1, std::memory_order_relaxed);
        g->name = "switcher";
        g->stack = ts->stacks->acquire(round_stack_size(64 * 1024));
        g->fiber.set_stack(g->stack.base, g->stack.size);
        g->context = make_context(g->stack.top(), g->stack.size, &switcher_entry);
        g->state.store(lifecycle::active, std::memory_order_relaxed);
        ts->refs.fetch_add(1, std::memory_order_relaxed);
        g->owner = ts;
        ts->switcher = g;  // not on the live list: nothing of the user's is on its stack
    }
    return ts->switcher;
}

// Frees what a finished shared-stack greenlet kept (its frames, its place on the stack).
void leave_shared_stack(greenlet_impl* g) noexcept {
    if (!g->shared) return;
    if (g->shared->owner == g) g->shared->owner = nullptr;
    std::free(g->saved);
    g->saved = nullptr;
    g->saved_size = g->saved_capacity = 0;
}

[[noreturn]] void throw_no_run() { throw error("run: the greenlet has no run function (set_run gives it one)"); }

// Where a switch to `target` really goes: past dead greenlets to the nearest live ancestor.
greenlet_impl* resolve(greenlet_impl* target) noexcept {
    while (target->life() == lifecycle::dead && target->parent) target = target->parent;
    return target;
}

value take_delivery(thread_state* ts) {
    if (GREEN_UNLIKELY(ts->in_flight.error != nullptr)) raise_in_flight(ts);
    return std::move(ts->in_flight.args);
}

// Hands ts->in_flight to target (walking past the dead, starting the unstarted) and returns
// what is next delivered to the current greenlet.
value deliver(thread_state* ts, greenlet_impl* target) {
    greenlet_impl* self = current_impl(ts);
    target = resolve(target);
    if (target != self) {
        try {
            // Only a main greenlet whose thread has exited is dead with no parent.
            if (GREEN_UNLIKELY(target->life() == lifecycle::dead)) throw_thread_error(ts, target->owner_state());
            if (target->life() == lifecycle::unstarted) {
                check_thread(ts, target);
                if (!target->run) throw_no_run();
            }
            // The tracer goes before the start: if it throws, the switch has not happened and
            // an unstarted target must still be unstarted (no stack taken, not on the live list).
            if (GREEN_UNLIKELY(ts->tracing)) call_tracer(ts, self, target, ts->in_flight.error != nullptr);
            if (target->life() == lifecycle::unstarted) prepare_start(ts, target);
        } catch (...) {
            ts->in_flight = message{};
            throw;
        }
        if (!bring_onto_stack(ts, self, target)) switch_stack(ts, self, target);
    }
    return take_delivery(ts);
}

bool is_greenlet_exit(const std::exception_ptr& e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const greenlet_exit&) {
        return true;
    } catch (...) {
        return false;
    }
}

// ---- starting and dying ----------------------------------------------------------------

// Runs the greenlet's function (or not, if it was started by an exception) and leaves the
// outcome in ts->in_flight: a value for the parent, or an exception to raise there.
void run_to_completion(thread_state* ts, greenlet_impl* self) noexcept {
    message start = std::move(ts->in_flight);
    ts->in_flight = message{};
    message outcome;
    if (start.error) {
        outcome.error = std::move(start.error);  // killed or thrown into before it ran
    } else {
        try {
            outcome.args = self->run->invoke(std::move(start.args));
        } catch (...) {
            outcome.error = std::current_exception();
        }
    }
    // GreenletExit ends a greenlet quietly: its instance is the parent's value.
    if (outcome.error && is_greenlet_exit(outcome.error)) {
        outcome.args = value::of(std::move(outcome.error));
        outcome.error = nullptr;
    }
    try {
        self->run.reset();
    } catch (...) {
    }
    self->destroy_locals();
    ts->in_flight = std::move(outcome);
}

// Finds the ancestor that will receive a dying greenlet's outcome and readies it; an ancestor
// that cannot take it (no run function, another thread) turns the outcome into that error and
// the search goes on upward.
greenlet_impl* exit_target(thread_state* ts, greenlet_impl* self) noexcept {
    for (greenlet_impl* p = self->parent; p; p = p->parent) {
        greenlet_impl* target = resolve(p);
        try {
            if (target->life() == lifecycle::dead) throw_thread_error(ts, target->owner_state());
            check_thread(ts, target);
            if (target->life() == lifecycle::unstarted) {
                if (!target->run) throw_no_run();
                prepare_start(ts, target);
            }
            if (GREEN_UNLIKELY(ts->tracing)) {
                try {
                    call_tracer(ts, self, target, ts->in_flight.error != nullptr);
                } catch (...) {
                    // A dying greenlet has nobody to raise the tracer's error to.
                }
            }
            return target;
        } catch (...) {
            ts->in_flight = message{};
            ts->in_flight.error = std::current_exception();
        }
    }
    return nullptr;
}

[[noreturn]] void die_and_leave(thread_state* ts, greenlet_impl* self) noexcept {
    // Leaving for good is a switch out too: after this the stack is pooled and re-canaried.
    if (GREEN_UNLIKELY(self->check_canary) && !self->stack.canary_intact()) report_canary(self);
    self->state.store(lifecycle::dead, std::memory_order_relaxed);
    self->needs_attention.store(true, std::memory_order_relaxed);
    unlink_live(ts, self);
    greenlet_impl* target = exit_target(ts, self);
    if (!target) {
        std::fputs("green: fatal: ran out of parent greenlets to receive a dying greenlet's result\n", stderr);
        std::abort();
    }
    if (target->shared && target->shared->owner != target) {
        if (target->shared->owner == self) {
            // Dying on the very stack the target needs: the switcher swaps it in.
            ts->switcher_target = target;
            target = switcher_of(ts);
        } else {
            swap_in(target);
        }
    }
    __builtin_memcpy(ts->eh, &target->eh, sizeof(eh_globals));
    ts->current = target;
    jump(self->fiber, target->fiber, target->context, static_cast<greenlet_core*>(self), true);
    std::abort();  // a dead greenlet is never resumed
}

[[noreturn]] void entry(transfer_t t) {
    thread_state* ts = this_thread();
    greenlet_impl* self = current_impl(ts);
    auto* prev = static_cast<greenlet_core*>(t.data);
    prev->context = t.fctx;
    arrived(self->fiber);
    if (GREEN_UNLIKELY(prev->needs_attention.load(std::memory_order_relaxed))) arrival_slow(ts, prev);
    run_to_completion(ts, self);
    die_and_leave(ts, self);
}

// ---- lifetime ---------------------------------------------------------------------------

void destroy(greenlet_impl* g) noexcept;

// Throws greenlet_exit into a suspended greenlet nobody references any more, with the current
// greenlet as its temporary parent so that control comes straight back (greenlet's
// ParentIsCurrentGuard). Returns true if it died.
bool kill_unreferenced(thread_state* ts, greenlet_impl* g, const char* why) noexcept {
    g->refs.store(1, std::memory_order_relaxed);  // resurrected for the duration of the kill
    greenlet_impl* original_parent = g->parent;
    greenlet_impl* current = current_impl(ts);
    add_ref(current);
    g->parent = current;
    message saved = std::move(ts->in_flight);
    ts->in_flight = message{};
    try {
        ts->in_flight.error = std::make_exception_ptr(greenlet_exit(why));
        deliver(ts, g);
    } catch (...) {
        std::string what = "unknown exception";
        try {
            throw;
        } catch (const std::exception& e) {
            what = type_name(typeid(e)) + ": " + e.what();
        } catch (...) {
        }
        std::fprintf(stderr, "green: exception ignored while killing greenlet %s: %s\n", display_name(g).c_str(),
                     what.c_str());
    }
    ts->in_flight = std::move(saved);
    g->parent = original_parent;
    release(current);
    if (g->life() == lifecycle::active) {
        std::fprintf(stderr, "green: greenlet_exit did not kill greenlet %s; it is leaked\n", display_name(g).c_str());
        g->leaked = true;  // keeps the reference; thread exit tries once more
        return false;
    }
    release(g);
    return true;
}

void on_last_reference(greenlet_impl* g) noexcept {
    thread_state* ts = this_thread();
    if (ts && ts->current == g) {
        // Running (or dying) right now: freed or killed once it has left its stack.
        g->needs_attention.store(true, std::memory_order_relaxed);
        return;
    }
    if (g->life() != lifecycle::active) {
        destroy(g);
        return;
    }
    thread_state* owner = g->owner_state();
    if (owner != ts) {
        // Killing runs code on g's stack, which only its own thread may do.
        if (owner->exited.load()) return;  // it refused to die at thread exit: leaked
        std::lock_guard<std::mutex> lock(owner->pending_kills_lock);
        owner->pending_kills.push_back(g);
        owner->has_pending_kills.store(true, std::memory_order_release);
        return;
    }
    kill_unreferenced(ts, g, "Killing the greenlet because all references have vanished.");
}

void destroy(greenlet_impl* g) noexcept {
    while (g) {
        thread_state* ts = this_thread();
        unlink_live(g->owner == ts ? ts : nullptr, g);
        g->destroy_locals();
        leave_shared_stack(g);
        try {
            g->run.reset();
            g->extension.reset();
        } catch (...) {
        }
        if (g->stack && ts && g->owner == ts) ts->stacks->release(g->stack);
        g->fiber.release();
        if (g->owner) release_thread_state(g->owner_state());
        greenlet_impl* parent = g->parent;
        delete g;
        // Walk up instead of recursing: a long chain of dead greenlets must not overflow.
        g = nullptr;
        if (parent && parent->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            if (parent->life() != lifecycle::active && !(ts && ts->current == parent))
                g = parent;
            else
                on_last_reference(parent);
        }
    }
}

// ---- threads ----------------------------------------------------------------------------

void set_thread_stack_bounds(fiber_annotations& fiber) {
    pthread_attr_t attr;
    void* bottom = nullptr;
    std::size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &bottom, &size);
        pthread_attr_destroy(&attr);
    }
    fiber.set_thread_stack(bottom, size);
}

void teardown(thread_state* ts) noexcept;

// Runs the teardown when the thread exits.
struct thread_exit_guard {
    thread_state* ts = nullptr;
    ~thread_exit_guard() {
        if (ts) teardown(ts);
    }
};
thread_local thread_exit_guard exit_guard;

bool query_overflow(const void* fault, char* buf, std::size_t cap) noexcept {
    thread_state* ts = this_thread();
    if (!ts || !ts->current) return false;
    const greenlet_impl* g = current_impl(ts);
    const stack_region& stack = g->shared ? g->shared->region : g->stack;
    if (!stack.in_guard(fault)) return false;
    std::size_t n = 0;
    if (!g->name.empty()) {
        for (char c : g->name)
            if (n + 1 < cap) buf[n++] = c;
    } else {
        char digits[24];
        std::size_t d = 0;
        std::uint64_t id = g->id;
        do {
            digits[d++] = static_cast<char>('0' + id % 10);
            id /= 10;
        } while (id);
        while (d && n + 1 < cap) buf[n++] = digits[--d];
    }
    buf[n] = '\0';
    return true;
}

thread_state* create_state() {
    auto* ts = new thread_state;
    ts->tid = static_cast<pid_t>(syscall(SYS_gettid));
    ts->handle = pthread_self();
    ts->eh = reinterpret_cast<eh_globals*>(abi::__cxa_get_globals());
    ts->stacks.emplace();
    ts->signal_stack = ensure_signal_stack();
    set_overflow_query(&query_overflow);

    auto* main = new greenlet_impl;
    main->is_main = true;
    main->id = next_id.fetch_add(1, std::memory_order_relaxed);
    main->state.store(lifecycle::active, std::memory_order_relaxed);
    ts->refs.fetch_add(1, std::memory_order_relaxed);
    main->owner = ts;
    set_thread_stack_bounds(main->fiber);
    ts->main = main;
    ts->current = main;
    tls_core = ts;
    exit_guard.ts = ts;
    return ts;
}

// The thread is exiting: kill what still runs so every stack unwinds, then retire the main
// greenlet. A greenlet that survives its kill is reported and left alone.
void teardown(thread_state* ts) noexcept {
    if (ts->hub_object) ts->hub_object->shutdown();
    ts->hub_object.reset();
    run_pending_kills(ts);
    if (ts->current == ts->main) {
        for (int round = 0; ts->live_head && round < 1000; ++round) {
            greenlet_impl* g = ts->live_head;
            add_ref(g);
            greenlet_impl* original_parent = g->parent;
            g->parent = ts->main;
            add_ref(ts->main);
            try {
                ts->in_flight = message{};
                ts->in_flight.error =
                    std::make_exception_ptr(greenlet_exit("Killing the greenlet because its thread is exiting."));
                deliver(ts, g);
            } catch (...) {
            }
            g->parent = original_parent;
            release(ts->main);
            if (g->leaked && g->life() != lifecycle::active) {
                g->leaked = false;
                release(g);
            }
            if (g->life() == lifecycle::active) {
                std::fprintf(stderr, "green: greenlet %s survived its thread's exit and is leaked\n",
                             display_name(g).c_str());
                unlink_live(ts, g);
            }
            release(g);
        }
    }
    ts->in_flight = message{};
    ts->tracer = nullptr;
    ts->tracing = false;
    ts->main->destroy_locals();
    if (greenlet_impl* sw = std::exchange(ts->switcher, nullptr)) {
        // Suspended in its loop, with nothing of the user's on its stack: freed as it is.
        sw->state.store(lifecycle::dead, std::memory_order_relaxed);
        ts->stacks->release(sw->stack);
        sw->fiber.release();
        release(sw);
    }
    for (auto& shared : ts->shared_stacks) ts->stacks->release(shared->region);
    ts->shared_stacks.clear();
    ts->main->state.store(lifecycle::dead, std::memory_order_relaxed);
    ts->exited.store(true);
    run_pending_kills(ts);
    release_signal_stack(ts->signal_stack);
    greenlet_impl* main = ts->main;
    ts->objects.drain();  // from here on, objects freed by this thread go straight to free()
    ts->main = nullptr;
    ts->current = nullptr;
    tls_core = nullptr;
    ts->stacks.reset();
    release(main);
    release_thread_state(ts);
}

}  // namespace

thread_state* current_state() {
    thread_state* ts = this_thread();
    return GREEN_UNLIKELY(!ts) ? create_state() : ts;
}


void run_pending_kills(thread_state* ts) {
    if (!ts->has_pending_kills.load(std::memory_order_acquire)) return;
    std::vector<greenlet_impl*> kills;
    {
        std::lock_guard<std::mutex> lock(ts->pending_kills_lock);
        kills.swap(ts->pending_kills);
        ts->has_pending_kills.store(false, std::memory_order_relaxed);
    }
    for (greenlet_impl* g : kills) {
        if (g == ts->current)
            g->needs_attention.store(true, std::memory_order_relaxed);
        else if (g->life() == lifecycle::active)
            kill_unreferenced(ts, g, "Killing the greenlet because all references have vanished.");
        else
            destroy(g);
    }
}

// Sanitizer builds skip the cache: a cached block would hide a use after free from ASan.
// Without a cache yet (the first task of a thread is allocated before the thread's state, which
// its constructor creates) the block still gets its class's full size: it is freed into the cache
// later, and handed out from there to a larger object of the same class. Allocated at the exact
// size, that object overran it into whatever followed it in the heap.
void* allocate_small(std::size_t size) {
    if constexpr (sanitized_build) return ::operator new(size);
    thread_state* ts = this_thread();
    return ts ? ts->objects.allocate(size) : ::operator new(small_cache::block_size(size));
}

void free_small(void* p, std::size_t size) noexcept {
    thread_state* ts = this_thread();
    if (ts && !sanitized_build)
        ts->objects.deallocate(p, size);
    else
        ::operator delete(p);
}

void trim_small_cache() noexcept {
    if (thread_state* ts = this_thread()) ts->objects.trim();
}

}  // namespace green::detail

void green::set_default_stack_policy(stack_policy policy) noexcept {
    detail::current_state()->default_policy = policy;
}

green::stack_policy green::default_stack_policy() noexcept { return detail::current_state()->default_policy; }

namespace green::detail {

void throw_run_arity(std::size_t expected, std::size_t given) {
    throw type_error("run() takes " + std::to_string(expected) + (expected == 1 ? " argument" : " arguments") +
                     " but " + std::to_string(given) + (given == 1 ? " was" : " were") + " given");
}

namespace {
greenlet_impl* new_greenlet(greenlet_core* parent_core, greenlet_options& options) {
    thread_state* ts = current_state();
    run_pending_kills(ts);
    greenlet_impl* parent = parent_core ? impl(parent_core) : current_impl(ts);
    auto* g = new greenlet_impl;
    g->id = next_id.fetch_add(1, std::memory_order_relaxed);
    g->name = std::move(options.name);
    g->stack_size = round_stack_size(options.stack_size ? options.stack_size : thread_default_stack_size());
    g->on_shared_stack = options.policy.value_or(ts->default_policy) == stack_policy::shared;
    add_ref(parent);
    g->parent = parent;
    return g;
}
}  // namespace

greenlet_core* create(std::unique_ptr<run_base> run, greenlet_core* parent, greenlet_options options) {
    greenlet_impl* g = new_greenlet(parent, options);
    g->run.own(std::move(run));
    return g;
}

greenlet_core* create_borrowing(run_base* run, greenlet_core* parent, greenlet_options options) {
    greenlet_impl* g = new_greenlet(parent, options);
    g->run.borrow(run);
    return g;
}

void start_greenlet(greenlet_core* g) {
    thread_state* ts = this_thread();
    greenlet_impl* target = impl(g);
    prepare_start(ts, target);
    if (GREEN_UNLIKELY(ts->tracing)) call_tracer(ts, current_impl(ts), target, false);
    if (!bring_onto_stack(ts, current_impl(ts), target)) switch_stack(ts, current_impl(ts), target);
    take_delivery(ts);
}

void clear_run(greenlet_core* g) noexcept {
    if (impl(g)->life() == lifecycle::unstarted) impl(g)->run.reset();
}

inline namespace GREEN_DETAIL_ABI {

value switch_slow(greenlet_core* target_core, value&& args) {
    thread_state* ts = current_state();
    greenlet_impl* target = impl(target_core);
    check_thread(ts, target);
    ts->in_flight.args = std::move(args);
    return deliver(ts, target);
}

value switch_slow(greenlet_core* target) { return switch_slow(target, value()); }

// Rare outcomes of a switch, dealt with by the greenlet that was switched to: the one we came
// from died (give back its stack; free it if unreferenced) or lost its last handle while it
// was running (kill it now that it is suspended).
void arrival_slow(thread_core* core, greenlet_core* prev_core) {
    thread_state* ts = static_cast<thread_state*>(core);
    greenlet_impl* prev = impl(prev_core);
    prev->needs_attention.store(false, std::memory_order_relaxed);
    if (prev->life() == lifecycle::dead) {
        if (prev->stack) ts->stacks->release(prev->stack);
        if (prev->stack || prev->shared) prev->fiber.release();
        leave_shared_stack(prev);
        if (prev->refs.load(std::memory_order_acquire) == 0) destroy(prev);
    } else if (prev->life() == lifecycle::active && !prev->is_main &&
               prev->refs.load(std::memory_order_acquire) == 0) {
        kill_unreferenced(ts, prev, "Killing the greenlet because all references have vanished.");
    }
}

void check_canary_or_die(greenlet_core* self) {
    greenlet_impl* g = impl(self);
    if (!g->stack.canary_intact()) report_canary(g);
}

void raise_in_flight(thread_core* ts) {
    std::exception_ptr e = std::move(ts->in_flight.error);
    ts->in_flight = message{};
    std::rethrow_exception(std::move(e));
}

}  // namespace GREEN_DETAIL_ABI

value throw_to(greenlet_core* target_core, std::exception_ptr e) {
    thread_state* ts = current_state();
    greenlet_impl* target = impl(target_core);
    check_thread(ts, target);
    if (!e) throw error("throw_: an empty exception_ptr");
    // A GreenletExit thrown at a dead greenlet is "immediately eaten": its instance travels on
    // as a value (greenlet's internal_green_throw).
    if (target->life() == lifecycle::dead && is_greenlet_exit(e))
        ts->in_flight.args = value::of(std::move(e));
    else if (target->life() == lifecycle::unstarted && !target->run)
        throw_no_run();
    else
        ts->in_flight.error = std::move(e);
    return deliver(ts, target);
}

void set_run(greenlet_core* g_core, std::unique_ptr<run_base> run) {
    greenlet_impl* g = impl(g_core);
    if (g->is_main || g->life() != lifecycle::unstarted)
        throw error("run cannot be set after the start of the greenlet");
    g->run.own(std::move(run));
}

void release(greenlet_core* g) noexcept {
    if (g->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) on_last_reference(impl(g));
}

}  // namespace green::detail

namespace green {

using detail::impl;
using detail::lifecycle;

greenlet::greenlet() : impl_(detail::create(nullptr, nullptr, {})) {}

std::optional<greenlet> greenlet::parent() const {
    detail::greenlet_impl* p = impl(impl_)->parent;
    if (!p) return std::nullopt;
    detail::add_ref(p);
    return greenlet::adopt(p);
}

void greenlet::set_parent(const greenlet& parent) {
    detail::greenlet_impl* self = impl(impl_);
    detail::greenlet_impl* p = impl(parent.impl_);
    if (self->is_main) throw error("cannot set the parent of a main greenlet");
    for (detail::greenlet_impl* q = p; q; q = q->parent)
        if (q == self) throw error("cyclic parent chain");
    if (self->life() != lifecycle::unstarted && detail::thread_of(p) != self->owner_state())
        throw error("parent cannot be on a different thread");
    detail::add_ref(p);
    detail::greenlet_impl* old = std::exchange(self->parent, p);
    detail::release(old);
}

bool greenlet::started() const noexcept { return impl(impl_)->life() != lifecycle::unstarted; }
bool greenlet::dead() const noexcept { return impl(impl_)->life() == lifecycle::dead; }
greenlet::operator bool() const noexcept { return impl(impl_)->life() == lifecycle::active; }
bool greenlet::is_main() const noexcept { return impl(impl_)->is_main; }
std::uint64_t greenlet::id() const noexcept { return impl(impl_)->id; }
std::string greenlet::name() const { return impl(impl_)->name; }
void greenlet::set_name(std::string name) { impl(impl_)->name = std::move(name); }

void green_repr(std::ostream& os, const greenlet& g) {
    const detail::greenlet_impl* gi = impl(g.impl_);
    os << "<greenlet #" << gi->id;
    if (!gi->name.empty()) os << " '" << gi->name << "'";
    if (gi->is_main) os << " main";
    switch (gi->life()) {
        case lifecycle::unstarted: os << " unstarted"; break;
        case lifecycle::dead: os << " dead"; break;
        case lifecycle::active: {
            const detail::thread_state* ts = detail::existing_state();
            os << (ts && ts->current == gi ? " running" : " suspended");
            break;
        }
    }
    os << '>';
}

greenlet getcurrent() {
    detail::thread_state* ts = detail::current_state();
    detail::run_pending_kills(ts);
    detail::add_ref(ts->current);
    return greenlet::adopt(ts->current);
}

trace_function settrace(trace_function fn) {
    detail::thread_state* ts = detail::current_state();
    ts->tracing = fn != nullptr;
    return std::exchange(ts->tracer, std::move(fn));
}

trace_function gettrace() { return detail::current_state()->tracer; }

}  // namespace green
