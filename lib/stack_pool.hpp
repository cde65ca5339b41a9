// Stack allocation for greenlets: guard-paged mmap'd stacks, pooled per thread, with a
// canary-checked fallback past the vm.max_map_count budget, and the SIGSEGV handler that turns
// a guard-page hit into "green: stack overflow in greenlet <name>".
//
// Mechanism only: it knows nothing about greenlets beyond the query it is given to name the
// running one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace green::detail {

// One stack: [guard pages][base ... top), growing down from top.
struct stack_region {
    char* base = nullptr;  // lowest usable byte
    std::size_t size = 0;  // usable bytes
    bool guarded = false;
    unsigned valgrind_id = 0;

    char* top() const noexcept { return base + size; }
    explicit operator bool() const noexcept { return base != nullptr; }
    // True when addr lies in the guard area just below base.
    bool in_guard(const void* addr) const noexcept;
    // False when an unguarded stack has overflowed into its bottom canary.
    bool canary_intact() const noexcept;
};

// A thread's cache of free stacks. Stacks are released on the thread that ran them, so the pool
// needs no locking; its destructor unmaps what it still holds.
class stack_pool {
public:
    stack_pool();
    stack_pool(const stack_pool&) = delete;
    stack_pool& operator=(const stack_pool&) = delete;
    ~stack_pool();

    // A stack of at least `size` usable bytes (already rounded by round_stack_size).
    stack_region acquire(std::size_t size);
    // Gives a stack back; it may be reused by the next acquire of the same size.
    void release(stack_region& stack) noexcept;

private:
    // Free stacks of one size; guarded ones are preferred, so they are kept apart (a search
    // through thousands of unguarded stacks on every spawn was measured at 4x the spawn cost).
    struct size_class {
        std::size_t size;
        std::vector<stack_region> guarded;
        std::vector<stack_region> unguarded;
        std::size_t count() const noexcept { return guarded.size() + unguarded.size(); }
    };
    // Inline, with the search out of line: the search's register saves made the common case
    // (the thread's one stack size) cost 33 instructions per call, twice per spawn + join.
    size_class& class_for(std::size_t size) {
        if (last_class_ < classes_.size() && classes_[last_class_].size == size) [[likely]]
            return classes_[last_class_];
        return find_class(size);
    }
    size_class& find_class(std::size_t size);
    std::vector<size_class> classes_;
    std::size_t last_class_ = 0;  // nearly every greenlet of a thread has the same stack size
};

// Rounds a requested size up to whole pages, at least the minimum stack size.
std::size_t round_stack_size(std::size_t bytes) noexcept;
// The calling thread's default stack size (set_default_stack_size).
std::size_t thread_default_stack_size() noexcept;

// Answers, from inside the SIGSEGV handler, whether `fault` hit the guard of the running
// greenlet's stack; if so it writes the greenlet's name or id into buf (NUL-terminated).
// Must be async-signal-safe.
using overflow_query = bool (*)(const void* fault, char* buf, std::size_t cap) noexcept;
void set_overflow_query(overflow_query query) noexcept;

// Gives the calling thread an alternate signal stack, so the overflow handler can run when the
// faulting stack has no room left. Returns what to pass to release_signal_stack at thread exit.
void* ensure_signal_stack() noexcept;
void release_signal_stack(void* installed) noexcept;

// Writes "green: stack overflow in greenlet <name>" to stderr and aborts. Async-signal-safe.
[[noreturn]] void report_overflow(const char* name) noexcept;

}  // namespace green::detail
