/* The CPU's int8 dot-product peak, in multiply-accumulates per second, on THREADS threads.
 *
 * Compiled and run by bench/engine_peak.py: gcc -O2 -fopenmp int8_peak.c; ./a.out THREADS SECONDS.
 * Prints one line per instruction path this CPU has: "<path> <GMAC/s>".
 *   avx2:       vpmaddubsw (32 u8 x s8 products, pairs summed to s16) + vpmaddwd by ones + vpaddd, the
 *               sequence int8 convolutions run on AVX2 (oneDNN's), 32 MACs per three instructions;
 *   avx512vnni: vpdpbusd on zmm, 64 MACs per instruction;
 *   avxvnni:    vpdpbusd on ymm (VEX), 32 MACs per instruction.
 * AMX tiles (tdpbusd) need the kernel's permission per process and are not measured here.
 * Each thread's best short slice counts (see rate()). Each path keeps 8-12 independent accumulators in registers
 * so that throughput, not latency, bounds it.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

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
    return 0;
}
