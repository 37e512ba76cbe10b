// lz4.cu: blosc1 + shuffle (byte, bit or none) + LZ4 on the GPU, one
// blosc1 buffer per inner chunk, readable by c-blosc (numcodecs,
// tensorstore) and by our CPU decoder.
//
// A batch of n chunks of nbytes each (chunk i at in + i*nbytes) goes through
// three kernels on one stream:
//
//   blosc_shuffle /      in   -> shuf    the shuffle per blosc block (by the
//   blosc_bitshuffle                     element size T), laid out like the
//   (blosc.cuh)                          blosc streams: chunk c at c*cstride
//   lz4_compress  shuf    -> lzout   one warp per blosc stream: LZ4 with
//                                    LZ4_compress_fast's exact choices
//                                    (hash table in shared memory, 32 of
//                                    its search tests per step, c-blosc's
//                                    acceleration 10 - clevel);
//                                    csizes[stream] = LZ4 size, or the
//                                    stream length when it did not shrink
//                                    (blosc's "stored raw" marker)
//   blosc_plan    sizes   -> plan    one thread per chunk: c-blosc's
//   (blosc.cuh)                      sequential raw/memcpyed decisions
//   lz4_assemble  all     -> out     header, bstarts and [i32 size][bytes]
//                                    streams of chunk c at out + c*ostride,
//                                    or the MEMCPYED form; sizes[c] = its
//                                    length
//
// Parallel over chunks and over the streams of a chunk. Nothing decides a
// layout through atomics or timing, so the output depends only on the
// input bytes and (nbytes, T, bs, split, shuffle, clevel): deterministic.
// And it is the CPU encoder's output (internal/blosc, c-blosc's algorithm
// with lz4's LZ4_compress_fast), byte for byte: TestLZ4EmulatorMatchesCPU.
//
// blosc rules followed (c-blosc blosc.c, blosc_c/blosc_d): the block size
// bs and the split decision come from the host (internal/blosc.Geometry,
// see blosc.cuh); LZ4 gets maxout = min(stream length, room left in a
// destination of nbytes + 16) and a stream is stored raw when that fails
// or does not shrink it (size == stream length); the chunk is MEMCPYED
// when nbytes < 128, at clevel 0, or once a stream no longer fits. The
// header flags (shuffle, DONT_SPLIT, compressor code 1) come from the host.
//
// LZ4 rules (lz4 Block_format.md): minmatch 4, the last 5 bytes are
// literals, the last match starts at least 12 bytes before the end,
// offsets 1..65535 (streams are at most 64 KiB).
//
// The same source compiles with g++ against emu/cuda_emu.h, which runs
// each CUDA thread as a fiber; that is how the kernels are tested on
// machines without a GPU (see emu/).

#include "blosc.cuh"

#define LZ4_FULL 0xffffffffu
// Hash table per warp: 2^13 u16 positions = 16 KiB of shared memory, the
// table LZ4_compress_fast uses for inputs under 64 KiB (LZ4_HASHLOG 12 + 1
// for its byU16 mode). With the same table and hash the parse below makes
// exactly LZ4's choices, so the GPU writes the bytes the CPU encoder
// (internal/blosc, a port of LZ4_compress_fast) writes. A smaller table
// is faster (2^11 took xor from 55 to 75 GB/s on an H100, when the parse
// was not exact) but no longer matches the CPU byte for byte.
#ifndef LZ4_HLOG
#define LZ4_HLOG 13
#endif
#define LZ4_HSIZE (1u << LZ4_HLOG)
// Warps per CTA of lz4_compress (2 x 16 KiB of tables: static shared
// memory stops at 48 KiB). The grid is persistent and hands out streams
// one at a time, so a CTA's warps never wait for each other.
#define LZ4_WPB 2
#define LZ4_SKIP 6          // LZ4_skipTrigger
#define LZ4_MINMATCH 4
#define LZ4_LASTLITERALS 5  // LASTLITERALS
#define LZ4_MFLIMIT 12      // MFLIMIT
#define LZ4_MINLENGTH 13    // LZ4_minLength: shorter inputs are all literals

