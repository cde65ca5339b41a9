// The threadpool: worker threads, the job queue between them and the hub, and the way results
// come back (docs/threadpool.md).
//
// Two sides share a pool_core:
// - the hub's thread submits jobs, waits for free slots, finishes jobs (hands their outcome to
//   whoever waits) and starts, stops and joins the workers;
// - the workers take jobs from `queue`, run them and put them on `completed`. The worker that
//   makes `completed` non-empty asks the hub, through run_callback_threadsafe (the eventfd in
//   its poller), to drain it; the others' jobs ride along with that drain.
// Everything the two sides share is guarded by `lock`; the rest belongs to the hub's thread.
//
// Lifetime: workers use the core by plain pointer and call into the hub, so both must outlive
// them. Every path that ends a pool joins its workers first: the threadpool's destructor, and
// hub_closing() when the thread exits (the hub tells its attachments after killing its
// greenlets, before it goes). A drain request still queued in the hub holds the core by
// shared_ptr, and does nothing once the pool is detached from its hub.
#include "hub_impl.hpp"

#include <green/threadpool.hpp>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <list>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace green::detail {

namespace {

// The pool whose worker the current thread is, if any (for apply's inline rule).
thread_local const pool_core* tls_worker_of = nullptr;

// A greenlet waiting in spawn() for a free slot.
struct slot_waiter : list_node {
    waiter w;
    bool granted = false;  // the slot was handed over: it counts in slots_used already
};

}  // namespace

class pool_core final : public hub_attachment, public std::enable_shared_from_this<pool_core> {
public:
    pool_core(hub_impl& h, std::size_t max, std::chrono::nanoseconds idle) : maxsize(max), idle_timeout(idle), hub(&h) {
        all_done.set();
    }

    // ---- fixed at construction
    const std::size_t maxsize;
    const std::chrono::nanoseconds idle_timeout;

    // ---- the hub's thread only (`hub` is also read by workers, under `lock`)
    hub_impl* hub;                 // null once detached: destroyed, or its hub has shut down
    std::size_t slots_used = 0;    // unfinished jobs, plus slots handed to waiting spawners
    std::size_t unfinished = 0;    // jobs submitted and not finished
    list_head slot_waiters;        // slot_waiter, FIFO
    green::event all_done;         // set while unfinished == 0

    // ---- shared with the workers, under `lock`
    struct worker {
        std::thread thread;
        bool exited = false;  // its loop is over; the hub's thread joins it
    };
    std::mutex lock;
    std::condition_variable work_ready;
    std::deque<pool_job*> queue;       // each holds one reference
    std::vector<pool_job*> completed;  // run; each holds one reference
    std::list<worker> workers;         // nodes added and removed by the hub's thread
    std::size_t threads = 0;           // workers whose loop is not over
    std::size_t idle = 0;              // workers waiting for a job
    bool stopping = false;

    void check_thread(const char* what) const;
    void acquire_slot();
    void release_slot() noexcept;
    void enqueue(pool_job& job);
    void drain() noexcept;
    void finish(pool_job* job) noexcept;
    void stop_workers() noexcept;
    void reap() noexcept;
    void close() noexcept;
    void hub_closing() noexcept override;

private:
    void start_worker();
    void worker_main(worker* self) noexcept;
};

// ---- the hub's side ----------------------------------------------------------------------

void pool_core::check_thread(const char* what) const {
    if (!hub)
        throw error(std::string(what) + ": the threadpool's hub has shut down (its thread is exiting or has exited)");
    if (existing_hub() != hub)
        throw error(std::string(what) +
                    ": a threadpool is used from another thread than the one whose hub it belongs to "
                    "(gevent's InvalidThreadUseError); use it only on the thread that made it");
}

// Takes a slot for one job, waiting cooperatively (FIFO) while maxsize are taken.
void pool_core::acquire_slot() {
    if (slots_used < maxsize && slot_waiters.empty()) {
        ++slots_used;
        return;
    }
    std::shared_ptr<pool_core> keep = shared_from_this();  // the pool may be destroyed meanwhile
    slot_waiter sw;
    sw.w.what = "threadpool::spawn (waiting for a free thread)";
    slot_waiters.push_back(sw);
    try {
        block(sw.w);
    } catch (...) {
        sw.unlink();
        if (sw.granted && hub) release_slot();  // handed over, then killed before it could use it
        throw;
    }
    sw.unlink();
    if (!sw.granted || !hub) throw error("threadpool::spawn: the pool was destroyed while waiting for a free thread");
}

