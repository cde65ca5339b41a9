// A per-thread cache of small memory blocks for the objects created and destroyed once per
// greenlet or task (greenlet_impl, task states): a pop or push on a free list instead of
// malloc/free, which cost a seventh of a spawn + join. Blocks are grouped in 64-byte classes up
// to 1 KiB; each class keeps at most `cap` free blocks. Mechanism only.
#pragma once

#include <cstddef>
#include <new>

namespace green::detail {

class small_cache {
public:
    static constexpr std::size_t granule = 64;
    static constexpr std::size_t classes = 16;  // up to 1 KiB
    static constexpr std::size_t cap = 256;

    small_cache() = default;
    small_cache(const small_cache&) = delete;
    small_cache& operator=(const small_cache&) = delete;
    ~small_cache() { drain(); }

    void* allocate(std::size_t size) {
        const std::size_t c = class_of(size);
        if (c < classes && heads_[c]) {
            block* b = heads_[c];
            heads_[c] = b->next;
            --counts_[c];
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
        if (c < classes && counts_[c] < cap && open_) {
            auto* b = static_cast<block*>(p);
            b->next = heads_[c];
            heads_[c] = b;
            ++counts_[c];
            return;
        }
        ::operator delete(p);
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
        }
    }

private:
    struct block {
        block* next;
    };
    static std::size_t class_of(std::size_t size) noexcept { return (size - 1) / granule; }
    block* heads_[classes] = {};
    std::size_t counts_[classes] = {};
    bool open_ = true;
};

// This thread's cache, or nullptr when the thread has no greenlet state (yet, or any more):
// then allocate_small/free_small fall back to operator new/delete. A block allocated so may
// still be freed into the cache (the first task of a thread is allocated before its state
// exists), so the fallback allocates the class's full block size too.
void* allocate_small(std::size_t size);
void free_small(void* p, std::size_t size) noexcept;

}  // namespace green::detail