// ---------------------------------------------------------------------------
// lz4_compress: one warp per stream.

// lz4_rd32 reads 4 bytes at any address with two aligned loads. It may read
// up to 4 bytes past p+3; the scratch buffers carry padding for that.
__device__ __forceinline__ u32 lz4_rd32(const u8* p) {
  unsigned long long a = (unsigned long long)p;
  const u32* w = (const u32*)(a & ~3ull);
  return __funnelshift_r(__ldg(w), __ldg(w + 1), (u32)(a & 3) * 8);
}

// lz4_hash4 is LZ4_hash4 of lz4.c for the byU16 table.
__device__ __forceinline__ u32 lz4_hash4(u32 key) { return (key * 2654435761u) >> (32 - LZ4_HLOG); }

// lz4_tpos is the position of search test k of LZ4_compress_fast's match
// loop entered at t0: test 0 at t0, then steps of 1, and of
// (accel*64 + j - 1) >> 6 after test j >= 1 (searchMatchNb, skipTrigger 6).
// In closed form t_k = t0 + 1 + S(k-1) with S(m) = m*accel + F(m),
// F(m) = sum over i < m of floor(i/64).
__device__ __forceinline__ u32 lz4_tpos(u32 t0, u32 k, u32 accel) {
  if (k == 0) return t0;
  u32 m = k - 1, q = m >> LZ4_SKIP, r = m & 63;
  return t0 + 1 + m * accel + 32 * q * (q ? q - 1 : 0) + q * r;
}

// lz4_len_ext writes the 255-run and final byte of a length >= 15; it
// returns the bytes written.
__device__ __forceinline__ u32 lz4_len_ext(u8* dst, u32 v, u32 lane) {
  u32 r = v - 15, n255 = r / 255;
  for (u32 i = lane; i < n255; i += 32) dst[i] = 255;
  if (lane == 0) dst[n255] = (u8)(r - n255 * 255);
  return n255 + 1;
}

// lz4_ext is the number of extension bytes of a length field value v.
__device__ __forceinline__ u32 lz4_ext(u32 v) { return v >= 15 ? (v - 15) / 255 + 1 : 0; }

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

