// Which sanitizer (if any) this translation unit is built with, and the few hooks green needs
// from each. Everything compiles away in a plain build.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define GREEN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GREEN_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GREEN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GREEN_TSAN 1
#endif
#endif

#ifndef GREEN_ASAN
#define GREEN_ASAN 0
#endif
#ifndef GREEN_TSAN
#define GREEN_TSAN 0
#endif

#if GREEN_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if GREEN_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GREEN_VALGRIND 1
#else
#define GREEN_VALGRIND 0
#endif

namespace green::detail {
// Sanitizer builds have much larger frames; their stacks are scaled up to match.
inline constexpr bool sanitized_build = GREEN_ASAN || GREEN_TSAN;
}  // namespace green::detail
