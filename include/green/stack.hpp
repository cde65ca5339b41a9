// green/stack.hpp — where greenlets keep their stacks.
//
// Every greenlet runs on its own stack, taken when it first starts and given back the moment it
// dies. The default stack comes from a per-thread pool of mmap'd stacks with a guard page below
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
//     green::set_default_stack_size(64 * 1024);            // this thread's new greenlets
//     green::greenlet big(deep_recursion, {.stack_size = 8 << 20, .name = "parser"});
//     auto s = green::stack_statistics();                   // guarded / unguarded / pooled
#pragma once

#include <cstddef>
#include <string>

namespace green {

// Per-greenlet settings, given at construction.
struct greenlet_options {
    // Usable stack bytes, rounded up to whole pages; 0 takes the thread's default.
    std::size_t stack_size = 0;
    // Shown in errors and in the stack overflow message; the greenlet's id when empty.
    // (The braces let {.stack_size = n} omit it without a -Wmissing-field-initializers warning.)
    std::string name{};
};

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
