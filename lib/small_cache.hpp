// A per-thread cache of small memory blocks for the objects created and destroyed once per
// greenlet or task (greenlet_impl, task states): a pop or push on a free list instead of
// malloc/free, which cost a seventh of a spawn + join. Blocks are grouped in 64-byte classes up
// to 1 KiB.
//
// The cache keeps what a burst freed, so the next burst does not fault it back in: freed to
// malloc, 100k tasks' blocks made glibc trim the heap, and on this VM the page faults that
// brought it back cost 8x the spawns themselves. What was not needed for a whole interval goes
// back: trim() frees the blocks of each class that stayed unused since the previous trim (the
// low-water mark of its free list), above a warm floor. Mechanism only: the hub calls trim()
// about once a second; a thread without a hub keeps its peak until it exits.
#pragma once

#include <cstddef>
#include <new>

namespace green::detail {

class small_cache {
public:
    static constexpr std::size_t granule = 64;
    static constexpr std::size_t classes = 16;  // up to 1 KiB
    static constexpr std::size_t floor = 256;  // free blocks per class that trim() keeps

    small_cache() = default;
    small_cache(const small_cache&) = delete;
    small_cache& operator=(const small_cache&) = delete;
    ~small_cache() { drain(); }

    void* allocate(std::size_t size) {
        const std::size_t c = class_of(size);
        if (c < classes && heads_[c]) {
            block* b = heads_[c];
            heads_[c] = b->next;
            if (--counts_[c] < low_[c]) low_[c] = counts_[c];
            return b;
        }
        return ::operator new(block_size(size));
    }

    // What a block for `size` must hold to be cached once freed: deallocate() files every block
    // by the class of its size, and allocate() hands it to any size of that class.
    static std::size_t block_size(std::size_t size) noexcept {
        const std::size_t c = class_of(size);
        return c < classes ? (c + 1) * granule : size;
    }

    void deallocate(void* p, std::size_t size) noexcept {
        const std::size_t c = class_of(size);
        if (c < classes && open_) {
            auto* b = static_cast<block*>(p);
            b->next = heads_[c];
            heads_[c] = b;
            ++counts_[c];
            return;
        }
        ::operator delete(p);
    }

    // Frees the blocks that no allocation needed since the last trim, keeping `floor` per class.
    // Returns how many were freed.
    std::size_t trim() noexcept {
        std::size_t freed = 0;
        for (std::size_t c = 0; c < classes; ++c) {
            std::size_t idle = low_[c] > floor ? low_[c] - floor : 0;
            for (; idle > 0; --idle, ++freed) {
                block* b = heads_[c];
                heads_[c] = b->next;
                ::operator delete(b);
                --counts_[c];
            }
            low_[c] = counts_[c];
        }
        return freed;
    }

    std::size_t cached() const noexcept {
        std::size_t n = 0;
        for (std::size_t c = 0; c < classes; ++c) n += counts_[c];
        return n;
    }

    // Frees what is cached and stops caching (the thread is going away).
    void drain() noexcept {
        open_ = false;
        for (std::size_t c = 0; c < classes; ++c) {
            while (block* b = heads_[c]) {
                heads_[c] = b->next;
                ::operator delete(b);
            }
            counts_[c] = 0;
            low_[c] = 0;
        }
    }

private:
    struct block {
        block* next;
    };
    static std::size_t class_of(std::size_t size) noexcept { return (size - 1) / granule; }
    block* heads_[classes] = {};
    std::size_t counts_[classes] = {};
    std::size_t low_[classes] = {};  // the fewest free blocks since the last trim
    bool open_ = true;
};

// This thread's cache, or nullptr when the thread has no greenlet state (yet, or any more):
// then allocate_small/free_small fall back to operator new/delete. A block allocated so may
// still be freed into the cache (the first task of a thread is allocated before its state
// exists), so the fallback allocates the class's full block size too.
void* allocate_small(std::size_t size);
void free_small(void* p, std::size_t size) noexcept;
void trim_small_cache() noexcept;

}  // namespace green::detail
