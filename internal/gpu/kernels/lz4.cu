// lz4.cu: blosc1 + byte shuffle + LZ4 on the GPU, one blosc1 buffer per
// inner chunk, readable by c-blosc (numcodecs, tensorstore) and by our CPU
// decoder.
//
// A batch of n chunks of nbytes each (chunk i at in + i*nbytes) goes through
// three kernels on one stream:
//
//   lz4_shuffle   in      -> shuf    byte shuffle per blosc block (by the
//                                    element size T), laid out like the
//                                    blosc streams: chunk c at c*cstride
//   lz4_compress  shuf    -> lzout   one warp per blosc stream: greedy LZ4
//                                    with a hash table in shared memory,
//                                    32 positions tested per step, skipping
//                                    like LZ4_compress_fast with c-blosc's
//                                    acceleration (10 - clevel);
//                                    csizes[stream] = LZ4 size, or the
//                                    stream length when it did not shrink
//                                    (blosc's "stored raw" marker)
//   lz4_assemble  all     -> out     header, bstarts and [i32 size][bytes]
//                                    streams of chunk c at out + c*ostride,
//                                    or the MEMCPYED form when compressing
//                                    did not pay (or memcpy_only: clevel
//                                    0); sizes[c] = its length
//
// Parallel over chunks and over the streams of a chunk. Nothing decides a
// layout through atomics or timing, so the output depends only on the
// input bytes and (nbytes, T, blocksize): deterministic.
//
// blosc rules followed (c-blosc blosc.c, blosc_c/blosc_d):
//   blocksize bs = min(blocksize, nbytes); nblocks = ceil(nbytes/bs);
//   a full block is split into T streams of bs/T bytes when T <= 16 and
//   bs/T >= 128 (flag 0x10 DONT_SPLIT set otherwise); the short last block
//   is never split; a stream whose LZ4 form is not shorter is stored raw
//   (size == stream length); the chunk is MEMCPYED when nbytes < 128 or the
//   compressed form would exceed nbytes + 16.
//
// LZ4 rules (lz4 Block_format.md): minmatch 4, the last 5 bytes are
// literals, the last match starts at least 12 bytes before the end (we
// keep 13), offsets 1..65535 (streams are at most 64 KiB).
//
// The same source compiles with g++ against lz4emu/cuda_emu.h, which runs
// each CUDA thread as a fiber; that is how the kernels are tested on
// machines without a GPU (see lz4emu/).

#ifndef __CUDACC__
#include "lz4emu/cuda_emu.h"
#endif

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define LZ4_FULL 0xffffffffu
// Hash table per warp: 2^11 u16 positions = 4 KiB of shared memory. The
// ratio is the same as with c-blosc's 2^13 on our test data, and the
// small table lets many more warps stay resident (measured on an H100:
// 2^12 -> 2^11 took xor from 55 to 75 GB/s).
#ifndef LZ4_HLOG
#define LZ4_HLOG 11
#endif
#define LZ4_HSIZE (1u << LZ4_HLOG)
// Warps per CTA of lz4_compress (4 x 4 KiB of tables). The grid is
// persistent and hands out streams one at a time, so a CTA's warps never
// wait for each other.
#define LZ4_WPB 4
#ifndef LZ4_SKIP
#define LZ4_SKIP 6
#endif
// Bytes 5 and 6 of the hash key; 0 keys on 4 bytes as c-blosc's LZ4 does
// (0xffff, pierrec/lz4's 6-byte key, gives better ratios at acceleration
// 1 but drifts from c-blosc's at its clevel-1 acceleration 9).
#ifndef LZ4_KEY2MASK
#define LZ4_KEY2MASK 0
#endif
#define LZ4_MINMATCH 4
#define LZ4_LASTLITERALS 5
#define LZ4_MFLIMIT 13