// Gives a slot back: to the first waiting spawner, or to the pool.
void pool_core::release_slot() noexcept {
    if (list_node* n = slot_waiters.pop_front()) {
        auto& sw = static_cast<slot_waiter&>(*n);
        sw.granted = true;
        wake_soon(sw.w);
    } else {
        --slots_used;
    }
}

void pool_core::enqueue(pool_job& job) {
    reap();
    job.add_ref();
    {
        std::unique_lock<std::mutex> guard(lock);
        queue.push_back(&job);
        if (queue.size() > idle && threads < maxsize) {
            try {
                start_worker();
            } catch (...) {
                if (threads == 0) {  // nobody would ever run it
                    queue.pop_back();
                    guard.unlock();
                    job.release();
                    release_slot();
                    throw;
                }
            }
        }
    }
    work_ready.notify_one();
    ++unfinished;
    hub->external_refs.fetch_add(1, std::memory_order_relaxed);
    all_done.clear();
}

// Runs in the hub (a thread-safe callback): finishes what the workers have completed.
void pool_core::drain() noexcept {
    if (!hub) return;  // detached: its jobs were dealt with then
    std::vector<pool_job*> done;
    {
        std::lock_guard<std::mutex> guard(lock);
        done.swap(completed);
    }
    for (pool_job* job : done) finish(job);
    reap();
}

void pool_core::finish(pool_job* job) noexcept {
    ref_ptr<pool_job> owned(job);  // adopts the queue's reference
    --unfinished;
    hub->external_refs.fetch_sub(1, std::memory_order_relaxed);
    // As gevent: the slot first, then the error report, then the result.
    release_slot();
    job->finish(*hub);
    if (unfinished == 0) all_done.set();
}

// Asks every worker to stop once the queue is empty and joins them: blocks until every job
// submitted has run. (Since spawn waits while maxsize jobs are unfinished, the queue never
// holds more than the jobs that idle or starting workers are about to take.)
void pool_core::stop_workers() noexcept {
    std::list<worker> all;
    {
        std::lock_guard<std::mutex> guard(lock);
        stopping = true;
        all.splice(all.end(), workers);
    }
    work_ready.notify_all();
    for (worker& w : all)
        if (w.thread.joinable()) w.thread.join();
    std::lock_guard<std::mutex> guard(lock);
    stopping = false;
}

// Joins the workers that left after idling: they are past their loop, so this is quick.
void pool_core::reap() noexcept {
    std::list<worker> gone;
    {
        std::lock_guard<std::mutex> guard(lock);
        for (auto it = workers.begin(); it != workers.end();) {
            auto next = std::next(it);
            if (it->exited) gone.splice(gone.end(), workers, it);
            it = next;
        }
    }
    for (worker& w : gone)
        if (w.thread.joinable()) w.thread.join();
}

// The pool is destroyed (on its hub's thread, the hub still running).
void pool_core::close() noexcept {
    unlink();  // from the hub's attachments
    stop_workers();
    drain();
    // Spawners still waiting for a slot learn that there will be none.
    while (list_node* n = slot_waiters.pop_front()) wake_soon(static_cast<slot_waiter&>(*n).w, wake_reason::cancelled);
    std::lock_guard<std::mutex> guard(lock);
    hub = nullptr;
}

// The thread is exiting and its greenlets are gone: nobody can wait for a result any more, and
// the hub can no longer deliver one. Wait for the jobs (there is no way to interrupt them),
// join the threads, drop the outcomes.
void pool_core::hub_closing() noexcept {
    stop_workers();
    std::vector<pool_job*> done;
    {
        std::lock_guard<std::mutex> guard(lock);
        done.swap(completed);
        hub->external_refs.fetch_sub(unfinished, std::memory_order_relaxed);
        hub = nullptr;
    }
    unfinished = 0;
    slots_used = 0;
    for (pool_job* job : done) job->release();
}

// ---- the workers' side -------------------------------------------------------------------

// Called with `lock` held.
void pool_core::start_worker() {
    worker& w = workers.emplace_back();
    try {
        w.thread = std::thread([this, &w] { worker_main(&w); });
    } catch (...) {
        workers.pop_back();
        throw;
    }
    ++threads;
}

