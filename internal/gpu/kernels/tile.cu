// Tile kernel: cut a batch of frames (C order) into padded inner chunks.
//
// One block per chunk (grid-stride over chunks). table[c] names the chunk
// written to dst + c*chunkElems: its epoch in the batch (.x) and its C-order
// index in the epoch's chunk grid over dims 1.. (.y). The host orders the
// table in shard-file order, so the tiled buffer is already the shard bytes
// for codec none.
//
// Elements outside the array (ragged edges in dims 1.., frames missing from
// a last partial epoch) are written as 0, the fill value.
//
// Lifted strides: the host passes the in-chunk dimensions with extent > 1
// only, innermost first, each with its source stride, so a chunk element's
// source offset is base + sum(coord_k * estride_k). Dimensions of extent 1
// only move the chunk's base.

#define MAX_RANK 8

struct TileParams {
    long long limit[MAX_RANK];   // valid extent per dim: frames in the batch, then shape[1..]
    long long chunk[MAX_RANK];   // chunk shape
    long long grid[MAX_RANK];    // chunks per dim (grid[0] unused)
    long long stride[MAX_RANK];  // source element stride per dim
    long long ext[MAX_RANK];     // squeezed in-chunk dims, innermost first: extent
    long long estride[MAX_RANK]; //   source element stride
    long long edim[MAX_RANK];    //   original dim index
    unsigned emul[MAX_RANK];     //   fast division by ext: multiplier
    unsigned eshr[MAX_RANK];     //   and shift (see fastdiv)
    long long chunkElems;
    int rank;
    int nd;                      // number of squeezed dims
};

// fastdiv is n / d for n < 2^31 with mul, shr precomputed on the host for
// d (mul = 0 means d = 1): the quotient is umulhi(n, mul) >> shr, three
// instructions instead of a full integer division.
__device__ __forceinline__ unsigned fastdiv(unsigned n, unsigned mul, unsigned shr)
{
    return mul == 0 ? n : (__umulhi(n, mul) >> shr);
}

template <typename T>
__device__ __forceinline__ void tile_body(const T* __restrict__ src, T* __restrict__ dst,
                                          const uint2* __restrict__ table, int nChunks,
                                          const TileParams& p)
{
    __shared__ long long base;
    __shared__ unsigned rem[MAX_RANK];
    for (int c = blockIdx.x; c < nChunks; c += gridDim.x) {
        if (threadIdx.x == 0) {
            uint2 e = table[c];
            long long g[MAX_RANK];
            unsigned long long lin = e.y;
            for (int d = p.rank - 1; d >= 1; d--) {
                g[d] = (long long)(lin % (unsigned long long)p.grid[d]);
                lin /= (unsigned long long)p.grid[d];
            }
            g[0] = e.x;
            long long b = 0;
            for (int d = 0; d < p.rank; d++) b += g[d] * p.chunk[d] * p.stride[d];
            base = b;
            for (int k = 0; k < p.nd; k++) {
                int d = (int)p.edim[k];
                long long r = p.limit[d] - g[d] * p.chunk[d];
                if (r > p.chunk[d]) r = p.chunk[d];
                if (r < 0) r = 0;
                rem[k] = (unsigned)r;
            }
        }
        __syncthreads();
        const long long b = base;
        unsigned rk[MAX_RANK];
#pragma unroll
        for (int k = 0; k < MAX_RANK; k++) rk[k] = (k < p.nd) ? rem[k] : 1u;
        T* out = dst + (long long)c * p.chunkElems;
        const unsigned n = (unsigned)p.chunkElems;
        for (unsigned i = threadIdx.x; i < n; i += blockDim.x) {
            unsigned r = i;
            long long off = b;
            bool ok = true;
#pragma unroll
            for (int k = 0; k < MAX_RANK; k++) {
                if (k < p.nd) {
                    unsigned e = (unsigned)p.ext[k];
                    unsigned q = fastdiv(r, p.emul[k], p.eshr[k]);
                    unsigned cd = r - q * e;
                    r = q;
                    ok = ok && (cd < rk[k]);
                    off += (long long)cd * p.estride[k];
                }
            }
            out[i] = ok ? src[off] : (T)0;
        }
        __syncthreads(); // base and rem are rewritten for the next chunk
    }
}

extern "C" __global__ void tile_1(const unsigned char* src, unsigned char* dst, const uint2* table, int nChunks, TileParams p)
{
    tile_body<unsigned char>(src, dst, table, nChunks, p);
}

extern "C" __global__ void tile_2(const unsigned short* src, unsigned short* dst, const uint2* table, int nChunks, TileParams p)
{
    tile_body<unsigned short>(src, dst, table, nChunks, p);
}

extern "C" __global__ void tile_4(const unsigned int* src, unsigned int* dst, const uint2* table, int nChunks, TileParams p)
{
    tile_body<unsigned int>(src, dst, table, nChunks, p);
}

extern "C" __global__ void tile_8(const unsigned long long* src, unsigned long long* dst, const uint2* table, int nChunks, TileParams p)
{
    tile_body<unsigned long long>(src, dst, table, nChunks, p);
}