// Geometry of one chunk in blosc terms; every kernel derives it the same way.
struct Geom {
  u32 nbytes;   // chunk bytes
  u32 T;        // element size
  u32 bs;       // blocksize written in the header
  u32 nsp;      // streams per full block
  u32 neblock;  // bytes per stream of a full block
  u32 nfull;    // full blocks
  u32 leftover; // bytes of the short last block (0: none)
  u32 nblocks;
  u32 spc;      // streams per chunk
  u32 cstride;  // chunk stride in the scratch buffers (16-byte multiple)
};

__host__ __device__ __forceinline__ Geom lz4_geom(u32 nbytes, u32 T, u32 blocksize) {
  Geom g;
  g.nbytes = nbytes;
  g.T = T;
  g.bs = nbytes < blocksize ? nbytes : blocksize;
  if (g.bs == 0) g.bs = 1;
  g.nsp = (T <= 16 && g.bs / T >= 128) ? T : 1;
  g.neblock = g.bs / g.nsp;
  g.nfull = nbytes / g.bs;
  g.leftover = nbytes % g.bs;
  g.nblocks = g.nfull + (g.leftover ? 1 : 0);
  g.spc = g.nfull * g.nsp + (g.leftover ? 1 : 0);
  g.cstride = (nbytes + 15u) & ~15u;
  return g;
}

// lz4_stream_at returns the offset and length of stream s of a chunk.
__host__ __device__ __forceinline__ void lz4_stream_at(const Geom& g, u32 s, u32& off, u32& len) {
  u32 full = g.nfull * g.nsp;
  if (s < full) {
    u32 b = s / g.nsp, j = s % g.nsp;
    off = b * g.bs + j * g.neblock;
    len = g.neblock;
  } else {
    off = g.nfull * g.bs;
    len = g.leftover;
  }
}

// ---------------------------------------------------------------------------
// lz4_shuffle: shuf[c*cstride + o] for every output byte o of every chunk.
// Blosc shuffles each block on its own: out[j*nelem + i] = in[i*T + j].
// grid = n * ceil(cstride/4096) CTAs of 256 threads, one thread per 16
// output bytes. When every block holds a multiple of 16 elements and T is
// 1, 2, 4 or 8 (the usual case), thread k instead shuffles elements
// 16k..16k+15 with 16-byte loads and stores (lz4_shuf16); else each
// thread gathers its 16 output bytes one by one.

#define LZ4_SHUF_CTA 256
#define LZ4_SHUF_TILE (LZ4_SHUF_CTA * 16)

// lz4_shuf16 shuffles 16 elements of T bytes at src (16-byte aligned) into
// 16 bytes of each of the T planes dst + j*nelem.
template <int T>
__device__ __forceinline__ void lz4_shuf16(const u8* src, u8* dst, u32 nelem) {
  u32 w[4 * T];
#pragma unroll
  for (int t = 0; t < T; t++) {
    uint4 v = ((const uint4*)src)[t];
    w[4 * t] = v.x;
    w[4 * t + 1] = v.y;
    w[4 * t + 2] = v.z;
    w[4 * t + 3] = v.w;
  }
#pragma unroll
  for (int j = 0; j < T; j++) {
    u32 o[4] = {0, 0, 0, 0};
#pragma unroll
    for (int i = 0; i < 16; i++) {
      int k = i * T + j;
      o[i / 4] |= ((w[k / 4] >> (8 * (k % 4))) & 255u) << (8 * (i % 4));
    }
    uint4 v;
    v.x = o[0];
    v.y = o[1];
    v.z = o[2];
    v.w = o[3];
    *(uint4*)(dst + (u64)j * nelem) = v;
  }
}

