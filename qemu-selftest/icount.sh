#!/usr/bin/env bash
# Executed instructions per element of the crate's kernels on Cortex-M4F, Cortex-M0 and
# RV32IMAC, counted under QEMU (TCG) by the plugin icount/icount-plugin.c:
#
#     qemu-selftest/icount.sh                 # the crate, at opt-level "s" and 3
#     ICOUNT_REFERENCE=1 qemu-selftest/icount.sh   # also CMSIS-DSP and plain C (gcc -Os/-O3)
#     ICOUNT_TARGETS=thumbv6m-none-eabi ICOUNT_OPT_LEVELS=s qemu-selftest/icount.sh
#     ICOUNT_CROSSCHECK=1 ...                 # checks the plugin against -singlestep -d exec
#
# For each target and opt-level it builds src/bin/icount.rs (release profile, opt-level
# overridden, no debug info), runs it on the board of .cargo/config.toml with the plugin watching
# `icount_mark`, and pairs the plugin's counts with the firmware's `measure` lines. Each
# function is measured at two sizes n1 < n2 (16 and 256 elements; batches of d = 16 rows,
# 4 and 16 of them): "per elem" is the slope between the two, "fixed" the intercept (input
# checks, square root, epilogue: what a call costs besides its loop).
# The cost of the marker calls themselves (an empty region) is subtracted.
# Needs: gcc (the plugin), qemu-system-arm and qemu-system-riscv32, the rustup targets,
# llvm-tools; with ICOUNT_REFERENCE=1 also gcc-arm-none-eabi and gcc-riscv64-unknown-elf.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD

targets=(${ICOUNT_TARGETS:-thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf})
levels=(${ICOUNT_OPT_LEVELS:-s 3})
host=$(rustc -vV | sed -n 's/^host: //p')
nm="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-nm"
[ -x "$nm" ] || { echo "missing $nm: rustup component add llvm-tools" >&2; exit 2; }

out=target/icount
mkdir -p "$out"
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$out/libicount.so" icount/icount-plugin.c

qemu_for() {
    case $1 in
    thumbv7em-none-eabihf) echo "qemu-system-arm -machine mps2-an386 -cpu cortex-m4" ;;
    thumbv6m-none-eabi) echo "qemu-system-arm -machine microbit -cpu cortex-m0" ;;
    riscv32imac-unknown-none-elf) echo "qemu-system-riscv32 -machine virt -bios none" ;;
    esac
}

# The C references as a static library for target $1 at gcc's -O$2, in directory $3.
build_reference() {
    local target=$1 level=$2 dir=$3 cc flags cmsis=()
    case $target in
    thumbv7em-none-eabihf)
        cc=arm-none-eabi-gcc
        flags=(-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard) ;;
    thumbv6m-none-eabi)
        cc=arm-none-eabi-gcc
        flags=(-mcpu=cortex-m0 -mthumb -mfloat-abi=soft) ;;
    riscv32imac-unknown-none-elf)
        cc=riscv64-unknown-elf-gcc
        flags=(-march=rv32imac -mabi=ilp32) ;;
    esac
    # Freestanding, with newlib's headers (Debian: libnewlib-dev) for CMSIS's includes.
    flags+=("-O$level" -ffunction-sections -fdata-sections -fno-math-errno -ffreestanding
        -isystem /usr/include/newlib)
    mkdir -p "$dir"
    local objs=("$dir/reference.o")
    if [ "$target" != riscv32imac-unknown-none-elf ]; then
        # CMSIS-DSP from its PyPI source distribution: only the files used. Built as its
        # CMake build does for a Cortex-M without Helium (loop unrolling on), without
        # CMSIS-Core (__GNUC_PYTHON__: the f32 functions use no DSP intrinsics).
        local src
        src=$(cmsis_sources)
        cmsis=(-DICOUNT_CMSIS -D__GNUC_PYTHON__ -DARM_MATH_LOOPUNROLL -I"$src/Include"
            -I"$src/PrivateInclude" -I"$dir")
        : >"$dir/arm_dsp_config.h"
        for f in DistanceFunctions/arm_euclidean_distance_f32 BasicMathFunctions/arm_dot_prod_f32 \
            BasicMathFunctions/arm_sub_f32 StatisticsFunctions/arm_power_f32 \
            BasicMathFunctions/arm_scale_f32; do
            "$cc" "${flags[@]}" "${cmsis[@]}" -c "$src/Source/$f.c" -o "$dir/$(basename "$f").o"
            objs+=("$dir/$(basename "$f").o")
        done
    fi
    "$cc" "${flags[@]}" "${cmsis[@]}" -Wall -Wextra -c icount/reference.c -o "$dir/reference.o"
    rm -f "$dir/libicount_ref.a"
    ar rcs "$dir/libicount_ref.a" "${objs[@]}"
}

# CMSIS-DSP's sources, downloaded once: the PyPI source distribution of its Python wrapper
# (Include/, Source/), pinned by its SHA-256. CMSIS_DSP_SRC may name an unpacked copy.
cmsis_sources() {
    if [ -n "${CMSIS_DSP_SRC:-}" ]; then
        echo "$CMSIS_DSP_SRC"
        return
    fi
    local dir="$here/$out/cmsisdsp"
    local url=https://files.pythonhosted.org/packages/2c/ec/0decbb48985d2eb98739a9bbf4ba090278cc492a7c1a5d5b907e8baf67b5/cmsisdsp-1.10.3.tar.gz
    local sha256=307d32298faa7c58db912851027fce35f886fec7eb1a27c4b309ce1a97f47519
    if [ ! -d "$dir/cmsisdsp-1.10.3/Source" ]; then
        mkdir -p "$dir"
        curl -fsSL -o "$dir/cmsisdsp.tar.gz" "$url" >&2
        echo "$sha256  $dir/cmsisdsp.tar.gz" | sha256sum --check --quiet >&2
        tar xzf "$dir/cmsisdsp.tar.gz" -C "$dir" >&2
    fi
    echo "$dir/cmsisdsp-1.10.3"
}

