// doctest's crash handler is off: it swaps the process's SIGSEGV/SIGBUS/SIGABRT handlers and the
// alternate signal stack at every test case and puts the old ones back afterwards, which would
// uninstall the stack overflow handler green installs once per process, and it prints into the
// output that stack_test's death tests check. ctest still reports a crashed test.
//
// GREEN_TEST_STACK_POLICY=shared runs a suite with shared stacks as the main thread's default
// (tests/CMakeLists.txt registers the layer-1 suites a second time that way).
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <green/stack.hpp>

#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
    if (const char* policy = std::getenv("GREEN_TEST_STACK_POLICY"); policy && std::strcmp(policy, "shared") == 0)
        green::set_default_stack_policy(green::stack_policy::shared);
    return doctest::Context(argc, argv).run();
}
