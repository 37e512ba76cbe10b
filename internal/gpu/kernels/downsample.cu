// Downsample kernel: reduce a batch of frames by 2 along the dims in the
// reduce mask, for the next level of a pyramid. The arithmetic is
// internal/downsample's (its doc.go is the definition; these kernels must
// give the same bytes, which the Go tests check against its Reference):
//
//   mean, integers: the exact sum of the block's existing elements (64-bit
//     accumulator, 128-bit for the 64-bit types), divided by their count
//     (a power of two) rounded half to even;
//   mean, floats: a compensated (Neumaier) double sum over the count,
//     rounded to the type once; a block with an infinity or NaN, or whose
//     sum leaves the double range, sums value/count instead;
//   min, max: of the existing elements; a NaN gives the canonical NaN;
//   decimate: the block's first element.
//
// One thread per output element (grid-stride), consecutive threads on
// consecutive elements of the innermost dim, so reads of the block rows
// are close together. The parameters live in device memory (the slot
// uploads them with the batch), read once per thread.

#ifndef __CUDACC__
// Compiled by g++ for the Go tests: the CPU emulator of the CUDA model.
#include <cmath>
#include "emu/cuda_emu.h"
using std::fabs;
using std::isinf;
#endif

#define MAX_RANK 8

struct DownParams {
    long long in[MAX_RANK];      // input shape (dim 0: frames of the batch)
    long long out[MAX_RANK];     // output shape
    long long istride[MAX_RANK]; // input element stride per dim
    long long total;             // output elements
    int rank;
    int reduce;                  // bit d set: dim d is reduced
    int method;                  // 0 mean, 1 min, 2 max, 3 decimate
    int pad;
};

// The block of output element o: its first input offset, and for each
// reduced dim whether the odd neighbour exists (bit d of has2) with its
// stride.
struct Block {
    long long base;
    long long stride[MAX_RANK];
    int n; // reduced dims with an existing odd neighbour
};

__device__ __forceinline__ Block block_of(long long o, const DownParams& p)
{
    Block b;
    b.base = 0;
    b.n = 0;
    long long c[MAX_RANK];
    for (int d = p.rank - 1; d >= 0; d--) {
        c[d] = o % p.out[d];
        o /= p.out[d];
    }
    for (int d = 0; d < p.rank; d++) {
        long long i = c[d];
        if ((p.reduce >> d) & 1) {
            i *= 2;
            if (i + 1 < p.in[d]) b.stride[b.n++] = p.istride[d];
        }
        b.base += i * p.istride[d];
    }
    return b;
}

// offset of the k-th element of the block (k < 1 << b.n).
__device__ __forceinline__ long long block_elem(const Block& b, unsigned k)
{
    long long off = b.base;
    for (int j = 0; j < b.n; j++)
        if ((k >> j) & 1) off += b.stride[j];
    return off;
}

// half-to-even rounding of s / 2^k for a non-negative s.
__device__ __forceinline__ unsigned long long round_shift(unsigned long long s, int k)
{
    if (k == 0) return s;
    unsigned long long q = s >> k, r = s & ((1ull << k) - 1), half = 1ull << (k - 1);
    if (r > half || (r == half && (q & 1))) q++;
    return q;
}

