# Sourced by the bench scripts: what they share.

bench_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_build_dir ARG: the CMake build directory ARG names: an absolute
# path, else a directory relative to the current one, else one relative to
# the repository. Prints it; whether it exists is the caller's question.
bench_build_dir() {
    if [[ $1 == /* ]]; then
        echo "$1"
    elif [[ -d $1 ]]; then
        (cd "$1" && pwd)
    else
        echo "$bench_repo/$1"
    fi
}
