# Shared by the scripts: installs the Debian packages green needs (as root, only what is
# missing) and configures/builds a CMake tree. Source it; don't run it.

# The packages every build needs; scripts add their own.
GREEN_PACKAGES=(g++ make cmake libboost-context-dev doctest-dev valgrind libcurl4-openssl-dev)
# What the benchmarks need (the peers they measure green against, and wrk for HTTP load): for
# the scripts that build bench/
GREEN_BENCH_PACKAGES=(libboost-fiber-dev wrk)

green_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "green: these Debian packages are missing: ${missing[*]}" >&2
        echo "green: run this script as root, or install them first: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "green: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# green_build <build-dir> [cmake options...]
green_build() {
    local dir=$1
    shift
    cmake -S "$GREEN_ROOT" -B "$GREEN_ROOT/$dir" -DGREEN_WERROR=ON "$@" >/dev/null
    cmake --build "$GREEN_ROOT/$dir" -j "$(nproc)"
}

GREEN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
