#!/bin/sh
# The whole test suite from a clean clone: installs missing Debian packages,
# builds, runs `make check` (unit tests, simulation, integration tests with
# real daemons and mounts), checks the man pages, then runs the unit suites
# again under valgrind and in an ASan+UBSan build, and the fuzzers briefly.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh"
cd "$top/build"
make -s check-man
make -j2 check || { cat test-suite.log; exit 1; }
"$top/scripts/check-extra.sh"
