/* The CPU's int8 dot-product peak, in multiply-accumulates per second, on THREADS threads.
 *
 * Compiled and run by bench/engine_peak.py: gcc -O2 -fopenmp int8_peak.c; ./a.out THREADS SECONDS.
 * Prints one line per instruction path this CPU has: "<path> <GMAC/s>".
 *   avx2:       vpmaddubsw (32 u8 x s8 products, pairs summed to s16) + vpmaddwd by ones + vpaddd, the
 *               sequence int8 convolutions run on AVX2 (oneDNN's), 32 MACs per three instructions;
 *   avx512vnni: vpdpbusd on zmm, 64 MACs per instruction;
 *   avxvnni:    vpdpbusd on ymm (VEX), 32 MACs per instruction;
 *   amx:        tdpbusd on tiles, 16 x 16 int32 accumulators += 16 x 64 u8 times 64 x 16 s8 (16,384 MACs per
 *               instruction), four accumulator tiles; the kernel's permission for the tile data is asked
 *               first (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), and the path is left out when
 *               it is refused or the CPU has no AMX-INT8 (CPUID leaf 7: EDX bits 24 and 25).
 * Each thread's best short slice counts (see rate()). Each path keeps 8-12 independent accumulators in registers
 * so that throughput, not latency, bounds it.
 */
#include <cpuid.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

#define ITERS 20000L /* about 0.1-0.2 ms per slice */

typedef long (*kernel)(long iters);

/* The loops are written in assembly: compiled from intrinsics, gcc shares one product between accumulators
 * or keeps them in memory, and the loop then times something else. Register contents do not matter to the
 * timing (integer arithmetic has no slow values), so nothing is initialised. */
#define AVX2_STEP(acc, tmp)                                                                     \
    "vpmaddubsw %%ymm13, %%ymm12, %%ymm" #tmp "\n\t"                                            \
    "vpmaddwd %%ymm14, %%ymm" #tmp ", %%ymm" #tmp "\n\t"                                        \
    "vpaddd %%ymm" #tmp ", %%ymm" #acc ", %%ymm" #acc "\n\t"
#define ZMM_STEP(acc) "vpdpbusd %%zmm13, %%zmm12, %%zmm" #acc "\n\t"
#define YMM_STEP(acc) "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm" #acc "\n\t"
#define TWELVE(step) step(0) step(1) step(2) step(3) step(4) step(5) step(6) step(7) step(8) step(9) step(10) step(11)
#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
                 "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc"

/* vpmaddubsw + vpmaddwd by ones + vpaddd into 8 accumulators (ymm0-7), products through ymm8-11. */
static long avx2(long iters) {
    long n = iters;
    __asm__ volatile("1:\n\t" AVX2_STEP(0, 8) AVX2_STEP(1, 9) AVX2_STEP(2, 10) AVX2_STEP(3, 11)
                         AVX2_STEP(4, 8) AVX2_STEP(5, 9) AVX2_STEP(6, 10) AVX2_STEP(7, 11) "dec %0\n\t"
                                                                                           "jnz 1b"
                     : "+r"(n)
                     :
                     : CLOBBERS);
    return iters * 8 * 32;
}

/* vpdpbusd on zmm into 12 accumulators (zmm0-11). */
static long avx512vnni(long iters) {
    long n = iters;
    __asm__ volatile("1:\n\t" TWELVE(ZMM_STEP) "dec %0\n\tjnz 1b" : "+r"(n) : : CLOBBERS);
    return iters * 12 * 64;
}

/* vpdpbusd on ymm (VEX encoding) into 12 accumulators (ymm0-11). */
static long avxvnni(long iters) {
    long n = iters;
    __asm__ volatile("1:\n\t" TWELVE(YMM_STEP) "dec %0\n\tjnz 1b" : "+r"(n) : : CLOBBERS);
    return iters * 12 * 32;
}

/* The tile configuration (palette 1): tiles 0-3 accumulate 16 rows x 16 int32, tiles 4-5 hold A (16 rows x
 * 64 u8), tiles 6-7 B (16 rows of 16 x 4 s8, the VNNI layout). 64 bytes, as ldtilecfg reads it. */
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed, aligned(64)));

static uint8_t tile_data[2][16 * 64] __attribute__((aligned(64)));

/* tdpbusd into four accumulator tiles from two A and two B tiles, loaded once per slice. */
static long amx(long iters) {
    struct tile_config cfg = {.palette = 1};
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    long n = iters / 10; /* one tdpbusd is 16,384 MACs: shorter slices */
    __asm__ volatile(
        "ldtilecfg %1\n\t"
        "tileloadd (%2,%4,1), %%tmm4\n\t"
        "tileloadd (%2,%4,1), %%tmm5\n\t"
        "tileloadd (%3,%4,1), %%tmm6\n\t"
        "tileloadd (%3,%4,1), %%tmm7\n\t"
        "tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3\n\t"
        "1:\n\t"
        "tdpbusd %%tmm6, %%tmm4, %%tmm0\n\t"
        "tdpbusd %%tmm7, %%tmm4, %%tmm1\n\t"
        "tdpbusd %%tmm6, %%tmm5, %%tmm2\n\t"
        "tdpbusd %%tmm7, %%tmm5, %%tmm3\n\t"
        "dec %0\n\tjnz 1b\n\t"
        "tilerelease"
        : "+r"(n)
        : "m"(cfg), "r"(tile_data[0]), "r"(tile_data[1]), "r"(64L)
        : "memory", "cc");
    return iters / 10 * 4 * 16 * 16 * 64;
}

/* Whether this CPU has AMX-TILE and AMX-INT8 and the kernel lets this process use the tile data. */
static int amx_usable(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) return 0;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

/* MACs per second of ``run`` on ``threads`` threads: each thread runs short slices for ``seconds`` and keeps its
 * best slice's rate; the peak is the sum. On a shared machine other processes only ever take time away, so a
 * thread's best slice is the hardware's rate, and no thread waits for another (the cores are not SMT
 * siblings where this matters: check lscpu's threads per core). */
static double rate(kernel run, int threads, double seconds) {
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        double best = 0, start = omp_get_wtime(), now = start;
        while (now - start < seconds) {
            double t = now;
            long macs = run(ITERS);
            now = omp_get_wtime();
            if (macs / (now - t) > best) best = macs / (now - t);
        }
        total += best;
    }
    return total;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) printf("avx2 %.1f\n", rate(avx2, threads, seconds) / 1e9);
    if (__builtin_cpu_supports("avx512vnni"))
        printf("avx512vnni %.1f\n", rate(avx512vnni, threads, seconds) / 1e9);
    if (__builtin_cpu_supports("avxvnni")) printf("avxvnni %.1f\n", rate(avxvnni, threads, seconds) / 1e9);
    if (amx_usable()) printf("amx %.1f\n", rate(amx, threads, seconds) / 1e9);
    return 0;
}