extern "C" __global__ void __launch_bounds__(LZ4_SHUF_CTA)
lz4_shuffle(const u8* __restrict__ in, u8* __restrict__ shuf, u32 nbytes, u32 T, u32 blocksize, u32 n) {
  Geom g = lz4_geom(nbytes, T, blocksize);
  u32 tiles = (g.cstride + LZ4_SHUF_TILE - 1) / LZ4_SHUF_TILE;
  u32 c = blockIdx.x / tiles;
  if (c >= n) return;
  u32 o0 = (blockIdx.x % tiles) * LZ4_SHUF_TILE + threadIdx.x * 16;
  if ((T == 1 || T == 2 || T == 4 || T == 8) && nbytes % 16 == 0 && ((unsigned long long)in & 15) == 0 &&
      g.bs % (16 * T) == 0 && g.leftover % (16 * T) == 0) {
    u32 k = o0 / 16;  // group of 16 elements
    u32 x = k * 16 * T;
    if (x >= nbytes) return;
    u32 b = x / g.bs, r = x % g.bs;
    u32 nelem = (b < g.nfull ? g.bs : g.leftover) / T;
    const u8* src = in + (u64)c * nbytes + x;
    u8* dst = shuf + (u64)c * g.cstride + b * g.bs + r / T;
    switch (T) {
      case 1: lz4_shuf16<1>(src, dst, nelem); break;
      case 2: lz4_shuf16<2>(src, dst, nelem); break;
      case 4: lz4_shuf16<4>(src, dst, nelem); break;
      default: lz4_shuf16<8>(src, dst, nelem); break;
    }
    return;
  }
  if (o0 >= g.cstride) return;
  const u8* src = in + (u64)c * nbytes;
  u32 w[4] = {0, 0, 0, 0};
  for (u32 k = 0; k < 16; k++) {
    u32 o = o0 + k;
    u32 v = 0;
    if (o < nbytes) {
      u32 b = o / g.bs, r = o % g.bs;
      u32 bsize = b < g.nfull ? g.bs : g.leftover;
      u32 nelem = bsize / T;
      u32 j = r / nelem, i = r % nelem;
      v = src[b * g.bs + i * T + j];
    }
    w[k >> 2] |= v << ((k & 3) * 8);
  }
  u32* d = (u32*)(shuf + (u64)c * g.cstride + o0);
  d[0] = w[0];
  d[1] = w[1];
  d[2] = w[2];
  d[3] = w[3];
}

// ---------------------------------------------------------------------------
// lz4_compress: one warp per stream.

// lz4_rd32 reads 4 bytes at any address with two aligned loads. It may read
// up to 4 bytes past p+3; the scratch buffers carry padding for that.
__device__ __forceinline__ u32 lz4_rd32(const u8* p) {
  unsigned long long a = (unsigned long long)p;
  const u32* w = (const u32*)(a & ~3ull);
  return __funnelshift_r(__ldg(w), __ldg(w + 1), (u32)(a & 3) * 8);
}

// lz4_hash6 hashes 4 bytes (lo) and up to 2 more (hi, see LZ4_KEY2MASK).
__device__ __forceinline__ u32 lz4_hash6(u32 lo, u32 hi) {
  u64 x = ((u64)(hi & 0xffffu) << 48) | ((u64)lo << 16);
  return (u32)((x * 227718039650203ull) >> (64 - LZ4_HLOG));
}

// lz4_seq_size is the encoded size of one sequence.
__device__ __forceinline__ u32 lz4_seq_size(u32 lit, bool match, u32 ml) {
  u32 n = 1 + lit + (lit >= 15 ? (lit - 15) / 255 + 1 : 0);
  if (match) n += 2 + (ml >= 15 ? (ml - 15) / 255 + 1 : 0);
  return n;
}

// lz4_len_ext writes the 255-run and final byte of a length >= 15; it
// returns the bytes written.
__device__ __forceinline__ u32 lz4_len_ext(u8* dst, u32 v, u32 lane) {
  u32 r = v - 15, n255 = r / 255;
  for (u32 i = lane; i < n255; i += 32) dst[i] = 255;
  if (lane == 0) dst[n255] = (u8)(r - n255 * 255);
  return n255 + 1;
}