// lz4_block compresses src[0:len) (len <= 64 KiB) into dst (capacity len)
// making LZ4_compress_fast's choices, 32 of its search tests at a time:
// lane i takes test i of the sequence LZ4 would try next, its candidate is
// the table entry as LZ4 would find it (an earlier lane of the same step
// with the same hash, else the table), and the earliest lane that matches
// is LZ4's match. It returns the LZ4 size, or len when the result would
// not be shorter: blosc stores the stream raw then.
//
// LZ4 in c-blosc runs with limitedOutput (a buffer of maxout bytes); its
// checks never fail when the whole output fits: each leaves room for
// bytes that always follow (2 + 1 + LASTLITERALS after literals, 1 +
// LASTLITERALS after a match, the last literals exactly). So LZ4 with
// maxout bytes succeeds iff the size returned here is at most maxout,
// which is what lz4_plan tests.
//
// Called by a whole warp; control flow around warp collectives is
// warp-uniform.
__device__ u32 lz4_block(const u8* src, u8* dst, u32 len, u16* tab, u32 accel, u32 lane) {
  for (u32 i = lane; i < LZ4_HSIZE / 2; i += 32) ((u32*)tab)[i] = 0;
  __syncwarp();
  u32 op = 0, anchor = 0;
  if (len >= LZ4_MINLENGTH) {
    const u32 mfl1 = len - LZ4_MFLIMIT + 1;  // mfLimitPlusOne
    const u32 mend = len - LZ4_LASTLITERALS;  // matchLimit
    // LZ4 puts position 0 into the (zeroed) table, a no-op, and enters its
    // search loop at 1. special: the step's lane 0 is instead LZ4's "test
    // next position" right after a match, at the anchor.
    bool special = false;
    u32 t0 = 1, kb = 0;  // search loop start and tests done since
    for (;;) {
      u32 q;
      bool valid;
      if (special && lane == 0) {
        q = anchor;
        valid = q < mfl1;
      } else {
        u32 k = kb + lane - (special ? 1u : 0u);
        q = lz4_tpos(t0, k, accel);
        // LZ4 tests a position only if the next one stays within limits.
        valid = lz4_tpos(t0, k + 1, accel) <= mfl1;
      }
      // Invalid lanes read at 0: in bounds, and ignored.
      u32 key = lz4_rd32(src + (valid ? q : 0));
      u32 h = lz4_hash4(key);
      // The candidate LZ4 would read: the nearest earlier lane with the
      // same hash (it was put into the table just before), else the table.
      unsigned same = __match_any_sync(LZ4_FULL, valid ? h : (0x80000000u | lane));
      unsigned earlier = same & ((1u << lane) - 1u);
      u32 jl = earlier ? 31 - __clz(earlier) : lane;
      u32 qj = __shfl_sync(LZ4_FULL, q, jl), kj = __shfl_sync(LZ4_FULL, key, jl);
      u32 ref;
      bool ok;
      if (earlier) {
        ref = qj;
        ok = valid && kj == key;
      } else {
        ref = tab[h];
        ok = valid && ref < q && lz4_rd32(src + ref) == key;
      }
      unsigned mb = __ballot_sync(LZ4_FULL, ok);
      u32 f = mb ? (u32)(__ffs(mb) - 1) : 32u;
      // LZ4 puts every position it tests, up to the match, into the
      // table; among lanes hitting one slot the last (highest) wins.
      bool ins = valid && lane <= f;
      unsigned grp = __match_any_sync(LZ4_FULL, ins ? h : (0x80000000u | lane));
      __syncwarp();
      if (ins && (grp >> lane) == 1u) tab[h] = (u16)q;
      __syncwarp();
      if (!mb) {
        if (__ballot_sync(LZ4_FULL, !valid)) break;  // LZ4 gave up: last literals
        kb += special ? 31 : 32;
        special = false;
        continue;
      }
      bool sp = special && f == 0;
      u32 s = __shfl_sync(LZ4_FULL, q, f);
      u32 r = __shfl_sync(LZ4_FULL, ref, f);
      // Extend forward to matchLimit, 128 bytes per round (4 per lane).
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
      // Catch up: extend backward into the pending literals (LZ4 does not
      // after the test at the anchor, where none are pending anyway).
      u32 back = 0;
      while (!sp && s > anchor) {
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
      u32 lit = s - anchor, mc = mlen - LZ4_MINMATCH;
      u32 end = op + 1 + lz4_ext(lit) + lit + 2 + lz4_ext(mc);
      if (end >= len) return len;  // would not shrink: raw
      lz4_emit(dst + op, src + anchor, lit, true, s - r, mc, lane);
      op = end;
      anchor = s + mlen;
      if (anchor >= mfl1) break;
      // LZ4 puts the position two bytes before the match end in the table.
      if (lane == 0) tab[lz4_hash4(lz4_rd32(src + anchor - 2))] = (u16)(anchor - 2);
      __syncwarp();
      special = true;
      t0 = anchor + 1;
      kb = 0;
    }
  }
  u32 lit = len - anchor;
  u32 n = op + 1 + lz4_ext(lit) + lit;
  if (n >= len) return len;
  lz4_emit(dst + op, src + anchor, lit, false, 0, 0, lane);
  return n;
}

// grid = ceil(n*spc / LZ4_WPB) CTAs of 32*LZ4_WPB threads.
// A persistent grid: each warp takes the next stream from *next (zeroed
// before the launch) until none is left, so warps stay busy although
// streams differ a lot in cost. Which warp compresses a stream never
// changes its bytes: the atomic only hands out work.
extern "C" __global__ void __launch_bounds__(32 * LZ4_WPB)
lz4_compress(const u8* __restrict__ shuf, u8* __restrict__ lzout, u32* __restrict__ csizes, u32 nbytes, u32 T, u32 bs, u32 split, u32 n, u32 accel, u32* __restrict__ next) {
  __shared__ __align__(16) u16 tabs[LZ4_WPB][LZ4_HSIZE];
  Geom g = blosc_geom(nbytes, T, bs, split);
  u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u32 total = n * g.spc;  // the host keeps this below 2^31
  for (;;) {
    u32 gw = 0;
    if (lane == 0) gw = atomicAdd(next, 1u);
    gw = __shfl_sync(LZ4_FULL, gw, 0);
    if (gw >= total) return;  // whole warp leaves together
    u32 c = gw / g.spc, s = gw % g.spc;
    u32 off, len;
    blosc_stream_at(g, s, off, len);
    u64 base = (u64)c * g.cstride + off;
    u32 size = lz4_block(shuf + base, lzout + base, len, tabs[warp], accel < 1 ? 1 : accel, lane);
    if (lane == 0) csizes[gw] = size;
    __syncwarp();
  }
}

// ---------------------------------------------------------------------------
// lz4_assemble: one CTA of 128 threads per (chunk, block) writes what
// blosc_plan decided. flags is the header's flags byte without MEMCPYED
// (shuffle bits, DONT_SPLIT, the compressor code); the kernel adds
// MEMCPYED where the plan stores a chunk so.

#define LZ4_ASM_CTA 128

extern "C" __global__ void __launch_bounds__(LZ4_ASM_CTA)
lz4_assemble(const u8* __restrict__ in, const u8* __restrict__ shuf, const u8* __restrict__ lzout,
             const u32* __restrict__ stored, const u32* __restrict__ bstarts, const u32* __restrict__ plan,
             u8* __restrict__ out, u32 ostride, u32* __restrict__ sizes, u32 nbytes, u32 T, u32 bs, u32 split, u32 n,
             u32 flags) {
  Geom g = blosc_geom(nbytes, T, bs, split);
  u32 c = blockIdx.x / g.nblocks, b = blockIdx.x % g.nblocks;
  if (c >= n) return;
  u32 total = plan[c];
  bool memcpyed = total == 0;
  u8* o = out + (u64)c * ostride;
  u32 cbytes = memcpyed ? nbytes + 16 : total;
  if (b == 0 && threadIdx.x == 0) {
    blosc_header(o, 1 /* BLOSC_LZ4_VERSION_FORMAT */, memcpyed ? flags | BLOSC_FLAG_MEMCPYED : flags, T, nbytes,
                 g.bs, cbytes);
    sizes[c] = cbytes;
  }
  u32 bsize = b < g.nfull ? g.bs : g.leftover;
  if (memcpyed) {
    blosc_copy(o + 16 + (u64)b * g.bs, in + (u64)c * nbytes + (u64)b * g.bs, bsize);
    return;
  }
  u32 p = bstarts[(u64)c * g.nblocks + b];
  if (threadIdx.x == 0) blosc_put32(o + 16 + 4 * b, p);
  u32 first = b * g.nsp, nst = b < g.nfull ? g.nsp : 1;
  const u32* st = stored + (u64)c * g.spc;
  for (u32 j = 0; j < nst; j++) {
    u32 s = first + j;
    u32 sz = st[s], off, len;
    blosc_stream_at(g, s, off, len);
    if (threadIdx.x == 0) blosc_put32(o + p, sz);
    p += 4;
    const u8* src = (sz == len ? shuf : lzout) + (u64)c * g.cstride + off;
    blosc_copy(o + p, src, sz);
    p += sz;
  }
}
