// The per-thread small-object cache (lib/small_cache.hpp): it keeps what a burst freed, and
// trim() gives back only what stayed unused for a whole interval, above its warm floor.
#include "small_cache.hpp"

#include <doctest/doctest.h>

#include <vector>

using green::detail::small_cache;

namespace {

std::vector<void*> take(small_cache& cache, std::size_t n, std::size_t size) {
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < n; ++i) blocks.push_back(cache.allocate(size));
    return blocks;
}

void give(small_cache& cache, std::vector<void*>& blocks, std::size_t size) {
    for (void* b : blocks) cache.deallocate(b, size);
    blocks.clear();
}

}  // namespace

TEST_CASE("a burst's blocks stay cached, however many, and are handed out again") {
    small_cache cache;
    auto blocks = take(cache, 10'000, 100);
    give(cache, blocks, 100);
    CHECK(cache.cached() == 10'000);
    blocks = take(cache, 10'000, 120);  // same 64-byte class: served from the cache
    CHECK(cache.cached() == 0);
    give(cache, blocks, 120);
}

TEST_CASE("trim frees what went unused since the last trim, down to the floor") {
    small_cache cache;
    auto blocks = take(cache, 1'000, 100);
    give(cache, blocks, 100);
    CHECK(cache.trim() == 0);  // the first interval starts here: nothing has been idle yet
    CHECK(cache.cached() == 1'000);

    blocks = take(cache, 100, 100);  // the fewest free in this interval: 900
    give(cache, blocks, 100);
    CHECK(cache.trim() == 900 - small_cache::floor);
    CHECK(cache.cached() == 1'000 - (900 - small_cache::floor));

    // A quiet interval: everything above the floor goes.
    CHECK(cache.trim() == 1'000 - (900 - small_cache::floor) - small_cache::floor);
    CHECK(cache.cached() == small_cache::floor);
    CHECK(cache.trim() == 0);
}

TEST_CASE("a class in use every interval keeps its blocks") {
    small_cache cache;
    auto blocks = take(cache, 5'000, 200);
    give(cache, blocks, 200);
    cache.trim();
    for (int interval = 0; interval < 3; ++interval) {
        blocks = take(cache, 5'000, 200);  // the whole cache is needed again each time
        give(cache, blocks, 200);
        CHECK(cache.trim() == 0);
        CHECK(cache.cached() == 5'000);
    }
}

TEST_CASE("blocks above 1 KiB are not cached") {
    small_cache cache;
    auto blocks = take(cache, 10, 4'096);
    give(cache, blocks, 4'096);
    CHECK(cache.cached() == 0);
}
