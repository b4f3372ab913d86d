# Shared helpers for .ci/run and its steps (sourced, not run).
CI_START=${CI_START:-$(date +%s)}
CI_PASSED=${CI_PASSED:-0}
CI_FAILED=${CI_FAILED:-0}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export DEBIAN_FRONTEND=noninteractive

banner() {
    printf '\n=== [%ss] %s\n' "$(( $(date +%s) - CI_START ))" "$*"
}

# step "title" cmd args...: runs one check, counts it, and stops CI on failure.
step() {
    local title=$1
    shift
    printf -- '--- [%ss] %s\n' "$(( $(date +%s) - CI_START ))" "$title"
    if "$@"; then
        CI_PASSED=$((CI_PASSED + 1))
    else
        CI_FAILED=$((CI_FAILED + 1))
        printf 'FAILED: %s\n' "$title"
        summary
        exit 1
    fi
}

# apt_install pkg...: installs Debian packages once per machine (apt-get update first).
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "${CI_APT_UPDATED:-}" ]; then
        apt-get update -qq
        CI_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

summary() {
    printf '\nci (%ss): %d passed, %d failed\n' "$(( $(date +%s) - CI_START ))" "$CI_PASSED" "$CI_FAILED"
}
