# Codegen checks: does a build still contain the instructions we rely on? (Sourced by
# .ci/steps/20-cross.sh; usable by hand: `source .ci/codegen.sh; codegen_has ...`.)
#
# Disassembly goes to a file first and is searched there: `llvm-objdump | grep -q` under
# `set -o pipefail` fails with SIGPIPE (status 141) when grep exits early.

# The llvm-objdump of rustup's llvm-tools component (it reads ARM, AArch64, RISC-V and wasm).
llvm_objdump() {
    "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-objdump" "$@"
}

# disassemble OBJECT OUT: demangled disassembly of an rlib or ELF into OUT, with the
# relocations (-r), which name the function each call in an unlinked object goes to.
disassemble() {
    llvm_objdump -d -r --demangle --no-show-raw-insn "$1" >"$2"
}

# count_in_functions DISASSEMBLY FUNCTION_ERE INSTRUCTION_ERE: how many instruction lines
# match INSTRUCTION_ERE inside functions whose name matches FUNCTION_ERE (POSIX EREs).
count_in_functions() {
    awk -v fn="$2" -v insn="$3" '
        /^[0-9a-f]+ <.*>:$/ { inside = ($0 ~ fn); next }
        inside && $0 ~ insn { n++ }
        END { print n + 0 }' "$1"
}

# codegen_has DISASSEMBLY FUNCTION_ERE INSTRUCTION_ERE WHAT: fails (and says so) unless at
# least one matching instruction is found in the matching functions.
codegen_has() {
    local n
    n=$(count_in_functions "$1" "$2" "$3")
    if [ "$n" -gt 0 ]; then
        printf '    %s: %d x /%s/ in <%s>\n' "$4" "$n" "$3" "$2"
    else
        printf '    MISSING %s: no /%s/ in functions matching <%s> of %s\n' "$4" "$3" "$2" "$1"
        return 1
    fi
}

# codegen_lacks DISASSEMBLY FUNCTION_ERE INSTRUCTION_ERE WHAT: the opposite of codegen_has.
codegen_lacks() {
    local n
    n=$(count_in_functions "$1" "$2" "$3")
    if [ "$n" -eq 0 ]; then
        printf '    %s: no /%s/ in <%s>\n' "$4" "$3" "$2"
    else
        printf '    UNEXPECTED %s: %d x /%s/ in functions matching <%s> of %s\n' "$4" "$n" "$3" "$2" "$1"
        return 1
    fi
}
