// blosc.cuh: what the blosc1 codecs on the GPU share (lz4.cu: blosc-lz4,
// zstd.cu: blosc-zstd): the block geometry of a chunk, the shuffle
// kernels (byte, bit, none) that lay each chunk out as its blosc blocks
// will be compressed, and small copy helpers. Included by the .cu files;
// their PTX/cubin source hash covers this file too (scripts/ptx.sh).
//
// The block size bs and the split decision come from the host, which takes
// them from internal/blosc.Geometry, the one definition the CPU encoder
// follows too; everything else here is arithmetic on them:
//   nblocks = ceil(nbytes / bs), the last block short when bs does not
//   divide nbytes; a full block is split into T streams of bs/T bytes when
//   split, the short last block never is.
//
// Shuffles, per block of bsize bytes and ne = bsize/T elements (c-blosc
// 1.x, as internal/blosc/shuffle.go does it):
//   byte: out[j*ne + i] = in[i*T + j], trailing bsize % T bytes copied
//   bit:  bit k of byte j of element i goes to bit i%8 of byte
//         (j*8 + k)*ne/8 + i/8 (one row of ne bits per bit of the element);
//         a block whose ne is not a multiple of 8 is copied unchanged, and
//         the trailing bsize % T bytes are copied
//   none: a copy
// Output: chunk c's blocks at shuf + c*cstride + b*bs, cstride = nbytes
// rounded up to 16, so the compressors read every stream in place.
//
// blosc_plan (below) replays c-blosc's sequential stored/raw/memcpyed
// decisions from the compressed stream sizes, for both compressors.
#pragma once

#ifndef __CUDACC__
#include "emu/cuda_emu.h"
#endif

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;

// Shuffle modes (the host's blosc.Shuffle mapped by internal/gpu).
#define BLOSC_NOSHUF 0
#define BLOSC_BYTESHUF 1
#define BLOSC_BITSHUF 2

// Header flag bits (c-blosc README_HEADER.rst).
#define BLOSC_FLAG_MEMCPYED 0x02

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

__host__ __device__ __forceinline__ Geom blosc_geom(u32 nbytes, u32 T, u32 bs, u32 split) {
  Geom g;
  g.nbytes = nbytes;
  g.T = T;
  g.bs = bs ? bs : 1;  // 0 only for an empty chunk
  g.nsp = split ? T : 1;
  g.neblock = g.bs / g.nsp;
  g.nfull = nbytes / g.bs;
  g.leftover = nbytes % g.bs;
  g.nblocks = g.nfull + (g.leftover ? 1 : 0);
  g.spc = g.nfull * g.nsp + (g.leftover ? 1 : 0);
  g.cstride = (nbytes + 15u) & ~15u;
  return g;
}

