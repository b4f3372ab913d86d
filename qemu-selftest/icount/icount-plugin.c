/*
 * Counts executed guest instructions between calls of a marker function, for
 * qemu-selftest/icount.sh. A QEMU TCG plugin (plugin API version 1, QEMU 7.2):
 *
 *     qemu-system-arm ... -plugin ./libicount.so,marker=0x1234 -kernel firmware
 *
 * Every translated instruction gets an inline add of 1 to one 64-bit counter (no
 * callback, so counting costs little). The first instruction of the marker function (its
 * address comes from the firmware's symbol table) also gets a callback that prints the
 * number of instructions executed since the previous marker call:
 *
 *     icount <n>
 *
 * one line per call after the first, on stderr. The firmware calls the marker right
 * before and right after each measured call, so every second line is a measurement and the
 * ones in between are the firmware's own bookkeeping. Each line includes the constant
 * cost of a marker call and return; the firmware measures an empty region to subtract it.
 * One vCPU only (the counter is not per vCPU): the boards used are single-core.
 *
 * Debian's QEMU 7.2 ships the plugin loader but not qemu-plugin.h, so the few
 * declarations used are written out below; they are QEMU's stable plugin C ABI.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;

typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;
static uint64_t at_previous_mark;
static bool marked;
static uint64_t marker;

static void on_marker(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    (void)userdata;
    if (marked) {
        fprintf(stderr, "icount %" PRIu64 "\n", executed - at_previous_mark);
        fflush(stderr);
    }
    marked = true;
    /* Read after the print: the callback runs outside the guest, so the next region starts
     * at the marker's first instruction however long the print takes. */
    at_previous_mark = executed;
}

static void on_translation(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        if (qemu_plugin_insn_vaddr(insn) == marker) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info, int argc,
                                                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "marker=", 7) == 0) {
            /* Thumb function symbols have bit 0 set; instruction addresses do not. */
            marker = strtoull(argv[i] + 7, NULL, 0) & ~(uint64_t)1;
        }
    }
    if (marker == 0) {
        fprintf(stderr, "icount plugin: pass marker=<address of the marker function>\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translation);
    return 0;
}
