// Guard-paged, pooled greenlet stacks; the map-count fallback; the stack overflow handler.
#include "stack_pool.hpp"
#include "sys.hpp"

#include "sanitizers.hpp"

#include <green/stack.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <string>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace green::detail {

namespace {

constexpr std::size_t page_size = 4096;
constexpr std::size_t guard_size = 64 * 1024;  // a frame larger than this could still jump it
constexpr std::size_t min_stack_size = 16 * 1024;
constexpr std::uint64_t canary_word = 0x6772'6565'6e21'c0deULL;
constexpr std::size_t canary_words = 8;  // 64 bytes at the bottom of an unguarded stack
constexpr std::size_t max_pooled_per_thread = 4096;

// Mappings other code will need (malloc arenas, thread stacks, dlopen): the guarded-stack
// budget stops short of vm.max_map_count by this much.
constexpr std::size_t map_count_headroom = 1024;

std::atomic<std::size_t> guarded_live{0};    // guarded stacks mapped (in use or pooled)
std::atomic<std::size_t> unguarded_live{0};  // unguarded stacks mapped
std::atomic<std::size_t> pooled_count{0};
std::atomic<std::size_t> guarded_in_use{0};
std::atomic<std::size_t> unguarded_in_use{0};
std::atomic<std::size_t> guarded_budget{0};
std::once_flag budget_once;
std::atomic<bool> fallback_announced{false};

std::atomic<overflow_query> query{nullptr};
struct sigaction previous_segv;
struct sigaction previous_bus;
std::once_flag handler_once;

thread_local std::size_t thread_stack_size = 0;

// Counts the lines of a /proc file with plain system calls: this can run with no file
// descriptor to spare (it then reports nothing, and the budget assumes an empty process).
std::size_t count_lines(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    std::size_t n = 0;
    char buf[4096];
    for (ssize_t got; (got = sys::read(fd, buf, sizeof buf)) > 0;)
        for (ssize_t i = 0; i < got; ++i) n += buf[i] == '\n';
    sys::close(fd);
    return n;
}

std::size_t read_number(const char* path, std::size_t fallback) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fallback;
    char buf[32] = {};
    const ssize_t got = sys::read(fd, buf, sizeof buf - 1);
    sys::close(fd);
    return got > 0 ? std::strtoull(buf, nullptr, 10) : fallback;
}

std::size_t compute_budget() {
    const std::size_t max_maps = read_number("/proc/sys/vm/max_map_count", 65530);
    const std::size_t used = count_lines("/proc/self/maps");
    const std::size_t reserved = used + map_count_headroom;
    return max_maps > reserved ? (max_maps - reserved) / 2 : 0;  // guard + stack: two mappings
}

std::size_t budget() {
    std::call_once(budget_once, [] { guarded_budget.store(compute_budget(), std::memory_order_relaxed); });
    return guarded_budget.load(std::memory_order_relaxed);
}

void announce_fallback() {
    if (!fallback_announced.exchange(true)) {
        std::fprintf(stderr,
                     "green: %zu guard-paged stacks reach the vm.max_map_count budget; further greenlet "
                     "stacks have no guard page (a canary is checked on every switch out)\n",
                     guarded_live.load());
    }
}

void chain_to_previous(int sig, siginfo_t* info, void* context, const struct sigaction& previous) {
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
        // Re-raise with the default action: returning re-executes the faulting instruction.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, nullptr);
    } else {
        previous.sa_handler(sig);
    }
}

void on_fault(int sig, siginfo_t* info, void* context) {
    char name[128];
    overflow_query q = query.load(std::memory_order_relaxed);
    if (q && q(info->si_addr, name, sizeof name)) report_overflow(name);
    chain_to_previous(sig, info, context, sig == SIGBUS ? previous_bus : previous_segv);
}

void install_handler() {
    std::call_once(handler_once, [] {
        struct sigaction action {};
        action.sa_sigaction = on_fault;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &previous_segv);
        sigaction(SIGBUS, &action, &previous_bus);
    });
}

void valgrind_register(stack_region& s) {
#if GREEN_VALGRIND
    if (RUNNING_ON_VALGRIND) s.valgrind_id = VALGRIND_STACK_REGISTER(s.base, s.top());
#else
    (void)s;
#endif
}

void valgrind_deregister(stack_region& s) {
#if GREEN_VALGRIND
    if (s.valgrind_id) VALGRIND_STACK_DEREGISTER(s.valgrind_id);
#endif
    s.valgrind_id = 0;
}

void* map_anonymous(std::size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
    if (p == MAP_FAILED) return nullptr;
    // One huge page would make a parked greenlet cost 2 MiB of memory.
    madvise(p, bytes, MADV_NOHUGEPAGE);
    return p;
}

bool map_guarded(std::size_t size, stack_region& out) {
    if (guarded_live.load(std::memory_order_relaxed) >= budget()) return false;
    char* p = static_cast<char*>(map_anonymous(size + guard_size));
    if (!p) return false;
    if (mprotect(p, guard_size, PROT_NONE) != 0) {
        munmap(p, size + guard_size);
        // The map count is exhausted earlier than /proc predicted: stop trying guarded stacks.
        guarded_budget.store(guarded_live.load(std::memory_order_relaxed), std::memory_order_relaxed);
        return false;
    }
    install_handler();
    guarded_live.fetch_add(1, std::memory_order_relaxed);
    out.base = p + guard_size;
    out.size = size;
    out.guarded = true;
    return true;
}

bool map_unguarded(std::size_t size, stack_region& out) {
    char* p = static_cast<char*>(map_anonymous(size));
    if (!p) return false;
    announce_fallback();
    unguarded_live.fetch_add(1, std::memory_order_relaxed);
    out.base = p;
    out.size = size;
    out.guarded = false;
    return true;
}

