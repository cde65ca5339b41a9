// The hub object behind green::hub: one per thread, owned by the thread's greenlet state.
#pragma once

#include "greenlet_impl.hpp"
#include "loop.hpp"

#include <green/hub.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace green::detail {

// The waiters of one fd (one reader, one writer: a second one is an error, as in gevent).
struct fd_watch {
    waiter* reader = nullptr;
    waiter* writer = nullptr;
    bool registered = false;
    // hub_impl::polls + 1 when a read returned short (the buffer is probably empty) and the hub
    // has not polled since; see note_drained().
    std::uint64_t drained_before_poll = 0;
};

// Something tied to a hub that must stop before the hub goes away, e.g. a threadpool whose
// worker threads post completions to the hub: registered in hub_impl::attachments, and told
// (once, on the hub's thread) when the thread exits, after its greenlets have been killed.
// The hub unlinks it first; hub_closing() must leave nothing (a thread, a pending call) that
// could touch the hub afterwards. An attachment destroyed earlier simply unlinks itself.
struct hub_attachment : list_node {
    virtual void hub_closing() noexcept = 0;

protected:
    ~hub_attachment() = default;
};

class hub_impl final : public hub, public greenlet_extension {
public:
    explicit hub_impl(thread_state* ts);
    ~hub_impl() override;

    thread_state* const ts;
    green::greenlet hub_greenlet;
    greenlet_core* const hub_core;

    // ---- the run queue: each pass runs what was queued before it began
    list_head pending;
    // ---- timers
    timer_heap timers;
    std::uint64_t timer_sequence = 0;
    std::int64_t cached_now = 0;
    // ---- I/O
    poller io;
    std::vector<std::unique_ptr<fd_watch>> fds;
    std::size_t io_waiters = 0;
    std::uint64_t polls = 0;  // epoll waits so far
    list_head guessed;        // readers that waited on a guess; woken after the next poll
    // ---- other threads
    std::mutex threadsafe_lock;
    std::vector<std::function<void()>> threadsafe_queue;
    std::atomic<bool> wake_requested{false};
    std::atomic<std::size_t> external_refs{0};  // e.g. threadpool jobs whose result is awaited
    list_head attachments;  // hub_attachment: told when the thread exits
    // hub::threadpool(), made on first use (its deleter lives in threadpool.cpp).
    std::unique_ptr<green::threadpool, void (*)(green::threadpool*)> default_threadpool{nullptr, nullptr};

    list_head blocked;     // waiters, for loop_exit's message
    list_head idle_waiters;  // hub::join(): the loop has nothing left at all
    list_head idlers;        // idle(): nothing to do right now
    list_head live_tasks;  // started or scheduled tasks, killed at thread exit
    std::uint64_t task_counter = 0;
    std::uint64_t finished_tasks = 0;
    error_handler on_error;
    std::int64_t switch_interval_ns = 1'000'000;
    std::int64_t last_poll = 0;
    std::size_t callbacks_since_poll = 0;
    // The small-object cache gives back what a burst left unused, at most this often.
    static constexpr std::int64_t cache_trim_interval_ns = 1'000'000'000;
    std::int64_t last_trim = 0;
    bool closing = false;  // the thread is exiting: nothing may wait any more

    void loop();
    void arm(timer_node& t, std::int64_t delay_ns);
    fd_watch& watch(int fd);
    void forget_fd(int fd, int error) noexcept;

private:
    void run_pass();
    void poll_once(std::int64_t timeout_ns);
    void dispatch_io(int count);
    void run_timers();
    void run_threadsafe_callbacks();
    void close_attachments() noexcept;
    bool alive() const noexcept;
    std::int64_t next_timeout() noexcept;
    void raise_loop_exit();

public:
    void shutdown() noexcept override;

private:
    bool shut_down_ = false;
};

// This thread's hub, created on first use.
hub_impl& this_hub();
// This thread's hub if it has one.
hub_impl* existing_hub() noexcept;

// Describes the running exception for error reports: "<type>: <what>".
std::string describe_exception(const std::exception_ptr& e);

// ---- I/O (lib/socket.cpp, lib/monkey.cpp)

// Waits in the hub until fd is readable (writable): true, or false at the timeout. Raises
// std::system_error(EBADF) when the fd is closed meanwhile, concurrent_use_error when another
// greenlet already waits for the same direction. A regular file is always ready.
// With `guess`, the caller has not seen EAGAIN but probably_drained() said it would: the wait
// ends at the next poll even without an event, so a wrong guess costs a poll, never a hang.
bool wait_fd(int fd, bool write, std::optional<duration> timeout, bool guess = false);
// A read from stream fd just returned less than asked for: its buffer is probably empty now.
// Until the hub polls again, any new data shows up as an edge in that poll, so the next read
// may wait for it at once instead of first making a system call that fails with EAGAIN.
void note_drained(int fd) noexcept;
// True when note_drained(fd) was called since the hub last polled.
bool probably_drained(int fd) noexcept;
// Forgets what monkey patching knows about fd (it was closed; the number may be reused).
void forget_fd_info(int fd) noexcept;
// Runs fn on another thread (the hub's threadpool) while the calling greenlet waits in the
// hub; fn must own what it uses (it may outlive a caller that is killed meanwhile).
void offload(std::function<void()> fn);
// True on a threadpool worker thread, where monkey-patched calls always behave as libc's.
extern thread_local bool tls_pool_worker [[gnu::tls_model("initial-exec")]];

}  // namespace green::detail