template <typename T, bool SIGNED>
__device__ __forceinline__ void down_int(const T* __restrict__ src, T* __restrict__ dst, const DownParams* pp)
{
    const DownParams p = *pp;
    for (long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x; o < p.total; o += (long long)gridDim.x * blockDim.x) {
        Block b = block_of(o, p);
        unsigned cnt = 1u << b.n;
        if (p.method == 3) {
            dst[o] = src[b.base];
            continue;
        }
        if (p.method != 0) {
            T best = src[b.base];
            for (unsigned k = 1; k < cnt; k++) {
                T v = src[block_elem(b, k)];
                if (p.method == 1 ? v < best : v > best) best = v;
            }
            dst[o] = best;
            continue;
        }
        if (sizeof(T) < 8) {
            long long s = 0;
            for (unsigned k = 0; k < cnt; k++) s += (long long)src[block_elem(b, k)];
            bool neg = s < 0;
            unsigned long long q = round_shift(neg ? (unsigned long long)(-s) : (unsigned long long)s, b.n);
            dst[o] = (T)(neg ? -(long long)q : (long long)q);
        } else {
            __int128 s = 0;
            for (unsigned k = 0; k < cnt; k++) {
                T v = src[block_elem(b, k)];
                if (SIGNED) s += (__int128)(long long)v;
                else s += (__int128)(unsigned long long)v;
            }
            bool neg = s < 0;
            unsigned __int128 a = neg ? (unsigned __int128)(-s) : (unsigned __int128)s;
            unsigned __int128 q = a >> b.n;
            if (b.n > 0) {
                unsigned __int128 r = a & (((unsigned __int128)1 << b.n) - 1), half = (unsigned __int128)1 << (b.n - 1);
                if (r > half || (r == half && (q & 1))) q++;
            }
            unsigned long long qq = (unsigned long long)q;
            dst[o] = (T)(neg ? (unsigned long long)(-(long long)qq) : qq);
        }
    }
}

__device__ __forceinline__ bool is_nan(double v) { return v != v; }

template <typename T>
__device__ __forceinline__ void down_float(const T* __restrict__ src, T* __restrict__ dst, const DownParams* pp)
{
    const DownParams p = *pp;
    for (long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x; o < p.total; o += (long long)gridDim.x * blockDim.x) {
        Block b = block_of(o, p);
        unsigned cnt = 1u << b.n;
        if (p.method == 3) {
            dst[o] = src[b.base];
            continue;
        }
        if (p.method != 0) {
            T best = src[b.base];
            bool nan = is_nan((double)best);
            for (unsigned k = 1; k < cnt; k++) {
                T v = src[block_elem(b, k)];
                if (is_nan((double)v)) nan = true;
                else if (p.method == 1 ? v < best : v > best) best = v;
            }
            if (nan) best = (T)__longlong_as_double(0x7FF8000000000001ll);
            dst[o] = best;
            continue;
        }
        double s = 0, c = 0;
        for (unsigned k = 0; k < cnt; k++) {
            double v = (double)src[block_elem(b, k)];
            double t = s + v;
            if (fabs(s) >= fabs(v)) c += (s - t) + v;
            else c += (v - t) + s;
            s = t;
        }
        double n = (double)cnt;
        if (isinf(s) || is_nan(s)) {
            double s2 = 0;
            for (unsigned k = 0; k < cnt; k++) s2 += (double)src[block_elem(b, k)] / n;
            dst[o] = (T)s2;
        } else {
            dst[o] = (T)((s + c) / n);
        }
    }
}

#define DOWN_INT(NAME, T, SIGNED)                                                                  \
    extern "C" __global__ void __launch_bounds__(256) NAME(const T* __restrict__ src, T* __restrict__ dst, const DownParams* p) \
    {                                                                                              \
        down_int<T, SIGNED>(src, dst, p);                                                          \
    }

DOWN_INT(down_uint8, unsigned char, false)
DOWN_INT(down_uint16, unsigned short, false)
DOWN_INT(down_uint32, unsigned int, false)
DOWN_INT(down_uint64, unsigned long long, false)
DOWN_INT(down_int8, signed char, true)
DOWN_INT(down_int16, short, true)
DOWN_INT(down_int32, int, true)
DOWN_INT(down_int64, long long, true)

extern "C" __global__ void __launch_bounds__(256) down_float32(const float* __restrict__ src, float* __restrict__ dst, const DownParams* p)
{
    down_float<float>(src, dst, p);
}

extern "C" __global__ void __launch_bounds__(256) down_float64(const double* __restrict__ src, double* __restrict__ dst, const DownParams* p)
{
    down_float<double>(src, dst, p);
}