void write_canary(stack_region& s) {
    if (s.guarded) return;
    auto* words = reinterpret_cast<std::uint64_t*>(s.base);
    for (std::size_t i = 0; i < canary_words; ++i) words[i] = canary_word;
}

void unmap(stack_region& s) noexcept {
    valgrind_deregister(s);
    if (s.guarded) {
        munmap(s.base - guard_size, s.size + guard_size);
        guarded_live.fetch_sub(1, std::memory_order_relaxed);
    } else {
        munmap(s.base, s.size);
        unguarded_live.fetch_sub(1, std::memory_order_relaxed);
    }
    s = stack_region{};
}

void count_in_use(const stack_region& s, int delta) {
    auto& counter = s.guarded ? guarded_in_use : unguarded_in_use;
    if (delta > 0)
        counter.fetch_add(1, std::memory_order_relaxed);
    else
        counter.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

bool stack_region::in_guard(const void* addr) const noexcept {
    if (!guarded) return false;
    auto* a = static_cast<const char*>(addr);
    return a >= base - guard_size && a < base;
}

bool stack_region::canary_intact() const noexcept {
    if (guarded) return true;
    auto* words = reinterpret_cast<const std::uint64_t*>(base);
    for (std::size_t i = 0; i < canary_words; ++i)
        if (words[i] != canary_word) return false;
    return true;
}

// The map-count budget is read when a thread first gets a pool, not when it first needs a
// guarded stack: that can be at a moment the process has no file descriptor left.
stack_pool::stack_pool() { budget(); }

stack_pool::~stack_pool() {
    for (auto& c : classes_) {
        for (auto* list : {&c.guarded, &c.unguarded}) {
            for (auto& s : *list) {
                unmap(s);
                pooled_count.fetch_sub(1, std::memory_order_relaxed);
            }
        }
    }
}

stack_pool::size_class& stack_pool::find_class(std::size_t size) {
    for (std::size_t i = 0; i < classes_.size(); ++i) {
        if (classes_[i].size == size) {
            last_class_ = i;
            return classes_[i];
        }
    }
    classes_.push_back(size_class{size, {}, {}});
    last_class_ = classes_.size() - 1;
    return classes_.back();
}

stack_region stack_pool::acquire(std::size_t size) {
    size_class& c = class_for(size);
    auto& list = !c.guarded.empty() ? c.guarded : c.unguarded;
    if (!list.empty()) {
        stack_region s = list.back();
        list.pop_back();
        pooled_count.fetch_sub(1, std::memory_order_relaxed);
#if GREEN_ASAN
        // Poison left by frames of the stack's previous greenlet would trip the next one.
        ASAN_UNPOISON_MEMORY_REGION(s.base, s.size);
#endif
        write_canary(s);
        count_in_use(s, +1);
        return s;
    }
    stack_region s;
    if (!map_guarded(size, s) && !map_unguarded(size, s)) throw std::bad_alloc();
    write_canary(s);
    valgrind_register(s);
    count_in_use(s, +1);
    return s;
}

void stack_pool::release(stack_region& stack) noexcept {
    if (!stack) return;
    count_in_use(stack, -1);
    try {
        size_class& c = class_for(stack.size);
        if (c.count() < max_pooled_per_thread) {
            (stack.guarded ? c.guarded : c.unguarded).push_back(stack);
            pooled_count.fetch_add(1, std::memory_order_relaxed);
            stack = stack_region{};
            return;
        }
    } catch (...) {
    }
    unmap(stack);
}

std::size_t round_stack_size(std::size_t bytes) noexcept {
    bytes = std::max(bytes, min_stack_size);
    return (bytes + page_size - 1) / page_size * page_size;
}

std::size_t thread_default_stack_size() noexcept {
    if (thread_stack_size == 0) thread_stack_size = sanitized_build ? 1024 * 1024 : 256 * 1024;
    return thread_stack_size;
}

void set_overflow_query(overflow_query q) noexcept { query.store(q, std::memory_order_relaxed); }

void* ensure_signal_stack() noexcept {
    stack_t current{};
    if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return nullptr;  // someone's
    constexpr std::size_t size = 64 * 1024;
    void* mem = map_anonymous(size);
    if (!mem) return nullptr;
    stack_t ss{};
    ss.ss_sp = mem;
    ss.ss_size = size;
    if (sigaltstack(&ss, nullptr) != 0) {
        munmap(mem, size);
        return nullptr;
    }
    return mem;
}

void release_signal_stack(void* installed) noexcept {
    if (!installed) return;
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    munmap(installed, 64 * 1024);
}

void report_overflow(const char* name) noexcept {
    char line[256];
    std::size_t n = 0;
    auto put = [&](const char* s) {
        while (*s && n + 1 < sizeof line) line[n++] = *s++;
    };
    put("green: stack overflow in greenlet ");
    put(name);
    put("\n");
    // The raw system call: this runs in a signal handler, where nothing else is safe.
    long ignored = syscall(SYS_write, STDERR_FILENO, line, n);
    (void)ignored;
    std::abort();
}

}  // namespace green::detail

namespace green {

void set_default_stack_size(std::size_t bytes) {
    detail::thread_stack_size = detail::round_stack_size(bytes);
}

std::size_t default_stack_size() noexcept { return detail::thread_default_stack_size(); }

stack_stats stack_statistics() noexcept {
    using namespace detail;
    return stack_stats{guarded_in_use.load(std::memory_order_relaxed),
                       unguarded_in_use.load(std::memory_order_relaxed), pooled_count.load(std::memory_order_relaxed),
                       budget()};
}

}  // namespace green
