// doctest's crash handler is off: it swaps the process's SIGSEGV/SIGBUS/SIGABRT handlers and the
// alternate signal stack at every test case and puts the old ones back afterwards, which would
// uninstall the stack overflow handler green installs once per process, and it prints into the
// output that stack_test's death tests check. ctest still reports a crashed test.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