// lz4_emit writes one sequence (ml = match length - 4) cooperatively.
__device__ __forceinline__ void lz4_emit(u8* dst, const u8* lits, u32 lit, bool match, u32 off, u32 ml, u32 lane) {
  u32 tl = lit >= 15 ? 15 : lit;
  u32 tm = match ? (ml >= 15 ? 15 : ml) : 0;
  if (lane == 0) dst[0] = (u8)((tl << 4) | tm);
  u32 p = 1;
  if (lit >= 15) p += lz4_len_ext(dst + p, lit, lane);
  for (u32 i = lane; i < lit; i += 32) dst[p + i] = lits[i];
  p += lit;
  if (match) {
    if (lane == 0) {
      dst[p] = (u8)(off & 255);
      dst[p + 1] = (u8)(off >> 8);
    }
    p += 2;
    if (ml >= 15) lz4_len_ext(dst + p, ml, lane);
  }
}

// lz4_block compresses src[0:len) into dst (capacity len) and returns the
// LZ4 size, or len when the stream must be stored raw. Called by a whole
// warp; all control flow around warp collectives is warp-uniform.
__device__ u32 lz4_block(const u8* src, u8* dst, u32 len, u16* tab, u32 accel, u32 lane) {
  for (u32 i = lane; i < LZ4_HSIZE / 2; i += 32) ((u32*)tab)[i] = 0;
  __syncwarp();
  u32 op = 0, anchor = 0, pos = 0, tested = 0;
  // fresh: pos follows a match (or starts the stream), where LZ4 tests
  // pos, pos+1, pos+2 before it starts striding.
  bool fresh = true;
  if (len >= LZ4_MFLIMIT + 1) {
    const u32 mlimit = len - LZ4_MFLIMIT;   // last allowed match start
    const u32 mend = len - LZ4_LASTLITERALS; // a match ends at or before
    while (pos <= mlimit) {
      // LZ4's acceleration (LZ4_compress_fast): test every accel-th
      // position, and one more apart after every 64 tests without a match.
      u32 stride = accel + (tested >> LZ4_SKIP);
      u32 lead = fresh ? 2 : 0;  // lanes before the strided ones
      u32 q = lane < lead ? pos + lane : pos + lead + (lane - lead) * stride;
      bool valid = q <= mlimit;
      // Lanes past the limit read at the limit: in bounds, and ignored.
      const u8* kp = src + (valid ? q : mlimit);
      u32 key = lz4_rd32(kp), key2 = lz4_rd32(kp + 4) & LZ4_KEY2MASK;
      u32 h = lz4_hash6(key, key2);
      u32 cand = tab[h];
      // Lanes with the same key: the nearest earlier lane is the newest
      // position with that key, what sequential LZ4 would find first.
#if LZ4_KEY2MASK
      unsigned same = __match_any_sync(LZ4_FULL, (u64)(((u64)key2 << 32) | key));
#else
      unsigned same = __match_any_sync(LZ4_FULL, key);
#endif
      unsigned earlier = same & ((1u << lane) - 1u);
      u32 ref = cand;
      bool ok;
      if (earlier) {
        u32 l = 31 - __clz(earlier);
        ref = l < lead ? pos + l : pos + lead + (l - lead) * stride;
        ok = valid;
      } else {
        ok = valid && cand < q && lz4_rd32(src + cand) == key;
      }
      unsigned mb = __ballot_sync(LZ4_FULL, ok);
      u32 f = mb ? (u32)(__ffs(mb) - 1) : 32u;
      // Insert the positions tested up to the match; among lanes hitting
      // one slot the highest lane (newest position) wins.
      bool ins = valid && lane <= f;
      unsigned grp = __match_any_sync(LZ4_FULL, ins ? h : (0x80000000u | h));
      __syncwarp();
      if (ins && (grp >> lane) == 1u) tab[h] = (u16)q;
      __syncwarp();
      if (!mb) {
        pos = __shfl_sync(LZ4_FULL, q, 31) + stride;
        tested += 32;
        fresh = false;
        continue;
      }
      u32 s = __shfl_sync(LZ4_FULL, q, f);
      u32 r = __shfl_sync(LZ4_FULL, ref, f);
      // Extend forward, 128 bytes per round (4 per lane).
      u32 maxlen = mend - s;
      u32 mlen = LZ4_MINMATCH;
      for (;;) {
        u32 x = lz4_rd32(src + s + mlen + lane * 4) ^ lz4_rd32(src + r + mlen + lane * 4);
        unsigned bad = __ballot_sync(LZ4_FULL, x != 0);
        if (bad) {
          u32 k = __ffs(bad) - 1;
          u32 xk = __shfl_sync(LZ4_FULL, x, k);
          mlen += k * 4 + (u32)(__ffs(xk) - 1) / 8;
          break;
        }
        mlen += 128;
        if (mlen >= maxlen) break;
      }
      if (mlen > maxlen) mlen = maxlen;
      // Extend backward into the pending literals (none pending: a match
      // right after the previous one, the common case in busy data).
      u32 back = 0;
      while (s > anchor) {
        int ps = (int)s - 1 - (int)back - (int)lane;
        int pr = (int)r - 1 - (int)back - (int)lane;
        bool good = ps >= (int)anchor && pr >= 0 && src[ps] == src[pr];
        unsigned gb = __ballot_sync(LZ4_FULL, !good);
        if (gb) {
          back += __ffs(gb) - 1;
          break;
        }
        back += 32;
      }
      s -= back;
      r -= back;
      mlen += back;
      u32 lit = s - anchor;
      u32 need = lz4_seq_size(lit, true, mlen - LZ4_MINMATCH);
      if (op + need >= len) return len;
      lz4_emit(dst + op, src + anchor, lit, true, s - r, mlen - LZ4_MINMATCH, lane);
      op += need;
      pos = anchor = s + mlen;
      // Like LZ4, remember the position two bytes before the match end.
      if (lane == 0) tab[lz4_hash6(lz4_rd32(src + pos - 2), lz4_rd32(src + pos + 2) & LZ4_KEY2MASK)] = (u16)(pos - 2);
      __syncwarp();
      tested = 0;
      fresh = true;
    }
  }
  u32 lit = len - anchor;
  u32 need = lz4_seq_size(lit, false, 0);
  if (op + need >= len) return len;
  lz4_emit(dst + op, src + anchor, lit, false, 0, 0, lane);
  return op + need;
}

