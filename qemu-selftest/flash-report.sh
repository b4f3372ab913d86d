#!/usr/bin/env bash
# Flash cost of `ContrastiveLoss::pair_with_grad` for d = 64 on a Cortex-M4F
# (thumbv7em-none-eabihf), at opt-level "s":
#
#     qemu-selftest/flash-report.sh            # prints the report
#     FLASH_BUDGET=2560 qemu-selftest/flash-report.sh   # also fails if any shape is over budget (lto=true)
#
# It builds firmwares that differ only in the call: src/bin/flash-pair-with-grad.rs (from
# `main`, on stack arrays), flash-pair-with-grad-wrapper.rs (behind a wrapper that is not
# inlined) and flash-pair-with-grad-loop.rs (in a loop over three pairs), each against
# src/bin/flash-baseline.rs, with the panic handler that formats nothing, in two profiles:
# lto = true (cortex-m-quickstart's release profile) and lto = false (cargo's default).
# The cost is the difference of their flash images (llvm-size: text + rodata + data); the
# symbols that make it up are listed from llvm-nm (for the `main` shape). The probes also run
# on qemu-system-arm, so the measured code is known to compute the right thing.
# Needs: rustup target thumbv7em-none-eabihf, rustup component llvm-tools; qemu-system-arm
# (optional: without it the run is skipped).
set -euo pipefail
cd "$(dirname "$0")"

target=thumbv7em-none-eabihf
host=$(rustc -vV | sed -n 's/^host: //p')
tools="$(rustc --print sysroot)/lib/rustlib/$host/bin"
size="$tools/llvm-size"
nm="$tools/llvm-nm"
for tool in "$size" "$nm"; do
    [ -x "$tool" ] || { echo "missing $tool: rustup component add llvm-tools" >&2; exit 2; }
done

# Flash bytes of an ELF: everything allocated that is not RAM-only (.bss/.uninit).
flash_bytes() {
    "$size" --format=berkeley "$1" | awk 'NR == 2 { print $1 + $2 }'
}

# Sum of the sizes of the symbols in flash whose name mentions the crate.
crate_symbols() {
    "$nm" --print-size --demangle --radix=d "$1" |
        awk '$3 ~ /^[tTrR]$/ && /contrastive::/ { s += $2 } END { print s + 0 }'
}

# Size of one function symbol (0 if absent).
symbol_size() {
    "$nm" --print-size --demangle --radix=d "$1" |
        awk -v name="$2" '$3 ~ /^[tT]$/ && index($0, name) { s += $2 } END { print s + 0 }'
}

# The call shapes: directly from `main` on stack arrays, behind a wrapper that is not
# inlined, and in a loop over a batch.
shapes=(main wrapper loop)
declare -A probe_bin=([main]=flash-pair-with-grad [wrapper]=flash-pair-with-grad-wrapper
    [loop]=flash-pair-with-grad-loop)
declare -A cost
printf 'pair_with_grad (d = 64) on %s, opt-level = "s", codegen-units = 1\n\n' "$target"
printf '%-10s %-8s %10s %10s %16s %20s\n' profile shape firmware baseline pair_with_grad \
    'contrastive:: syms'
for lto in true false; do
    dir="target/flash-lto-$lto"
    CARGO_PROFILE_RELEASE_LTO=$lto cargo build --quiet --release --no-default-features \
        --bins --target "$target" --target-dir "$dir"
    base="$dir/$target/release/flash-baseline"
    without=$(flash_bytes "$base")
    for shape in "${shapes[@]}"; do
        probe="$dir/$target/release/${probe_bin[$shape]}"
        with=$(flash_bytes "$probe")
        # With LTO, pair_with_grad is inlined into the probe's main: count main's growth too.
        main_growth=$(( $(symbol_size "$probe" __cortex_m_rt_main) - $(symbol_size "$base" __cortex_m_rt_main) ))
        syms=$(crate_symbols "$probe")
        cost[$lto,$shape]=$((with - without))
        printf '%-10s %-8s %10d %10d %16d %20s\n' "lto=$lto" "$shape" "$with" "$without" \
            "${cost[$lto,$shape]}" "$(printf '%d (%+d in main)' "$syms" "$main_growth")"
    done
done
primary_probe="target/flash-lto-true/$target/release/flash-pair-with-grad"

printf '\nLargest symbols of the lto=true probe (bytes, demangled):\n'
"$nm" --print-size --size-sort --reverse-sort --demangle --radix=d "$primary_probe" |
    awk '$3 ~ /^[tTrR]$/ && $2 > 0 {
        bytes = $2 + 0; $1 = $2 = $3 = ""; name = substr($0, 4); sub(/::h[0-9a-f]+$/, "", name)
        printf "%8d  %s\n", bytes, name }' |
    head -25

if command -v qemu-system-arm >/dev/null; then
    for shape in "${shapes[@]}"; do
        printf '\nRunning the %s probe on qemu-system-arm mps2-an386: ' "$shape"
        if timeout 60 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
            -semihosting-config enable=on,target=native \
            -kernel "target/flash-lto-true/$target/release/${probe_bin[$shape]}"; then
            echo "computes the expected loss and gradient"
        else
            echo "FAILED"
            exit 1
        fi
    done
fi

largest=0
for shape in "${shapes[@]}"; do
    printf '\nflash: pair_with_grad called from %s costs %d bytes with lto=true, %d bytes with lto=false' \
        "$shape" "${cost[true,$shape]}" "${cost[false,$shape]}"
    if [ "${cost[true,$shape]}" -gt "$largest" ]; then
        largest=${cost[true,$shape]}
    fi
done
echo
if [ -n "${FLASH_BUDGET:-}" ]; then
    if [ "$largest" -gt "$FLASH_BUDGET" ]; then
        echo "over the budget of $FLASH_BUDGET bytes ($largest with lto=true)"
        exit 1
    fi
    echo "every shape within the budget of $FLASH_BUDGET bytes (at most $largest with lto=true)"
fi