report() {
    # stdin: "name elements count" lines, two sizes per name; prints the slope per element
    # and the intercept (the fixed cost of a call).
    awk '
        $1 == "empty" { base = $3; next }
        !($1 in n1) { n1[$1] = $2; c1[$1] = $3 - base; order[++k] = $1; next }
        { n2[$1] = $2; c2[$1] = $3 - base }
        END {
            for (i = 1; i <= k; i++) {
                f = order[i]; per = (c2[f] - c1[f]) / (n2[f] - n1[f])
                printf "  %-26s %9.2f %7.0f %7d %7d\n", f, per, c1[f] - n1[f] * per, c1[f], c2[f]
            }
        }'
}

# Fails if a count of the crate is above its limit in icount/limits.txt (instruction counts
# under TCG are exact and repeatable for a given compiler: no noise to allow for).
failed=0
check_limits() {
    local target=$1 level=$2 table=$3
    while read -r t l f max; do
        [ "$t" = "$target" ] && [ "$l" = "$level" ] || continue
        local got
        got=$(awk -v f="$f" '$1 == f { print $2 }' "$table")
        if [ -z "$got" ] || awk -v g="$got" -v m="$max" 'BEGIN { exit !(g > m) }'; then
            echo "  OVER THE LIMIT: $f takes ${got:-?} instructions per element, limit $max"
            failed=1
        fi
    done < <(grep -v '^#' icount/limits.txt)
}

# Once, with ICOUNT_CROSSCHECK=1: the plugin's counts against QEMU's own trace of every
# executed instruction (-singlestep -d exec: one translation block, so one "Trace" line,
# per instruction), counted between the same marker executions.
crosscheck() {
    local target=$1 elf=$2 marker=$3 dir=$4
    # shellcheck disable=SC2046
    timeout 600 $(qemu_for "$target") -nographic -semihosting-config enable=on,target=native \
        -singlestep -d exec,nochain -D "$dir.exec" -kernel "$elf" >/dev/null
    local pc
    pc=$(printf '%08x' $((marker & ~1)))
    awk -v pc="$pc" '/^Trace/ { split($4, f, "/"); n++
        if (f[2] == pc) { if (seen) print "icount", n - last; seen = 1; last = n } }' \
        "$dir.exec" >"$dir.exec-counts"
    if cmp -s "$dir.counts" "$dir.exec-counts"; then
        echo "  cross-check: the plugin's $(wc -l <"$dir.counts") counts equal -singlestep -d exec's"
    else
        echo "  cross-check FAILED: the plugin and -d exec disagree ($dir.counts, $dir.exec-counts)"
        exit 1
    fi
}

for target in "${targets[@]}"; do
    for level in "${levels[@]}"; do
        dir="$out/$target-O$level"
        # Without debug info (llvm-nm needs only the symbols): about a fifth of the build's
        # CPU time; the per-element counts are the same, a fixed cost moves by 1-3.
        envs=(CARGO_PROFILE_RELEASE_OPT_LEVEL=$level CARGO_PROFILE_RELEASE_DEBUG=false)
        if [ -n "${ICOUNT_REFERENCE:-}" ]; then
            gcc_level=$level
            build_reference "$target" "$gcc_level" "$here/$dir/c"
            envs+=(ICOUNT_C_LIB_DIR="$here/$dir/c")
        fi
        env -u CARGO_TARGET_DIR "${envs[@]}" cargo build --quiet --release --no-default-features \
            --bin icount --target "$target" --target-dir "target/icount-O$level${ICOUNT_REFERENCE:+-ref}"
        elf="target/icount-O$level${ICOUNT_REFERENCE:+-ref}/$target/release/icount"
        marker=$("$nm" "$elf" | awk '$3 == "icount_mark" { print "0x" $1 }')
        # shellcheck disable=SC2046
        timeout 300 $(qemu_for "$target") -nographic -semihosting-config enable=on,target=native \
            -plugin "$out/libicount.so,marker=$marker" -kernel "$elf" \
            >"$dir.out" 2>"$dir.counts" || { cat "$dir.out" "$dir.counts" >&2; exit 1; }
        grep -q '^icount done' "$dir.out" || { echo "$target: no result" >&2; exit 1; }
        printf '%s, opt-level %s%s\n' "$target" "$level" "${ICOUNT_REFERENCE:+ (C: gcc -O$level)}"
        printf '  %-26s %9s %7s %7s %7s\n' function 'per elem' fixed 'at n1' 'at n2'
        paste -d ' ' <(awk '$1 == "measure" { print $2, $3 }' "$dir.out") \
            <(awk '$1 == "icount" { if (n++ % 2 == 0) print $2 }' "$dir.counts") | report |
            tee "$dir.table"
        check_limits "$target" "$level" "$dir.table"
        if [ -n "${ICOUNT_CROSSCHECK:-}" ]; then
            crosscheck "$target" "$elf" "$marker" "$dir"
        fi
    done
done
if [ "$failed" != 0 ]; then
    echo "instruction counts over their limits (icount/limits.txt)"
    exit 1
fi