// grid = ceil(n*spc / LZ4_WPB) CTAs of 32*LZ4_WPB threads.
// A persistent grid: each warp takes the next stream from *next (zeroed
// before the launch) until none is left, so warps stay busy although
// streams differ a lot in cost. Which warp compresses a stream never
// changes its bytes: the atomic only hands out work.
extern "C" __global__ void __launch_bounds__(32 * LZ4_WPB)
lz4_compress(const u8* __restrict__ shuf, u8* __restrict__ lzout, u32* __restrict__ csizes,
             u32 nbytes, u32 T, u32 blocksize, u32 n, u32 accel, u32* __restrict__ next) {
  __shared__ __align__(16) u16 tabs[LZ4_WPB][LZ4_HSIZE];
  Geom g = lz4_geom(nbytes, T, blocksize);
  u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u32 total = n * g.spc;  // the host keeps this below 2^31
  for (;;) {
    u32 gw = 0;
    if (lane == 0) gw = atomicAdd(next, 1u);
    gw = __shfl_sync(LZ4_FULL, gw, 0);
    if (gw >= total) return;  // whole warp leaves together
    u32 c = gw / g.spc, s = gw % g.spc;
    u32 off, len;
    lz4_stream_at(g, s, off, len);
    u64 base = (u64)c * g.cstride + off;
    u32 size = lz4_block(shuf + base, lzout + base, len, tabs[warp], accel < 1 ? 1 : accel, lane);
    if (lane == 0) csizes[gw] = size;
    __syncwarp();
  }
}

// ---------------------------------------------------------------------------
// lz4_assemble: one CTA of 128 threads per (chunk, block).

#define LZ4_ASM_CTA 128

