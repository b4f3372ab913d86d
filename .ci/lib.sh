# Shared helpers for .ci/run and its steps (sourced, not run).
CI_START=${CI_START:-$(date +%s)}
CI_PASSED=${CI_PASSED:-0}
CI_FAILED=${CI_FAILED:-0}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export DEBIAN_FRONTEND=noninteractive

CI_TIMES_FILE=${CI_TIMES_FILE:-$(mktemp)}

# ci_cpu: sets CI_CPU to the CPU time (user + system, whole seconds) of every child this
# shell has waited for so far. `times` must run in this shell (a command substitution is a
# fresh process with no children), so it writes to a file.
ci_cpu() {
    times >"$CI_TIMES_FILE"
    CI_CPU=$(awk 'NR == 2 {
        s = 0
        for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] }
        printf "%d", s
    }' "$CI_TIMES_FILE")
}

banner() {
    printf '\n=== [%ss] %s\n' "$(( $(date +%s) - CI_START ))" "$*"
}

# step "title" cmd args...: runs one check, counts it, and stops CI on failure. Prints the
# step's wall time and CPU time (a step whose CPU time is near twice its wall time kept
# both cores busy; one near its wall time left a core idle).
step() {
    local title=$1 start cpu
    shift
    start=$(date +%s)
    ci_cpu
    cpu=$CI_CPU
    printf -- '--- [%ss] %s\n' "$(( start - CI_START ))" "$title"
    if "$@"; then
        CI_PASSED=$((CI_PASSED + 1))
        ci_cpu
        printf -- '    (%s s, %s s of CPU)\n' "$(( $(date +%s) - start ))" "$(( CI_CPU - cpu ))"
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

# Background jobs: long work of later tiers (the Miri passes, the fuzz and bench builds)
# started early at the lowest CPU priority, so that it fills the cores the emulated test
# runs leave idle without slowing the steps in front of it. `bg_start name command...`
# starts a job (a command or a shell function) with its output in a log of its own;
# `bg_wait name` (used as a step) waits for it, prints its log without the lines of
# crates compiling, and fails if the job failed.
declare -A BG_PID BG_LOG
bg_start() {
    local name=$1 log
    shift
    log=$(mktemp)
    (
        renice -n 19 -p "$BASHPID" >/dev/null
        start=$(date +%s)
        rc=0
        "$@" || rc=$?
        printf '%s: %s s, exit status %s\n' "$name" "$(($(date +%s) - start))" "$rc"
        exit "$rc"
    ) >"$log" 2>&1 &
    BG_PID[$name]=$!
    BG_LOG[$name]=$log
}
bg_wait() {
    local name=$1 rc=0
    if [ -z "${BG_PID[$name]:-}" ]; then
        printf 'background job "%s" was never started\n' "$name"
        return 1
    fi
    wait "${BG_PID[$name]}" || rc=$?
    grep -v '^ *\(Compiling\|Checking\) ' "${BG_LOG[$name]}"
    rm -f "${BG_LOG[$name]}"
    return "$rc"
}

# On exit (a failed step ends CI at once), stop whatever background job still runs, with
# its children, so that no Miri pass or build outlives the run.
bg_kill_tree() {
    local child
    for child in $(pgrep -P "$1"); do
        bg_kill_tree "$child"
    done
    kill "$1" 2>/dev/null || true
}
bg_cleanup() {
    local pid
    for pid in "${BG_PID[@]}"; do
        bg_kill_tree "$pid"
    done
}
trap bg_cleanup EXIT

summary() {
    ci_cpu
    printf '\nci (%ss, %s s of CPU): %d passed, %d failed\n' "$(( $(date +%s) - CI_START ))" \
        "$CI_CPU" "$CI_PASSED" "$CI_FAILED"
}