// blosc_stream_at returns the offset and length of stream s of a chunk.
__host__ __device__ __forceinline__ void blosc_stream_at(const Geom& g, u32 s, u32& off, u32& len) {
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

__device__ __forceinline__ void blosc_put32(u8* p, u32 v) {
  p[0] = (u8)v;
  p[1] = (u8)(v >> 8);
  p[2] = (u8)(v >> 16);
  p[3] = (u8)(v >> 24);
}

// blosc_header writes the 16-byte blosc1 header.
__device__ __forceinline__ void blosc_header(u8* o, u32 versionlz, u32 flags, u32 T, u32 nbytes, u32 bs,
                                             u32 cbytes) {
  o[0] = 2;  // BLOSC_VERSION_FORMAT of c-blosc 1.x
  o[1] = (u8)versionlz;
  o[2] = (u8)flags;
  o[3] = (u8)T;
  blosc_put32(o + 4, nbytes);
  blosc_put32(o + 8, bs);
  blosc_put32(o + 12, cbytes);
}

// blosc_copy copies n bytes with the whole CTA; 16-byte words when both
// ends allow it.
__device__ __forceinline__ void blosc_copy(u8* dst, const u8* src, u32 n) {
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

// ---------------------------------------------------------------------------
// blosc_shuffle: byte shuffle or plain copy (mode BLOSC_BYTESHUF or
// BLOSC_NOSHUF). shuf[c*cstride + o] for every output byte o of every chunk.
// grid = n * ceil(cstride/4096) CTAs of 256 threads, one thread per 16
// output bytes. When every block holds a multiple of 16 elements and T is
// 1, 2, 4 or 8 (the usual case), thread k instead shuffles elements
// 16k..16k+15 with 16-byte loads and stores (blosc_shuf16); else each
// thread gathers its 16 output bytes one by one.

#define BLOSC_SHUF_CTA 256
#define BLOSC_SHUF_TILE (BLOSC_SHUF_CTA * 16)

// blosc_shuf16 shuffles 16 elements of T bytes at src (16-byte aligned)
// into 16 bytes of each of the T planes dst + j*nelem.
template <int T>
__device__ __forceinline__ void blosc_shuf16(const u8* src, u8* dst, u32 nelem) {
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

extern "C" __global__ void __launch_bounds__(BLOSC_SHUF_CTA)
blosc_shuffle(const u8* __restrict__ in, u8* __restrict__ shuf, u32 nbytes, u32 T, u32 bs, u32 n, u32 mode) {
  Geom g = blosc_geom(nbytes, T, bs, 0);
  u32 tiles = (g.cstride + BLOSC_SHUF_TILE - 1) / BLOSC_SHUF_TILE;
  u32 c = blockIdx.x / tiles;
  if (c >= n) return;
  u32 o0 = (blockIdx.x % tiles) * BLOSC_SHUF_TILE + threadIdx.x * 16;
  // A byte shuffle of 1-byte elements is a copy.
  bool copy = mode == BLOSC_NOSHUF || T == 1;
  bool aligned = nbytes % 16 == 0 && ((unsigned long long)in & 15) == 0;
  if (copy && aligned) {
    if (o0 >= nbytes) return;
    *(uint4*)(shuf + (u64)c * g.cstride + o0) = *(const uint4*)(in + (u64)c * nbytes + o0);
    return;
  }
  if (!copy && aligned && (T == 2 || T == 4 || T == 8) && g.bs % (16 * T) == 0 && g.leftover % (16 * T) == 0) {
    u32 k = o0 / 16;  // group of 16 elements
    u32 x = k * 16 * T;
    if (x >= nbytes) return;
    u32 b = x / g.bs, r = x % g.bs;
    u32 nelem = (b < g.nfull ? g.bs : g.leftover) / T;
    const u8* src = in + (u64)c * nbytes + x;
    u8* dst = shuf + (u64)c * g.cstride + b * g.bs + r / T;
    switch (T) {
      case 2: blosc_shuf16<2>(src, dst, nelem); break;
      case 4: blosc_shuf16<4>(src, dst, nelem); break;
      default: blosc_shuf16<8>(src, dst, nelem); break;
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
      if (copy) {
        v = src[o];
      } else {
        u32 b = o / g.bs, r = o % g.bs;
        u32 bsize = b < g.nfull ? g.bs : g.leftover;
        u32 nelem = bsize / T;
        // The trailing bsize % T bytes of a block stay where they are.
        if (r >= nelem * T) {
          v = src[o];
        } else {
          u32 j = r / nelem, i = r % nelem;
          v = src[b * g.bs + i * T + j];
        }
      }
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
// blosc_bitshuffle: the bit shuffle, one CTA of 256 threads per (chunk,
// block): grid = n * nblocks.

#define BLOSC_BIT_CTA 256

// blosc_trans8x8 transposes the 8x8 bit matrix x (byte r = row r, bit c =
// column c); it is its own inverse (bitshuffle's TRANS_BIT_8X8).
__host__ __device__ __forceinline__ u64 blosc_trans8x8(u64 x) {
  u64 t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
  return x ^ t ^ (t << 28);
}

// blosc_bit32 bit-shuffles elements 8*ii .. 8*ii+31 of src (one thread's
// share) and stores 4 bytes of each of the 8*T bit rows at dst + row*nbr +
// ii (4-byte aligned: nbr % 4 == 0 and dst aligned). Byte plane by byte
// plane: gather byte j of 8 elements, transpose the 8x8 bit matrix, and
// collect 4 such columns per row.
__device__ __forceinline__ void blosc_bit32(const u8* src, u8* dst, u32 T, u32 nbr, u32 ii) {
  for (u32 j = 0; j < T; j++) {
    u32 out[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const u8* s = src + (u64)(ii + q) * 8 * T + j;
      u64 x = 0;
#pragma unroll
      for (int e = 0; e < 8; e++) x |= (u64)s[e * T] << (8 * e);
      x = blosc_trans8x8(x);
#pragma unroll
      for (int kk = 0; kk < 8; kk++) out[kk] |= (u32)((x >> (8 * kk)) & 255u) << (8 * q);
    }
#pragma unroll
    for (int kk = 0; kk < 8; kk++) *(u32*)(dst + (u64)(j * 8 + kk) * nbr + ii) = out[kk];
  }
}

extern "C" __global__ void __launch_bounds__(BLOSC_BIT_CTA)
blosc_bitshuffle(const u8* __restrict__ in, u8* __restrict__ shuf, u32 nbytes, u32 T, u32 bs, u32 n) {
  Geom g = blosc_geom(nbytes, T, bs, 0);
  u32 c = blockIdx.x / g.nblocks, b = blockIdx.x % g.nblocks;
  if (c >= n) return;
  u32 bsize = b < g.nfull ? g.bs : g.leftover;
  const u8* src = in + (u64)c * nbytes + (u64)b * g.bs;
  u8* dst = shuf + (u64)c * g.cstride + (u64)b * g.bs;
  u32 ne = bsize / T, done = 0;
  if (ne % 8 == 0) {
    u32 nbr = ne / 8;  // bytes per bit row
    if (nbr % 4 == 0 && (((unsigned long long)dst & 3) == 0)) {
      for (u32 ii = 4 * threadIdx.x; ii < nbr; ii += 4 * blockDim.x) blosc_bit32(src, dst, T, nbr, ii);
    } else {
      for (u32 ii = threadIdx.x; ii < nbr; ii += blockDim.x) {
        for (u32 j = 0; j < T; j++) {
          u64 x = 0;
          for (u32 e = 0; e < 8; e++) x |= (u64)src[(ii * 8 + e) * T + j] << (8 * e);
          x = blosc_trans8x8(x);
          for (u32 kk = 0; kk < 8; kk++) dst[(u64)(j * 8 + kk) * nbr + ii] = (u8)(x >> (8 * kk));
        }
      }
    }
    done = ne * T;
  }
  for (u32 i = done + threadIdx.x; i < bsize; i += blockDim.x) dst[i] = src[i];
}

// ---------------------------------------------------------------------------
// blosc_plan: one thread per chunk walks its streams in order, as c-blosc's
// blosc_c writes them into a destination of nbytes + 16 bytes (numcodecs'
// destsize): each stream gets maxout = min(stream length, room left) for
// the compressor, is stored raw when its compressed form (csizes: the
// length, or the stream's length when it did not shrink) is longer than
// that (the compressor fails) or does not shrink it, and the whole chunk
// is MEMCPYED once a stream no longer fits (or for clevel 0 and chunks
// under 128 bytes). stored[stream] = bytes stored, bstarts[chunk*nblocks
// + b] = block starts, plan[chunk] = the buffer's length or 0 for
// MEMCPYED. grid = ceil(n / BLOSC_PLAN_CTA).

#define BLOSC_PLAN_CTA 128

extern "C" __global__ void __launch_bounds__(BLOSC_PLAN_CTA)
blosc_plan(const u32* __restrict__ csizes, u32* __restrict__ stored,
         u32* __restrict__ bstarts, u32* __restrict__ plan, u32 nbytes, u32 T, u32 bs, u32 split, u32 n,
         u32 memcpy_only) {
  u32 c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= n) return;
  Geom g = blosc_geom(nbytes, T, bs, split);
  u64 limit = (u64)nbytes + 16, pos = 16 + 4 * (u64)g.nblocks;
  bool mc = memcpy_only || nbytes < 128 || pos > limit;
  u64 s0 = (u64)c * g.spc;
  for (u32 b = 0, s = 0; b < g.nblocks && !mc; b++) {
    bstarts[(u64)c * g.nblocks + b] = (u32)pos;
    u32 nst = b < g.nfull ? g.nsp : 1;
    for (u32 j = 0; j < nst; j++, s++) {
      u32 off, len;
      blosc_stream_at(g, s, off, len);
      pos += 4;
      if (pos >= limit) {  // maxout <= 0
        mc = true;
        break;
      }
      u64 maxout = limit - pos < len ? limit - pos : len;
      u32 cs = csizes[s0 + s], st = cs;
      if (cs >= len || cs > maxout) {
        if (pos + len > limit) {
          mc = true;
          break;
        }
        st = len;
      }
      stored[s0 + s] = st;
      pos += st;
    }
  }
  plan[c] = mc ? 0u : (u32)pos;
}