__device__ __forceinline__ void lz4_put32(u8* p, u32 v) {
  p[0] = (u8)v;
  p[1] = (u8)(v >> 8);
  p[2] = (u8)(v >> 16);
  p[3] = (u8)(v >> 24);
}

// lz4_copy copies n bytes with the whole CTA; 16-byte words when both ends
// allow it.
__device__ __forceinline__ void lz4_copy(u8* dst, const u8* src, u32 n) {
  if ((((unsigned long long)dst | (unsigned long long)src) & 15) == 0) {
    u32 nw = n / 16;
    const uint4* s4 = (const uint4*)src;
    uint4* d4 = (uint4*)dst;
    for (u32 i = threadIdx.x; i < nw; i += blockDim.x) d4[i] = s4[i];
    for (u32 i = nw * 16 + threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
    return;
  }
  for (u32 i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
}

extern "C" __global__ void __launch_bounds__(LZ4_ASM_CTA)
lz4_assemble(const u8* __restrict__ in, const u8* __restrict__ shuf, const u8* __restrict__ lzout,
             const u32* __restrict__ csizes, u8* __restrict__ out, u32 ostride, u32* __restrict__ sizes,
             u32 nbytes, u32 T, u32 blocksize, u32 n, u32 memcpy_only) {
  __shared__ u32 red[2][LZ4_ASM_CTA];
  Geom g = lz4_geom(nbytes, T, blocksize);
  u32 c = blockIdx.x / g.nblocks, b = blockIdx.x % g.nblocks;
  if (c >= n) return;
  const u32* cs = csizes + (u64)c * g.spc;
  u32 first = b * g.nsp;
  u32 nst = b < g.nfull ? g.nsp : 1;
  // Total stored size of the chunk and of the streams before block b.
  u32 tot = 0, pre = 0;
  for (u32 s = threadIdx.x; s < g.spc && !memcpy_only; s += blockDim.x) {
    u32 v = 4 + cs[s];
    tot += v;
    if (s < first) pre += v;
  }
  red[0][threadIdx.x] = tot;
  red[1][threadIdx.x] = pre;
  __syncthreads();
  for (u32 k = LZ4_ASM_CTA / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) {
      red[0][threadIdx.x] += red[0][threadIdx.x + k];
      red[1][threadIdx.x] += red[1][threadIdx.x + k];
    }
    __syncthreads();
  }
  u32 hdr = 16 + 4 * g.nblocks;
  u32 total = hdr + red[0][0];
  u32 bstart = hdr + red[1][0];
  bool memcpyed = memcpy_only || nbytes < 128 || total > nbytes + 16;
  u8* o = out + (u64)c * ostride;
  u32 flags = 0x01 | (1u << 5) | ((T <= 16 && g.bs / T >= 128) ? 0 : 0x10);
  if (memcpyed) flags |= 0x02;
  u32 cbytes = memcpyed ? nbytes + 16 : total;
  if (b == 0 && threadIdx.x == 0) {
    o[0] = 2;  // blosc format version
    o[1] = 1;  // lz4 format version
    o[2] = (u8)flags;
    o[3] = (u8)T;
    lz4_put32(o + 4, nbytes);
    lz4_put32(o + 8, g.bs);
    lz4_put32(o + 12, cbytes);
    sizes[c] = cbytes;
  }
  u32 bsize = b < g.nfull ? g.bs : g.leftover;
  if (memcpyed) {
    lz4_copy(o + 16 + b * g.bs, in + (u64)c * nbytes + b * g.bs, bsize);
    return;
  }
  if (threadIdx.x == 0) lz4_put32(o + 16 + 4 * b, bstart);
  u32 p = bstart;
  for (u32 j = 0; j < nst; j++) {
    u32 s = first + j;
    u32 sz = cs[s], off, len;
    lz4_stream_at(g, s, off, len);
    if (threadIdx.x == 0) lz4_put32(o + p, sz);
    p += 4;
    const u8* src = (sz == len ? shuf : lzout) + (u64)c * g.cstride + off;
    lz4_copy(o + p, src, sz);
    p += sz;
  }
}
