// Aggregation kernels: lay encoded chunks out back to back in shard-file
// order. The layout comes from an exclusive prefix sum over the chunk
// sizes (integer sums, so the same sizes always give the same offsets; no
// atomics decide where anything goes), then a copy of each chunk to its
// offset.

#define SCAN_THREADS 1024

// scan_sizes: offsets[i] = sizes[0] + ... + sizes[i-1] for i in 0..n, so
// offsets[n] is the total. One block of SCAN_THREADS threads; thread t sums
// a contiguous run of the input, the block scans the run totals, then each
// thread writes its run's offsets.
extern "C" __global__ void scan_sizes(const unsigned* __restrict__ sizes, int n,
                                      unsigned long long* __restrict__ offsets)
{
    __shared__ unsigned long long part[SCAN_THREADS];
    const int t = threadIdx.x;
    const int per = (n + SCAN_THREADS - 1) / SCAN_THREADS;
    const int lo = min(n, t * per), hi = min(n, lo + per);
    unsigned long long s = 0;
    for (int i = lo; i < hi; i++) s += sizes[i];
    part[t] = s;
    __syncthreads();
    // Hillis-Steele inclusive scan over the run totals.
    for (int k = 1; k < SCAN_THREADS; k <<= 1) {
        unsigned long long v = (t >= k) ? part[t - k] : 0ull;
        __syncthreads();
        part[t] += v;
        __syncthreads();
    }
    unsigned long long off = part[t] - s; // exclusive
    for (int i = lo; i < hi; i++) {
        offsets[i] = off;
        off += sizes[i];
    }
    if (t == SCAN_THREADS - 1) offsets[n] = part[t];
}

// compact: copy chunk i (sizes[i] bytes at src + i*stride) to
// dst + offsets[i]. One block per chunk, grid-stride. Where source and
// destination share their alignment mod 16 the body moves 16-byte words.
extern "C" __global__ void compact(const unsigned char* __restrict__ src, long long stride,
                                   const unsigned* __restrict__ sizes,
                                   const unsigned long long* __restrict__ offsets, int n,
                                   unsigned char* __restrict__ dst)
{
    for (int c = blockIdx.x; c < n; c += gridDim.x) {
        const unsigned char* s = src + (long long)c * stride;
        unsigned char* d = dst + offsets[c];
        const unsigned long long len = sizes[c];
        const unsigned long long sa = (unsigned long long)s & 15, da = (unsigned long long)d & 15;
        if (sa == da && len >= 64) {
            unsigned long long head = (16 - sa) & 15;
            for (unsigned long long i = threadIdx.x; i < head; i += blockDim.x) d[i] = s[i];
            const unsigned long long words = (len - head) / 16;
            const uint4* s4 = (const uint4*)(s + head);
            uint4* d4 = (uint4*)(d + head);
            for (unsigned long long i = threadIdx.x; i < words; i += blockDim.x) d4[i] = s4[i];
            for (unsigned long long i = head + words * 16 + threadIdx.x; i < len; i += blockDim.x) d[i] = s[i];
        } else {
            for (unsigned long long i = threadIdx.x; i < len; i += blockDim.x) d[i] = s[i];
        }
    }
}
