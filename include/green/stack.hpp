// green/stack.hpp — where greenlets keep their stacks.
//
// By default every greenlet runs on its own stack, taken when it first starts and given back the
// moment it dies. The default stack comes from a per-thread pool of mmap'd stacks with a guard page below
// each one: an overflow hits the guard page and the process stops with
//     green: stack overflow in greenlet <name or id>
// instead of silently corrupting memory. Stacks cost address space, not memory: only the pages
// a greenlet touches become resident, so 100,000 parked greenlets cost a few KiB each.
//
// Linux limits a process to vm.max_map_count mappings (65530 by default), and a guard page
// costs one mapping per stack: past about 32,000 live guarded stacks the pool switches to
// unguarded stacks, protected instead by a canary word checked each time the greenlet switches
// out. It says so once on stderr. Python's greenlet has no such limit because it copies stacks;
// green trades that for constant-time switches and stable addresses of stack objects.
//
// The other policy, stack_policy::shared, is Python greenlet's (and libco's): greenlets take
// turns on one shared stack per thread, and a suspended one keeps only the bytes it used, copied
// to the heap — a parked greenlet then costs about what its frames hold, so a million fit in a
// few GiB, at the price of a copy on each switch between greenlets sharing the stack. While a
// shared-stack greenlet is suspended, pointers into its stack are not valid for anyone else, so
// such greenlets cannot wait in the hub (whose waits keep records on the waiting stack: that is
// a green::error); they suit raw greenlets that switch explicitly.
//
//     green::set_default_stack_size(64 * 1024);            // this thread's new greenlets
//     green::greenlet big(deep_recursion, {.stack_size = 8 << 20, .name = "parser"});
//     green::greenlet tiny(generator_body, {.policy = green::stack_policy::shared});
//     auto s = green::stack_statistics();                   // guarded / unguarded / pooled
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace green {

// Per-greenlet settings, given at construction.
enum class stack_policy {
    dedicated,  // its own pooled, guard-paged stack (the default)
    shared,     // the thread's shared stack; its used part copied out while suspended
};

struct greenlet_options {
    // Usable stack bytes, rounded up to whole pages; 0 takes the thread's default.
    std::size_t stack_size = 0;
    // Shown in errors and in the stack overflow message; the greenlet's id when empty.
    // (The braces let {.stack_size = n} omit it without a -Wmissing-field-initializers warning.)
    std::string name{};
    // dedicated or shared; unset takes the thread's default (set_default_stack_policy).
    std::optional<stack_policy> policy{};
};

// The policy new greenlets of the calling thread get unless they ask otherwise (dedicated).
// The hub's tasks always run on dedicated stacks.
void set_default_stack_policy(stack_policy policy) noexcept;
stack_policy default_stack_policy() noexcept;

// The stack size new greenlets of the calling thread get unless they ask otherwise.
// Default: 256 KiB (1 MiB in sanitizer builds, whose frames are larger). Minimum 16 KiB.
void set_default_stack_size(std::size_t bytes);
std::size_t default_stack_size() noexcept;

// A snapshot of the process's greenlet stacks.
struct stack_stats {
    std::size_t guarded_in_use;    // live greenlets on guard-paged stacks
    std::size_t unguarded_in_use;  // live greenlets on canary-checked stacks (map-count fallback)
    std::size_t pooled;            // stacks cached for reuse by all threads
    std::size_t guarded_limit;     // guarded stacks the map-count budget allows (live + pooled)
};
stack_stats stack_statistics() noexcept;

}  // namespace green