void pool_core::worker_main(worker* self) noexcept {
    tls_worker_of = this;
    tls_pool_worker = true;
    pthread_setname_np(pthread_self(), "green-pool");
    std::unique_lock<std::mutex> guard(lock);
    for (;;) {
        if (queue.empty()) {
            if (stopping) break;
            ++idle;
            const bool got_work = work_ready.wait_for(guard, idle_timeout, [&] { return stopping || !queue.empty(); });
            --idle;
            if (!got_work) break;  // idle for too long
            continue;
        }
        pool_job* job = queue.front();
        queue.pop_front();
        guard.unlock();
        job->run();
        guard.lock();
        completed.push_back(job);
        // The first completion since the last drain wakes the hub; later ones ride along. The
        // hub is alive: it joins this thread before it goes.
        if (completed.size() == 1 && hub) hub->run_callback_threadsafe([core = shared_from_this()] { core->drain(); });
    }
    --threads;
    self->exited = true;
}

// ---- jobs --------------------------------------------------------------------------------

void pool_job::run() noexcept {
    try {
        invoke();
    } catch (...) {
        error_ = std::current_exception();
    }
}

void pool_job::finish(hub& h) noexcept {
    discard_function();
    if (error_) h.handle_error("threadpool job", error_);
    try {
        publish();
    } catch (...) {
        h.handle_error("threadpool job's result", std::current_exception());
    }
    finished_ = true;
    try {
        notify_links();
    } catch (...) {
        h.handle_error("threadpool job's result", std::current_exception());
    }
}

}  // namespace green::detail

namespace green {

using namespace detail;

threadpool::threadpool(std::size_t maxsize, duration idle_timeout) {
    if (maxsize == 0) throw error("threadpool: maxsize must be at least 1");
    check_timeout(idle_timeout, "threadpool");
    hub_impl& h = this_hub();
    if (h.closing) throw error("threadpool: the thread's hub is shutting down");
    core_ = std::make_shared<pool_core>(h, maxsize, idle_timeout.ns);
    h.attachments.push_back(*core_);
}

threadpool::~threadpool() {
    pool_core& c = *core_;
    if (!c.hub) return;  // its hub shut down first and stopped it then
    if (existing_hub() != c.hub) {
        std::fputs(
            "green: fatal: a threadpool was destroyed on another thread than the one whose hub it belongs to; "
            "its workers could outlive that hub\n",
            stderr);
        std::terminate();
    }
    c.close();
}

void threadpool::submit(pool_job& job) {
    std::shared_ptr<pool_core> core = core_;
    core->check_thread("threadpool::spawn");
    core->acquire_slot();
    core->enqueue(job);
}

void threadpool::wait_for(pool_job& job) {
    // The job keeps the loop alive until it is finished, so this never raises loop_exit.
    wait_ready(job, std::nullopt, "threadpool::apply");
}

bool threadpool::on_own_worker() const noexcept { return tls_worker_of == core_.get(); }

bool threadpool::join(std::optional<duration> timeout) {
    std::shared_ptr<pool_core> core = core_;
    core->check_thread("threadpool::join");
    check_timeout(timeout, "threadpool::join");
    const std::int64_t deadline = timeout ? now_ns() + timeout->ns.count() : 0;
    while (core->unfinished > 0) {
        std::optional<duration> left;
        if (timeout) {
            const std::int64_t ns = deadline - now_ns();
            if (ns <= 0) return false;
            left = std::chrono::nanoseconds(ns);
        }
        core->all_done.wait(left);
    }
    return true;
}

void threadpool::kill() {
    std::shared_ptr<pool_core> core = core_;
    core->check_thread("threadpool::kill");
    join();
    core->stop_workers();
}

std::size_t threadpool::size() const {
    std::lock_guard<std::mutex> guard(core_->lock);
    return core_->threads;
}

std::size_t threadpool::maxsize() const noexcept { return core_->maxsize; }

std::size_t threadpool::pending() const {
    core_->check_thread("threadpool::pending");
    return core_->unfinished;
}

green::threadpool& hub::threadpool() {
    auto* h = static_cast<hub_impl*>(this);
    if (existing_hub() != h) throw error("hub::threadpool: this hub belongs to another thread");
    if (!h->default_threadpool) {
        if (h->closing) throw error("hub::threadpool: the thread's hub is shutting down");
        h->default_threadpool = {new green::threadpool(10), [](green::threadpool* p) { delete p; }};
    }
    return *h->default_threadpool;
}

}  // namespace green
