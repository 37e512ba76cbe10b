// zstd.cu: a zstd encoder (RFC 8878) that turns each frame of a batch into
// one standard frame: Single_Segment, frame content size set, no checksum.
// A frame is a chunk (the zstd codec) or a blosc block (blosc-zstd, whose
// kernels are at the end; blosc.cuh shuffles its blocks first).
//
// Work split: one CTA (ZS_NT threads) per zstd block of up to 128 KiB, so a
// batch runs parallel over chunks and over the blocks of each chunk. Inside a
// CTA every thread parses its own segment (ZS_SEG bytes, shorter in a short
// block) with a private hash table in shared memory (primed with the bytes
// before the segment, so matches may reach back into earlier segments and
// blocks of the same frame) and a block-wide first-occurrence table. Two
// parses: ZS_PARSE_FAST (greedy, skipping) and ZS_PARSE_LAZY (bigger
// tables, lazy matching); zstd.go maps levels to them. The literals are then
// Huffman coded by all threads at once (bit offsets from a prefix sum, words
// merged with atomicOr on disjoint bits) and the sequences FSE coded by one
// thread (the state chain is serial; many CTAs in flight hide it). A last
// kernel assembles the frames.
//
// Output depends only on a frame's bytes and the parse: no atomics decide
// placement and no adaptivity depends on the grid, so runs are
// byte-identical.
//
// The same source compiles with g++ against emu/cuda_emu.h, which runs every
// CUDA thread as a fiber: that is how the encoder is checked against
// klauspost/compress on machines without a GPU (emu/zstd_emu.cu).

#include "blosc.cuh"  // u8..u64, the emulator on the host, blosc-zstd's shuffles

#define ZD __device__ __forceinline__
#define ZDN __device__ __noinline__
#define ZCONST __constant__
#define ZS_UNROLL _Pragma("unroll")
#define ZS_ATOMIC_OR(p, v) atomicOr((p), (v))
#define ZS_ATOMIC_ADD(p, v) atomicAdd((p), (v))
#define ZS_ATOMIC_MIN(p, v) atomicMin((p), (v))

// ---------------------------------------------------------------- parameters
#define ZS_NT 32                      // threads (segments) per CTA
#define ZS_BLOCK (128 * 1024)         // zstd Block_Maximum_Size
#define ZS_SEG (ZS_BLOCK / ZS_NT)     // bytes each thread parses
#ifndef ZS_HLOG
#define ZS_HLOG 8                     // hash table entries per thread (log2)
#endif
#define ZS_HSIZE (1 << ZS_HLOG)
#ifndef ZS_PRIME
#define ZS_PRIME 1024                 // bytes before a segment hashed first
#endif
#ifndef ZS_PSTEP
#define ZS_PSTEP 2                    // priming stride
#endif
#ifndef ZS_SKIP
#define ZS_SKIP 6                     // miss acceleration: step = 1 + run>>SKIP
#endif
#ifndef ZS_MM
#define ZS_MM 6                       // bytes hashed; a match needs >= 4
#endif
#ifndef ZS_GLOG
#define ZS_GLOG 11                    // block-wide first-occurrence table (log2)
#endif
#ifndef ZS_GMM
#define ZS_GMM 8                      // bytes hashed for the block-wide table
#endif
#ifndef ZS_GPSTEP
#define ZS_GPSTEP 2                   // stride over the previous block (1 or 2)
#endif
// The lazy parse (ZS_PARSE_LAZY): its own per-thread tables of 2-way
// buckets (the two most recent positions per hash of ZL_MM bytes), a
// longer priming window, a 4x block-wide table (needed for repeats at 8
// KiB and more: the "thirds" gradient), no skipping to speak of, and lazy
// matching ZL_DEPTH positions deep. Chosen on the emulator's ratios
// (TestZstdEmulatorLevels): 4-byte keys and 2-way buckets are what noisy
// camera data gains from; rejecting short far matches only lost.
#ifndef ZL_MM
#define ZL_MM 4                       // bytes hashed
#endif
#ifndef ZL_HLOG
#define ZL_HLOG 8                     // buckets per thread (log2)
#endif
#ifndef ZL_PRIME
#define ZL_PRIME 2048                 // bytes before a segment hashed first
#endif
#ifndef ZL_GLOG
#define ZL_GLOG 13                    // block-wide first-occurrence table (log2)
#endif
#ifndef ZL_SKIP
#define ZL_SKIP 10                    // miss acceleration: step = 1 + run>>SKIP
#endif
#ifndef ZL_DEPTH
#define ZL_DEPTH 1                    // positions tried past a match
#endif
// Parses (zstd_blocks' parse argument; zstd.go maps levels to them).
#define ZS_PARSE_FAST 0
#define ZS_PARSE_LAZY 1
#ifndef ZS_SEGMIN
#define ZS_SEGMIN 1024                // shortest segment of a short block
#endif
#define ZS_SEGSEQ (ZS_SEG / 4 + 1)    // sequences per segment, at most
#define ZS_LITCAP ZS_BLOCK
#define ZS_SEQCAP (ZS_NT * ZS_SEGSEQ * 8)
#define ZS_OUTCAP (ZS_BLOCK + 1024)
// Per-block scratch: compacted literals, sequences, the encoded block.
#define ZS_BLKSCR ((u64)ZS_LITCAP + ZS_SEQCAP + ZS_OUTCAP)
#define ZS_HUF_MAXBITS 11
#define ZS_RAWFLAG 0x80000000u        // blkSize: a raw block, body from the input

// ------------------------------------------------------------ format tables
ZCONST u32 zsLLBase[36] = {0,  1,  2,  3,  4,  5,  6,   7,   8,   9,    10,   11,
                           12, 13, 14, 15, 16, 18, 20,  22,  24,  28,   32,   40,
                           48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
ZCONST u8 zsLLBits[36] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  0,  0,  0,  1,  1,
                          1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
// Match length baselines minus 3 (mlBase).
ZCONST u32 zsMLBase[53] = {0,   1,   2,    3,    4,    5,    6,     7,     8,     9,     10,
                           11,  12,  13,   14,   15,   16,   17,    18,    19,    20,    21,
                           22,  23,  24,   25,   26,   27,   28,    29,    30,    31,    32,
                           34,  36,  38,   40,   44,   48,   56,    64,    80,    96,    128,
                           256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
ZCONST u8 zsMLBits[53] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1,
                          2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
// Predefined distributions (RFC 8878 3.1.1.3.2.2).
ZCONST short zsLLNorm[36] = {4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2,
                             2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1};
ZCONST short zsMLNorm[53] = {1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                             1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                             1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1};
ZCONST short zsOFNorm[29] = {1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1,
                             1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1};

// log2(1 + i/256) * 256, for integer cost estimates (identical on host and
// device, so the CPU build stays byte-identical to the GPU).
ZCONST u8 zsLog2Frac[256] = {0, 1, 3, 4, 6, 7, 9, 10, 11, 13, 14, 16, 17, 18, 20, 21, 22, 24, 25, 26, 28, 29, 30, 32, 33, 34, 36, 37, 38, 40, 41, 42, 44, 45, 46, 47, 49, 50, 51, 52, 54, 55, 56, 57, 59, 60, 61, 62, 63, 65, 66, 67, 68, 69, 71, 72, 73, 74, 75, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90, 92, 93, 94, 95, 96, 97, 98, 99, 100, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 178, 179, 180, 181, 182, 183, 184, 185, 185, 186, 187, 188, 189, 190, 191, 192, 192, 193, 194, 195, 196, 197, 198, 198, 199, 200, 201, 202, 203, 203, 204, 205, 206, 207, 208, 208, 209, 210, 211, 212, 212, 213, 214, 215, 216, 216, 217, 218, 219, 220, 220, 221, 222, 223, 224, 224, 225, 226, 227, 228, 228, 229, 230, 231, 231, 232, 233, 234, 234, 235, 236, 237, 238, 238, 239, 240, 241, 241, 242, 243, 244, 244, 245, 246, 247, 247, 248, 249, 249, 250, 251, 252, 252, 253, 254, 255, 255};

// ------------------------------------------------------------------ helpers
ZD u32 zsHighBit(u32 v) { return 31 - __clz(v); }                // v > 0
ZD u32 zsCtz64(u64 v) { return __ffsll((long long)v) - 1; }      // v > 0

// log2(x) * 256, x > 0.
ZD u32 zsLog2Fp(u32 x) {
  u32 hb = zsHighBit(x);
  u32 m = hb >= 8 ? (x >> (hb - 8)) & 255 : (x << (8 - hb)) & 255;
  return hb * 256 + zsLog2Frac[m];
}

// Unaligned little-endian loads. They read the aligned words that hold the
// wanted bytes (a misaligned 32-bit load faults on the GPU); each word read
// contains at least one wanted byte, so it lies inside the allocation.
ZD u32 zsRd32(const u8* p) {
  u64 a = (u64)p;
  const u32* w = (const u32*)(a & ~(u64)3);
  u32 sh = (u32)(a & 3) * 8;
  u32 lo = w[0];
  u32 hi = sh ? w[1] : 0;
  return __funnelshift_r(lo, hi, sh);
}
ZD u64 zsRd64(const u8* p) { return (u64)zsRd32(p) | ((u64)zsRd32(p + 4) << 32); }

// Hashes of the ZS_GMM / ZS_MM bytes at the low end of v (8 bytes loaded).
template <int GLOG>
ZD u32 zsGHashV(u64 v) { return (u32)(((v << (64 - 8 * ZS_GMM)) * 0xCF1BBCDCB7A56463ull) >> (64 - GLOG)); }
ZD u32 zsHashV(u64 v) {
#if ZS_MM == 4
  return ((u32)v * 2654435761u) >> (32 - ZS_HLOG);
#else
  return (u32)(((v << (64 - 8 * ZS_MM)) * 0xCF1BBCDCB7A56463ull) >> (64 - ZS_HLOG));
#endif
}


ZD u32 zsHash(const u8* p) { return zsHashV(zsRd64(p)); }

// Inserts positions [a, b) step 1 or 2 into the first-occurrence table,
// reading each input word once (a sliding 12-byte window) instead of 8
// bytes per position.
template <int GLOG>
ZD void zsGInsert(u32* gtab, const u8* src, u32 a, u32 b, u32 step, u32 chunkLen) {
  u32 p = a;
  if (p < b && p + 12 <= chunkLen) {
    u64 w = zsRd64(src + p);
    for (; p < b && p + 12 <= chunkLen; p += 4) {
      u32 nx = zsRd32(src + p + 8);
      ZS_ATOMIC_MIN(&gtab[zsGHashV<GLOG>(w)], p);
      if (step == 1 && p + 1 < b) ZS_ATOMIC_MIN(&gtab[zsGHashV<GLOG>((w >> 8) | ((u64)nx << 56))], p + 1);
      if (p + 2 < b) ZS_ATOMIC_MIN(&gtab[zsGHashV<GLOG>((w >> 16) | ((u64)nx << 48))], p + 2);
      if (step == 1 && p + 3 < b) ZS_ATOMIC_MIN(&gtab[zsGHashV<GLOG>((w >> 24) | ((u64)nx << 40))], p + 3);
      w = (w >> 32) | ((u64)nx << 32);
    }
  }
  for (; p < b && p + 8 <= chunkLen; p += step) ZS_ATOMIC_MIN(&gtab[zsGHashV<GLOG>(zsRd64(src + p))], p);
}

// Length of the common prefix of ip and m, not reading at or past end.
ZD u32 zsCount(const u8* ip, const u8* m, const u8* end) {
  const u8* s = ip;
  while (ip + 8 <= end) {
    u64 d = zsRd64(ip) ^ zsRd64(m);
    if (d) return (u32)(ip - s) + (zsCtz64(d) >> 3);
    ip += 8;
    m += 8;
  }
  while (ip < end && *ip == *m) ip++, m++;
  return (u32)(ip - s);
}

// Serial little-endian bit writer with a hard capacity: on overflow it stops
// writing and reports it (the block is then stored raw).
struct ZsBits {
  u8* p;
  u8* end;
  u64 acc;
  u32 n;
  u32 over;
};
ZD void zsBitsInit(ZsBits& b, u8* p, u8* end) {
  b.p = p;
  b.end = end;
  b.acc = 0;
  b.n = 0;
  b.over = 0;
}
ZD void zsBitsAdd(ZsBits& b, u32 v, u32 nb) {  // nb <= 24
  b.acc |= (u64)(v & ((1u << nb) - 1)) << b.n;
  b.n += nb;
  if (b.n >= 32) {
    if (b.p + 4 <= b.end) {
      b.p[0] = (u8)b.acc;
      b.p[1] = (u8)(b.acc >> 8);
      b.p[2] = (u8)(b.acc >> 16);
      b.p[3] = (u8)(b.acc >> 24);
    } else {
      b.over = 1;
    }
    b.p += 4;
    b.acc >>= 32;
    b.n -= 32;
  }
}
// Adds the end-mark bit and pads; returns bytes written since start.
ZD u32 zsBitsClose(ZsBits& b, u8* start) {
  zsBitsAdd(b, 1, 1);
  while (b.n > 0) {
    if (b.p < b.end) {
      *b.p = (u8)b.acc;
    } else {
      b.over = 1;
    }
    b.p++;
    b.acc >>= 8;
    b.n = b.n >= 8 ? b.n - 8 : 0;
  }
  return (u32)(b.p - start);
}

// ---------------------------------------------------------------------- FSE
// An FSE encoding table of up to S states and N symbols.
template <int S, int N>
struct ZsFseT {
  u16 st[S];     // state table
  u32 dnb[N];    // deltaNbBits per symbol
  i32 dfs[N];    // deltaFindState per symbol
  u32 tl;        // table log; 0 = RLE (no bits)
};
typedef ZsFseT<512, 64> ZsFseCT;
// The three sequence tables of one block, sized to their limits (LL and ML
// table log <= 9, OF <= 8; 36, 32 and 53 codes).
struct ZsSeqCT {
  ZsFseT<512, 36> ll;
  ZsFseT<256, 32> of;
  ZsFseT<512, 53> ml;
};

// Builds an encoding table from a normalized distribution (-1 = low
// probability), spreading symbols exactly as the decoder does.
template <int S, int N>
ZD void zsFseBuild(ZsFseT<S, N>& ct, const short* norm, u32 maxSym, u32 tl, u8* tsym, u16* cumul) {
  u32 size = 1u << tl, mask = size - 1, step = (size >> 1) + (size >> 3) + 3;
  u32 high = size - 1;
  ct.tl = tl;
  cumul[0] = 0;
  for (u32 s = 0; s <= maxSym; s++) {
    if (norm[s] == -1) {
      cumul[s + 1] = cumul[s] + 1;
      tsym[high--] = (u8)s;
    } else {
      cumul[s + 1] = cumul[s] + (u16)(norm[s] > 0 ? norm[s] : 0);
    }
  }
  u32 pos = 0;
  for (u32 s = 0; s <= maxSym; s++) {
    for (int i = 0; i < norm[s]; i++) {
      tsym[pos] = (u8)s;
      pos = (pos + step) & mask;
      while (pos > high) pos = (pos + step) & mask;
    }
  }
  for (u32 u = 0; u < size; u++) {
    u32 s = tsym[u];
    ct.st[cumul[s]++] = (u16)(size + u);
  }
  i32 total = 0;
  for (u32 s = 0; s <= maxSym; s++) {
    int c = norm[s];
    if (c == 0) {
      ct.dnb[s] = ((tl + 1) << 16) - size;
      ct.dfs[s] = 0;
    } else if (c == -1 || c == 1) {
      ct.dnb[s] = (tl << 16) - size;
      ct.dfs[s] = total - 1;
      total++;
    } else {
      u32 maxBitsOut = tl - zsHighBit((u32)c - 1);
      u32 minStatePlus = (u32)c << maxBitsOut;
      ct.dnb[s] = (maxBitsOut << 16) - minStatePlus;
      ct.dfs[s] = total - c;
      total += c;
    }
  }
}
template <int S, int N>
ZD u32 zsFseInit(const ZsFseT<S, N>& ct, u32 s) {
  u32 nbOut = (ct.dnb[s] + (1u << 15)) >> 16;
  u32 v = (nbOut << 16) - ct.dnb[s];
  return ct.st[(i32)(v >> nbOut) + ct.dfs[s]];
}
template <int S, int N>
ZD void zsFseEnc(ZsBits& b, const ZsFseT<S, N>& ct, u32& state, u32 s) {
  u32 nbOut = (state + ct.dnb[s]) >> 16;
  zsBitsAdd(b, state, nbOut);
  state = ct.st[(i32)(state >> nbOut) + ct.dfs[s]];
}

// Writes a normalized distribution header (RFC 8878 4.1.1); returns bytes.
ZD u32 zsWriteNCount(u8* out, const short* norm, u32 maxSym, u32 tl) {
  u32 size = 1u << tl;
  u8* o = out;
  u32 bits = 0, nbits = 0;
  bits = tl - 5;
  nbits = 4;
  int remaining = (int)size + 1;
  int threshold = (int)size;
  int nb = (int)tl + 1;
  u32 sym = 0;
  int prev0 = 0;
  while (sym <= maxSym && remaining > 1) {
    if (prev0) {
      u32 start = sym;
      while (sym <= maxSym && norm[sym] == 0) sym++;
      while (sym >= start + 24) {
        start += 24;
        bits |= 0xFFFFu << nbits;
        *o++ = (u8)bits;
        *o++ = (u8)(bits >> 8);
        bits >>= 16;
      }
      while (sym >= start + 3) {
        start += 3;
        bits |= 3u << nbits;
        nbits += 2;
      }
      bits |= (sym - start) << nbits;
      nbits += 2;
      if (nbits > 16) {
        *o++ = (u8)bits;
        *o++ = (u8)(bits >> 8);
        bits >>= 16;
        nbits -= 16;
      }
    }
    int count = norm[sym++];
    int max = (2 * threshold - 1) - remaining;
    remaining -= count < 0 ? -count : count;
    count++;
    if (count >= threshold) count += max;
    bits |= (u32)count << nbits;
    nbits += nb;
    nbits -= (count < max);
    prev0 = (count == 1);
    while (remaining < threshold) {
      nb--;
      threshold >>= 1;
    }
    if (nbits > 16) {
      *o++ = (u8)bits;
      *o++ = (u8)(bits >> 8);
      bits >>= 16;
      nbits -= 16;
    }
  }
  while (nbits > 0) {
    *o++ = (u8)bits;
    bits >>= 8;
    nbits = nbits >= 8 ? nbits - 8 : 0;
  }
  return (u32)(o - out);
}

// Normalizes counts (sum total, maxSym+1 symbols) to 1<<tl, every present
// symbol at least 1; deterministic.
template <typename C>
ZD void zsNormalize(short* norm, const C* cnt, u32 maxSym, u32 total, u32 tl) {
  int size = 1 << tl, sum = 0;
  for (u32 s = 0; s <= maxSym; s++) {
    if (!cnt[s]) {
      norm[s] = 0;
      continue;
    }
    int v = (int)(((u64)cnt[s] * (u32)size + total / 2) / total);
    if (v < 1) v = 1;
    norm[s] = (short)v;
    sum += v;
  }
  while (sum > size) {
    u32 best = 0;
    int bv = 1;
    for (u32 s = 0; s <= maxSym; s++)
      if (norm[s] > bv) bv = norm[s], best = s;
    norm[best]--;
    sum--;
  }
  while (sum < size) {
    u32 best = 0, bc = 0;
    for (u32 s = 0; s <= maxSym; s++)
      if ((u32)cnt[s] > bc) bc = cnt[s], best = s;
    norm[best]++;
    sum++;
  }
}

// ---------------------------------------------------------- sequence codes
// Literal and match length codes (RFC 8878 3.1.1.3.2.1.1), by arithmetic:
// no table walk, so a lone thread does not wait on memory.
ZD u32 zsLLCode(u32 ll) {
  if (ll < 16) return ll;
  if (ll >= 64) return zsHighBit(ll) + 19;
  if (ll < 24) return 16 + ((ll - 16) >> 1);
  if (ll < 32) return 20 + ((ll - 24) >> 2);
  if (ll < 48) return 22 + ((ll - 32) >> 3);
  return 24;
}
ZD u32 zsMLCode(u32 m) {  // m = match length - 3
  if (m < 32) return m;
  if (m >= 128) return zsHighBit(m) + 36;
  if (m < 40) return 32 + ((m - 32) >> 1);
  if (m < 48) return 36 + ((m - 40) >> 2);
  if (m < 64) return 38 + ((m - 48) >> 3);
  if (m < 96) return 40 + ((m - 64) >> 4);
  return 42;
}

// Packed sequence: ll | ml << 21 | off << 42 (21 bits each).
#define ZS_SEQ(ll, ml, of) ((u64)(ll) | ((u64)(ml) << 21) | ((u64)(of) << 42))
#define ZS_SLL(s) ((u32)(s) & 0x1FFFFF)
#define ZS_SML(s) ((u32)((s) >> 21) & 0x1FFFFF)
#define ZS_SOF(s) ((u32)((s) >> 42) & 0x1FFFFF)

// ------------------------------------------------------------ shared memory
struct ZsEnt {
  u32 key[256];
  u16 sorted[256];   // present symbols, ascending (count, symbol)
  u32 iw[256];       // internal node weights
  u16 lpar[256];     // parent of leaf (rank)
  u16 ipar[256];     // parent of internal node
  u16 idep[256];     // depth of internal node
  u32 ncodes[34];
  u8 w[256];         // Huffman weights
  u8 hdesc[160];     // Huffman tree description
  u8 tsym[512];
  u16 cumul[64];
  short norm[64];
  u32 wcnt[16];
  ZsFseCT wct;       // Huffman weights table
};

// Sequence-coding workspace of one block, in the block's scratch slot (over
// the literal buffer, free by then): zstd_seqs runs one thread per block,
// so its tables live in global memory (L1-resident), not shared memory.
struct ZsSeqWs {
  u32 segNseq[ZS_NT], segTrail[ZS_NT];
  u32 pos;           // where the sequences section starts in the body
  u32 pending;       // 1: the block still needs its sequences section
};

// zstd_seqs' per-thread temporaries, in shared memory: they are updated in
// place (counts, cumulative counts), which global memory would turn into a
// chain of L2 round trips. 1412 bytes: an odd number of words, so threads
// touching the same field hit different banks.
static_assert(sizeof(ZsSeqWs) <= 512, "ZsSeqWs outgrew the smallest literal buffer (zsGeo's litcap)");

struct ZsSeqTmp {
  u16 cnt[3][64];    // LL, OF, ML code counts
  short norm[3][64];
  u16 cumul[64];
  u8 tsym[512];
  u32 pad;
};

struct ZsSmem {
  u32 hist[256];
  u16 hcode[256];
  u8 hlen[256];
  u32 segNseq[ZS_NT], segTrail[ZS_NT], segLit[ZS_NT], segLitOff[ZS_NT];
  u32 partBits[ZS_NT], partStart[ZS_NT];
  u32 notRle;
  u32 litSize;      // literals in the block
  u32 nSym;         // distinct literal symbols
  u32 litMode;      // 0 raw, 1 rle, 2 huffman
  u32 nStreams;
  u32 hdescLen;
  u32 streamByte[4];  // start of each Huffman stream in out
  u32 streamBits[4];
  u32 pos;          // bytes of the block body written so far
  // Last, so that a launch gives a CTA only what its parse uses (the
  // tables are dead once the literals are gathered: ZsEnt reuses them).
  union {
    struct {
      u16 htab[ZS_NT][ZS_HSIZE];  // per thread: most recent position
      u32 gtab[1 << ZS_GLOG];     // per block: first position (atomicMin)
    } m;                          // ZS_PARSE_FAST
    struct {
      u16 ltab[ZS_NT][2 << ZL_HLOG];  // per thread: 2-way buckets
      u32 gtab[1 << ZL_GLOG];
    } l;                          // ZS_PARSE_LAZY
    ZsEnt e;
  } u;
};


// ------------------------------------------------------------- block phases

// Greedy parse of one segment into (literal length, match length, offset).
ZD void zsParseSegment(ZsSmem& sm, int t, const u8* src, u32 chunkLen, u32 blkStart, u32 blkEnd, u32 seg,
                       u64* seqs) {
  u32 segStart = blkStart + (u32)t * seg;
  if (segStart >= blkEnd) {
    sm.segNseq[t] = 0;
    sm.segTrail[t] = 0;
    sm.segLit[t] = 0;
    return;
  }
  u32 segEnd = segStart + seg < blkEnd ? segStart + seg : blkEnd;
  // Priming: a quarter of the segment, at most ZS_PRIME bytes (more only
  // displaces the table's entries: measured on camera and thirds data).
  u32 prime = seg / 4 < ZS_PRIME ? seg / 4 : ZS_PRIME;
  u32 tb = segStart > prime ? segStart - prime : 0;
  u16* h = sm.u.m.htab[t];
  for (int i = 0; i < ZS_HSIZE; i++) h[i] = 0;
  for (u32 p = tb; p < segStart && p + 8 <= chunkLen; p += ZS_PSTEP) h[zsHash(src + p)] = (u16)(p - tb);
  u32 ip = segStart, anchor = segStart, rep = 0, n = 0, lits = 0;
  const u8* end = src + segEnd;
  while (ip + 8 <= segEnd) {
    u64 v = zsRd64(src + ip);
    u32 hv = zsHashV(v);
    u32 cand = tb + h[hv];
    h[hv] = (u16)(ip - tb);
    u32 cur = (u32)v;
    // Candidates: the last offset, the thread's most recent position and the
    // block's first position with this hash; the longest match wins.
    u32 gc = sm.u.m.gtab[zsGHashV<ZS_GLOG>(v)];
    u32 m = 0, len = 0;
    if (rep && zsRd32(src + ip - rep) == cur) {
      m = ip - rep;
      len = 4 + zsCount(src + ip + 4, src + m + 4, end);
    }
    if (cand < ip && cand != m && zsRd32(src + cand) == cur) {
      u32 l = 4 + zsCount(src + ip + 4, src + cand + 4, end);
      if (l > len) len = l, m = cand;
    }
    if (gc < ip && gc != m && gc != cand && zsRd32(src + gc) == cur) {
      u32 l = 4 + zsCount(src + ip + 4, src + gc + 4, end);
      if (l > len) len = l, m = gc;
    }
    if (!len) {
      ip += 1 + ((ip - anchor) >> ZS_SKIP);
      continue;
    }
    while (ip > anchor && m > 0 && src[ip - 1] == src[m - 1]) ip--, m--, len++;
    seqs[n++] = ZS_SEQ(ip - anchor, len, ip - m);
    lits += ip - anchor;
    rep = ip - m;
    ip += len;
    anchor = ip;
    if (ip + 6 <= segEnd && ip - 2 >= tb) h[zsHash(src + ip - 2)] = (u16)(ip - 2 - tb);
  }
  sm.segNseq[t] = n;
  sm.segTrail[t] = segEnd - anchor;
  sm.segLit[t] = lits + (segEnd - anchor);
}

// The lazy parse's table index: ZL_MM bytes into 2^ZL_HLOG buckets.
ZD u32 zlHashV(u64 v) {
#if ZL_MM == 4
  return ((u32)v * 2654435761u) >> (32 - ZL_HLOG);
#else
  return (u32)(((v << (64 - 8 * ZL_MM)) * 0xCF1BBCDCB7A56463ull) >> (64 - ZL_HLOG));
#endif
}

// zlPut makes v the newest of bucket hv's two positions.
ZD void zlPut(u16* h, u32 hv, u32 v) {
  h[2 * hv + 1] = h[2 * hv];
  h[2 * hv] = (u16)v;
}

// zlFind looks up the match candidates at ip (the last offset, the two
// positions of the thread's bucket, the block's first occurrence), puts
// ip into the bucket and returns the longest match (0: none) at m. On a
// tie the repeat offset wins (cheapest), then the nearer position.
ZD u32 zlFind(const u32* gtab, u16* h, u32 tb, const u8* src, u32 ip, u32 rep, const u8* end, u32& m) {
  u64 v = zsRd64(src + ip);
  u32 hv = zlHashV(v);
  u32 c0 = tb + h[2 * hv], c1 = tb + h[2 * hv + 1];
  zlPut(h, hv, ip - tb);
  u32 cur = (u32)v;
  u32 gc = gtab[zsGHashV<ZL_GLOG>(v)];
  u32 len = 0;
  m = 0;
  if (rep && zsRd32(src + ip - rep) == cur) {  // rep <= ip: an offset of an earlier match
    m = ip - rep;
    len = 4 + zsCount(src + ip + 4, src + m + 4, end);
  }
  u32 cs[3] = {c0, c1, gc};
  for (int k = 0; k < 3; k++) {
    u32 c = cs[k];
    if (c < ip && c != m && (k == 0 || c != c0) && zsRd32(src + c) == cur) {
      u32 l = 4 + zsCount(src + ip + 4, src + c + 4, end);
      if (l > len) len = l, m = c;
    }
  }
  return len;
}

// zlGain is zstd's lazy-match score: 4 per byte matched, less the bits of
// the offset (a repeat offset costs almost nothing).
ZD int zlGain(u32 len, u32 off, u32 rep) { return (int)(len * 4) - (int)zsHighBit(off == rep ? 1u : off + 3u); }

// Lazy parse of one segment (ZS_PARSE_LAZY): as zsParseSegment, with the
// lazy tables, barely any skipping, and a match at ip given up for one at
// ip+1 (ZL_DEPTH times) that scores better, as zstd's lazy strategies
// decide (zlGain, with its bonus for the match in hand).
ZD void zsParseLazy(ZsSmem& sm, int t, const u8* src, u32 chunkLen, u32 blkStart, u32 blkEnd, u32 seg, u64* seqs) {
  u32 segStart = blkStart + (u32)t * seg;
  if (segStart >= blkEnd) {
    sm.segNseq[t] = 0;
    sm.segTrail[t] = 0;
    sm.segLit[t] = 0;
    return;
  }
  u32 segEnd = segStart + seg < blkEnd ? segStart + seg : blkEnd;
  u32 tb = segStart > ZL_PRIME ? segStart - ZL_PRIME : 0;
  u16* h = sm.u.l.ltab[t];
  const u32* gtab = sm.u.l.gtab;
  for (int i = 0; i < (2 << ZL_HLOG); i++) h[i] = 0;
  for (u32 p = tb; p < segStart && p + 8 <= chunkLen; p += ZS_PSTEP) zlPut(h, zlHashV(zsRd64(src + p)), p - tb);
  u32 ip = segStart, anchor = segStart, rep = 0, n = 0, lits = 0;
  const u8* end = src + segEnd;
  while (ip + 8 <= segEnd) {
    u32 m;
    u32 len = zlFind(gtab, h, tb, src, ip, rep, end, m);
    if (!len) {
      ip += 1 + ((ip - anchor) >> ZL_SKIP);
      continue;
    }
    for (int depth = 0; depth < ZL_DEPTH && ip + 9 <= segEnd; depth++) {
      u32 m2;
      u32 len2 = zlFind(gtab, h, tb, src, ip + 1, rep, end, m2);
      if (!len2 || zlGain(len2, ip + 1 - m2, rep) <= zlGain(len, ip - m, rep) + (depth == 0 ? 4 : 1)) break;
      ip++;
      len = len2;
      m = m2;
    }
    while (ip > anchor && m > 0 && src[ip - 1] == src[m - 1]) ip--, m--, len++;
    seqs[n++] = ZS_SEQ(ip - anchor, len, ip - m);
    lits += ip - anchor;
    rep = ip - m;
    ip += len;
    anchor = ip;
    // Two positions just before the match end, as zstd's lazy fills.
    if (ip + 6 <= segEnd && ip - 2 >= tb) zlPut(h, zlHashV(zsRd64(src + ip - 2)), ip - 2 - tb);
    if (ip + 7 <= segEnd && ip - 1 >= tb) zlPut(h, zlHashV(zsRd64(src + ip - 1)), ip - 1 - tb);
  }
  sm.segNseq[t] = n;
  sm.segTrail[t] = segEnd - anchor;
  sm.segLit[t] = lits + (segEnd - anchor);
}

// Copies segment t's literals into the block's literal buffer and counts
// them into the histogram.
ZD void zsGatherLiterals(ZsSmem& sm, int t, const u8* src, u32 blkStart, u32 seg, const u64* seqs, u8* lit) {
  u32 segStart = blkStart + (u32)t * seg;
  u32 o = sm.segLitOff[t];
  u32 ip = segStart;
  u32 n = sm.segNseq[t];
  for (u32 k = 0; k <= n; k++) {
    u32 ll = k < n ? ZS_SLL(seqs[k]) : sm.segTrail[t];
    u32 i = 0;
    for (; i + 4 <= ll; i += 4) {  // 4 bytes per load
      u32 v = zsRd32(src + ip + i);
      for (int q = 0; q < 4; q++) {
        u8 c = (u8)(v >> (8 * q));
        lit[o + i + q] = c;
        ZS_ATOMIC_ADD(&sm.hist[c], 1u);
      }
    }
    for (; i < ll; i++) {
      u8 c = src[ip + i];
      lit[o + i] = c;
      ZS_ATOMIC_ADD(&sm.hist[c], 1u);
    }
    o += ll;
    ip += ll;
    if (k < n) ip += ZS_SML(seqs[k]);
  }
}

// Builds the Huffman code (lengths <= 11), its weights and tree description;
// decides between raw, RLE and Huffman literals. Thread 0 only.
ZD void zsHufBuild(ZsSmem& sm) {
  ZsEnt& e = sm.u.e;
  u32 L = sm.litSize;
  sm.litMode = 0;
  if (L == 0) return;
  if (sm.nSym == 1) {
    sm.litMode = 1;
    return;
  }
  if (L < 64) return;
  u32 n = sm.nSym;
  // Two-queue Huffman over leaves sorted by ascending count.
  u32 li = 0, ii = 0;
  for (u32 k = 0; k + 1 < n; k++) {
    u32 sum = 0;
    for (int pick = 0; pick < 2; pick++) {
      if (li < n && (ii >= k || sm.hist[e.sorted[li]] <= e.iw[ii])) {
        sum += sm.hist[e.sorted[li]];
        e.lpar[li++] = (u16)k;
      } else {
        sum += e.iw[ii];
        e.ipar[ii++] = (u16)k;
      }
    }
    e.iw[k] = sum;
  }
  e.idep[n - 2] = 0;
  for (int k = (int)n - 3; k >= 0; k--) e.idep[k] = e.idep[e.ipar[k]] + 1;
  for (int i = 0; i < 34; i++) e.ncodes[i] = 0;
  u32 maxLen = 0;
  for (u32 i = 0; i < n; i++) {
    u32 d = e.idep[e.lpar[i]] + 1u;
    if (d > 33) d = 33;
    e.ncodes[d]++;
    if (d > maxLen) maxLen = d;
  }
  if (maxLen > ZS_HUF_MAXBITS) {
    for (u32 l = ZS_HUF_MAXBITS + 1; l < 34; l++) e.ncodes[ZS_HUF_MAXBITS] += e.ncodes[l], e.ncodes[l] = 0;
    u32 total = 0;
    for (u32 l = 1; l <= ZS_HUF_MAXBITS; l++) total += e.ncodes[l] << (ZS_HUF_MAXBITS - l);
    while (total != (1u << ZS_HUF_MAXBITS)) {
      e.ncodes[ZS_HUF_MAXBITS]--;
      for (u32 l = ZS_HUF_MAXBITS - 1; l > 0; l--) {
        if (e.ncodes[l]) {
          e.ncodes[l]--;
          e.ncodes[l + 1] += 2;
          break;
        }
      }
      total--;
    }
    maxLen = ZS_HUF_MAXBITS;
  }
  for (int s = 0; s < 256; s++) sm.hlen[s] = 0;
  {
    u32 r = 0;
    for (u32 l = maxLen; l > 0; l--)
      for (u32 c = 0; c < e.ncodes[l]; c++) sm.hlen[e.sorted[r++]] = (u8)l;
  }
  while (maxLen > 1 && e.ncodes[maxLen] == 0) maxLen--;
  u32 maxSym = 0;
  u64 bits = 0;
  for (u32 s = 0; s < 256; s++) {
    e.w[s] = sm.hlen[s] ? (u8)(maxLen + 1 - sm.hlen[s]) : 0;
    if (sm.hlen[s]) maxSym = s;
    bits += (u64)sm.hist[s] * sm.hlen[s];
  }
  // Canonical codes: longest codes take the smallest values.
  {
    u32 nb[ZS_HUF_MAXBITS + 2], val[ZS_HUF_MAXBITS + 2];
    for (u32 l = 0; l <= ZS_HUF_MAXBITS + 1; l++) nb[l] = 0, val[l] = 0;
    for (u32 s = 0; s <= maxSym; s++) nb[sm.hlen[s]]++;
    u32 mn = 0;
    for (u32 l = maxLen; l > 0; l--) {
      val[l] = mn;
      mn += nb[l];
      mn >>= 1;
    }
    for (u32 s = 0; s <= maxSym; s++)
      if (sm.hlen[s]) sm.hcode[s] = (u16)val[sm.hlen[s]]++;
  }
  // Tree description: FSE-compressed weights when possible and smaller,
  // else direct 4-bit weights (only for maxSym <= 128).
  u32 nw = maxSym;  // weights written; the last one is implied
  u32 best = 0;     // 0 = none possible
  for (int i = 0; i < 16; i++) e.wcnt[i] = 0;
  u32 maxW = 0, distinct = 0;
  for (u32 s = 0; s < nw; s++) {
    if (!e.wcnt[e.w[s]]++) distinct++;
    if (e.w[s] > maxW) maxW = e.w[s];
  }
  if (distinct > 1) {
    u32 tl = 6;
    zsNormalize(e.norm, e.wcnt, maxW, nw, tl);
    u32 hn = zsWriteNCount(e.hdesc + 1, e.norm, maxW, tl);
    zsFseBuild(e.wct, e.norm, maxW, tl, e.tsym, e.cumul);
    ZsBits b;
    zsBitsInit(b, e.hdesc + 1 + hn, e.hdesc + 128);
    u32 s1 = 0, s2 = 0;
    for (int i = (int)nw - 1; i >= 0; i--) {
      u32 sym = e.w[i];
      bool even = (i & 1) == 0;
      if (i == (int)nw - 1 || i == (int)nw - 2) {
        if (even) s1 = zsFseInit(e.wct, sym); else s2 = zsFseInit(e.wct, sym);
      } else if (even) {
        zsFseEnc(b, e.wct, s1, sym);
      } else {
        zsFseEnc(b, e.wct, s2, sym);
      }
    }
    zsBitsAdd(b, s2, tl);
    zsBitsAdd(b, s1, tl);
    u32 bn = zsBitsClose(b, e.hdesc + 1 + hn);
    u32 fsz = hn + bn;
    if (!b.over && fsz < 128) {
      e.hdesc[0] = (u8)fsz;
      best = fsz + 1;
    }
  }
  u32 dsz = 1 + (nw + 1) / 2;
  if (nw <= 128 && (best == 0 || dsz < best)) {
    e.hdesc[0] = (u8)(127 + nw);
    for (u32 k = 0; k < (nw + 1) / 2; k++) {
      u32 a = e.w[2 * k], c = 2 * k + 1 < nw ? e.w[2 * k + 1] : 0;
      e.hdesc[1 + k] = (u8)((a << 4) | c);
    }
    best = dsz;
  }
  if (best == 0) return;
  sm.hdescLen = best;
  u32 ns = L <= 1023 ? 1 : 4;
  // Upper bound of the compressed literals vs raw.
  u64 est = best + (ns == 4 ? 6 : 0) + bits / 8 + ns + (L > 16383 ? 5 : L > 1023 ? 4 : 3);
  u64 raw = L + (L > 4095 ? 3 : L > 31 ? 2 : 1);
  if (est >= raw) return;
  sm.litMode = 2;
  sm.nStreams = ns;
}

// Literal index range of Huffman part t (parts split each stream evenly).
ZD void zsPartRange(const ZsSmem& sm, int t, u32& a, u32& b, u32& stream, u32& part) {
  u32 L = sm.litSize, ns = sm.nStreams, pps = ZS_NT / ns;
  stream = (u32)t / pps;
  part = (u32)t % pps;
  u32 q = (L + 3) / 4;
  u32 sa = ns == 1 ? 0 : stream * q, sb = ns == 1 ? L : (stream == 3 ? L : (stream + 1) * q);
  u32 len = sb - sa;
  a = sa + (u32)(((u64)len * part) / pps);
  b = sa + (u32)(((u64)len * (part + 1)) / pps);
}

// Encodes the sequences section at out (thread 0); returns bytes or ~0u.
// Builds column c's table: predefined (mode 0) or from x.norm[c] (mode 2).
template <int S, int N>
ZD void zsSeqTable(ZsFseT<S, N>& ct, ZsSeqTmp& x, u32 mode, u32 maxSym, u32 tl, const short* pre, u32 preMax,
                   u32 preTl, int c) {
  if (mode == 1) ct.tl = 0;
  else if (mode == 2) zsFseBuild(ct, x.norm[c], maxSym, tl, x.tsym, x.cumul);
  else zsFseBuild(ct, pre, preMax, preTl, x.tsym, x.cumul);
}

ZD u32 zsEncodeSequences(ZsSeqWs& e, ZsSeqTmp& x, ZsSeqCT& ct, u64* seqs, u32 segseq, u8* out, u8* end, u32 blkIndex) {
  // Concatenate segments, fold trailing literals into the next sequence and
  // turn offsets into offset values with the repeat-offset history. A block
  // after the first does not know the history left by earlier blocks (they
  // are coded in parallel), so unknown entries are never used.
  u32 rep[3] = {1, 4, 8};
  u32 kn[3] = {blkIndex == 0, blkIndex == 0, blkIndex == 0};
  u32 ns = 0, carry = 0;
  for (int i = 0; i < 64; i++) x.cnt[0][i] = x.cnt[1][i] = x.cnt[2][i] = 0;
  for (int t = 0; t < ZS_NT; t++) {
    const u64* sq = seqs + (u64)t * segseq;
    u32 n = e.segNseq[t];
    for (u32 k0 = 0; k0 < n; k0 += 8) {
      // Load 8 sequences at once: one memory wait per 8, not per sequence.
      u64 buf[8];
ZS_UNROLL
      for (int q = 0; q < 8; q++) buf[q] = k0 + q < n ? sq[k0 + q] : 0;
ZS_UNROLL
      for (int q = 0; q < 8; q++) {
        if (k0 + q >= n) continue;
        u64 s = buf[q];
        u32 ll = ZS_SLL(s) + carry, ml = ZS_SML(s), off = ZS_SOF(s), ov = 0;
        carry = 0;
        int j = -1;  // history entry moved to the front, -1: a new offset
        if (ll) {
          if (kn[0] && off == rep[0]) ov = 1, j = 0;
          else if (kn[1] && off == rep[1]) ov = 2, j = 1;
          else if (kn[2] && off == rep[2]) ov = 3, j = 2;
        } else {
          if (kn[1] && off == rep[1]) ov = 1, j = 1;
          else if (kn[2] && off == rep[2]) ov = 2, j = 2;
          else if (kn[0] && rep[0] > 1 && off == rep[0] - 1) ov = 3;
        }
        if (j < 0) {
          if (!ov) ov = off + 3;
          rep[2] = rep[1], kn[2] = kn[1];
          rep[1] = rep[0], kn[1] = kn[0];
          rep[0] = off, kn[0] = 1;
        } else if (j == 1) {
          rep[1] = rep[0], kn[1] = kn[0];
          rep[0] = off, kn[0] = 1;
        } else if (j == 2) {
          rep[2] = rep[1], kn[2] = kn[1];
          rep[1] = rep[0], kn[1] = kn[0];
          rep[0] = off, kn[0] = 1;
        }
        x.cnt[0][zsLLCode(ll)]++;
        x.cnt[1][zsHighBit(ov)]++;
        x.cnt[2][zsMLCode(ml - 3)]++;
        seqs[ns++] = ZS_SEQ(ll, ml, ov);
      }
    }
    carry += e.segTrail[t];
  }
  u8* o = out;
  if (ns < 128) {
    *o++ = (u8)ns;
  } else if (ns < 0x7F00) {
    *o++ = (u8)((ns >> 8) + 128);
    *o++ = (u8)ns;
  } else {
    *o++ = 255;
    *o++ = (u8)(ns - 0x7F00);
    *o++ = (u8)((ns - 0x7F00) >> 8);
  }
  if (ns == 0) return (u32)(o - out);
  // Per code column: RLE when constant, else the predefined table or one
  // computed from this block's codes, whichever costs fewer bits.
  u8* modes = o++;
  u32 mode[3], cmax[3], ctl[3];
  for (int c = 0; c < 3; c++) {  // LL, OF, ML: the order of their descriptions
    const u16* cnt = x.cnt[c];
    const short* pre = c == 0 ? zsLLNorm : c == 1 ? zsOFNorm : zsMLNorm;
    u32 preMax = c == 0 ? 35 : c == 1 ? 28 : 52, preTl = c == 1 ? 5 : 6, maxTl = c == 1 ? 8 : 9;
    u32 maxSym = 0, distinct = 0;
    for (u32 k = 0; k < 64; k++)
      if (cnt[k]) maxSym = k, distinct++;
    cmax[c] = maxSym;
    ctl[c] = 0;
    if (distinct == 1) {
      mode[c] = 1;
      *o++ = (u8)maxSym;
      continue;
    }
    u64 costPre = ~0ull;
    if (maxSym <= preMax) {
      costPre = 0;
      for (u32 k = 0; k <= maxSym; k++)
        if (cnt[k]) costPre += (u64)cnt[k] * (preTl * 256 - zsLog2Fp(pre[k] < 0 ? 1u : (u32)pre[k]));
    }
    // Table log as libzstd's FSE_optimalTableLog picks it.
    u32 tl = maxTl, hbs = zsHighBit(ns - 1);
    if (hbs >= 2 && hbs - 2 < tl) tl = hbs - 2;
    u32 minBits = hbs + 1 < zsHighBit(maxSym) + 2 ? hbs + 1 : zsHighBit(maxSym) + 2;
    if (minBits > tl) tl = minBits;
    if (tl < 5) tl = 5;
    if (tl > maxTl) tl = maxTl;
    zsNormalize(x.norm[c], cnt, maxSym, ns, tl);
    u32 hn = zsWriteNCount(o, x.norm[c], maxSym, tl);
    u64 costFse = (u64)hn * 8 * 256;
    for (u32 k = 0; k <= maxSym; k++)
      if (cnt[k]) costFse += (u64)cnt[k] * (tl * 256 - zsLog2Fp((u32)x.norm[c][k]));
    if (costFse < costPre) {
      mode[c] = 2;
      ctl[c] = tl;
      o += hn;
    } else {
      mode[c] = 0;
    }
  }
  *modes = (u8)((mode[0] << 6) | (mode[1] << 4) | (mode[2] << 2));
  zsSeqTable(ct.ll, x, mode[0], cmax[0], ctl[0], zsLLNorm, 35, 6, 0);
  zsSeqTable(ct.of, x, mode[1], cmax[1], ctl[1], zsOFNorm, 28, 5, 1);
  zsSeqTable(ct.ml, x, mode[2], cmax[2], ctl[2], zsMLNorm, 52, 6, 2);
  ZsFseT<512, 36>& tLL = ct.ll;
  ZsFseT<256, 32>& tOF = ct.of;
  ZsFseT<512, 53>& tML = ct.ml;
  ZsBits b;
  zsBitsInit(b, o, end);
  u32 sLL = 0, sOF = 0, sML = 0;
  for (int i0 = (int)ns - 1; i0 >= 0; i0 -= 8) {
    u64 buf[8];
ZS_UNROLL
    for (int q = 0; q < 8; q++) buf[q] = i0 - q >= 0 ? seqs[i0 - q] : 0;
ZS_UNROLL
    for (int q = 0; q < 8; q++) {
      int i = i0 - q;
      if (i < 0) continue;
      u64 s = buf[q];
      u32 ll = ZS_SLL(s), mlb = ZS_SML(s) - 3, ov = ZS_SOF(s);
      u32 cll = zsLLCode(ll), cml = zsMLCode(mlb), cof = zsHighBit(ov);
      if (i == (int)ns - 1) {
        if (tML.tl) sML = zsFseInit(tML, cml);
        if (tOF.tl) sOF = zsFseInit(tOF, cof);
        if (tLL.tl) sLL = zsFseInit(tLL, cll);
      } else {
        if (tOF.tl) zsFseEnc(b, tOF, sOF, cof);
        if (tML.tl) zsFseEnc(b, tML, sML, cml);
        if (tLL.tl) zsFseEnc(b, tLL, sLL, cll);
      }
      zsBitsAdd(b, ll - zsLLBase[cll], zsLLBits[cll]);
      zsBitsAdd(b, mlb - zsMLBase[cml], zsMLBits[cml]);
      zsBitsAdd(b, ov - (1u << cof), cof);
    }
  }
  if (tML.tl) zsBitsAdd(b, sML, tML.tl);
  if (tOF.tl) zsBitsAdd(b, sOF, tOF.tl);
  if (tLL.tl) zsBitsAdd(b, sLL, tLL.tl);
  u32 bn = zsBitsClose(b, o);
  if (b.over) return ~0u;
  return (u32)(o - out) + bn;
}

#if defined(ZS_PROF) && defined(__CUDACC__)
// Profiling builds only (harness): CTA cycles per executed phase, summed.
extern "C" __device__ unsigned long long zsProf[32];
#endif
#if defined(ZS_PROF) && defined(__CUDA_ARCH__)
#define ZS_TICK_INIT long long zsT = clock64(); int zsPh = 0;
#define ZS_TICK                                                                     \
  if (threadIdx.x == 0) {                                                           \
    long long now = clock64();                                                      \
    atomicAdd(&zsProf[zsPh < 31 ? zsPh : 31], (unsigned long long)(now - zsT));     \
    zsT = now;                                                                      \
  }                                                                                 \
  zsPh++;
#else
#define ZS_TICK_INIT
#define ZS_TICK
#endif

// A phase is the code every thread t of the CTA runs before the barrier.
#define ZS_PHASE { const int t = threadIdx.x;
#define ZS_END } __syncthreads(); ZS_TICK

// Where a batch's frames lie: frame j of chunk c starts at
// in + c*chunkStride + j*frameBytes and holds frameBytes bytes (lastBytes
// for the chunk's last frame, j = fpc-1). The zstd codec has one frame
// per chunk, cut into blocks of ZS_BLOCK (planes = 0). blosc-zstd has one
// per blosc block (its streams, frameBytes <= ZS_BLOCK), and planes is
// the shuffle's byte planes (typesize; 1 without a shuffle, ZS_BITSHUF
// added for bit shuffle): a frame of planes planes is cut at them, one
// zstd block per plane with a literal table of its own (the noisy low
// bytes and the smooth high ones of camera data code far better apart),
// as the CPU's blosc does (internal/blosc, zstdEncoder.compress: planes
// shorter than ZS_MINPLANE, or a bit shuffle that did not run, stay one
// block). Zstd block g of the batch is block g % nbf of frame g / nbf,
// nbf = the block slots per frame; a frame with fewer blocks leaves its
// last slots empty (bi >= nb). A slot's scratch is stride bytes: litcap
// of literals, seqcap of sequences (segseq per thread), then the block.
#define ZS_BITSHUF 0x10000u
#define ZS_MINPLANE (8 * 1024)
struct ZsGeo {
  u64 chunkStride, frameBytes, lastBytes;
  u64 stride, litcap, seqcap;
  u32 fpc, nbf, planes, segseq;
  bool bitshuf;
};
ZD u32 zsBlocksOf(u64 n, u32 bl) { return n == 0 ? 1 : (u32)((n + bl - 1) / bl); }
// zsFrameBlocks: the zstd codec's blocks of a chunk of n bytes.
ZD u32 zsFrameBlocks(u64 n) { return zsBlocksOf(n, ZS_BLOCK); }
// zsBlockLen is the zstd block length in a frame of n bytes.
ZD u32 zsBlockLen(const ZsGeo& g, u64 n) {
  u32 p = g.planes;
  if (p > 1 && g.bitshuf && (n < p || (n / p) % 8 != 0)) p = 1;  // no bit shuffle ran
  if (p > 1 && n / p >= ZS_MINPLANE) return (u32)(n / p);
  return ZS_BLOCK;
}
// zsSegLen is the segment each thread parses in a block of blen bytes: a
// short block (a blosc-zstd frame, a plane, a small chunk) is cut into
// shorter segments, so that all threads of the CTA parse, down to
// ZS_SEGMIN bytes a thread.
ZD u32 zsSegLen(u32 blen) {
  u32 seg = blen >= ZS_BLOCK ? ZS_SEG : ((blen + ZS_NT - 1) / ZS_NT + 15) & ~15u;
  return seg < ZS_SEGMIN ? ZS_SEGMIN : seg;
}
ZD ZsGeo zsGeo(u64 chunkStride, u64 frameBytes, u32 fpc, u64 lastBytes, u32 planes) {
  ZsGeo g;
  g.chunkStride = chunkStride;
  g.frameBytes = frameBytes;
  g.lastBytes = lastBytes;
  g.fpc = fpc ? fpc : 1;
  g.planes = planes & 0xFFFFu;
  g.bitshuf = (planes & ZS_BITSHUF) != 0;
  if (g.planes == 0) {  // the zstd codec
    g.nbf = zsFrameBlocks(frameBytes);
    g.segseq = ZS_SEGSEQ;
    g.litcap = ZS_LITCAP;
    g.seqcap = ZS_SEQCAP;
    g.stride = ZS_BLKSCR;
    return g;
  }
  u32 bf = zsBlockLen(g, frameBytes), bl = zsBlockLen(g, lastBytes);
  u32 nf = zsBlocksOf(frameBytes, bf), nl = zsBlocksOf(lastBytes, bl);
  g.nbf = nf > nl ? nf : nl;
  // The longest block of the frames sizes the slots.
  u64 bigF = bf < frameBytes ? bf : frameBytes, bigL = bl < lastBytes ? bl : lastBytes;
  u32 big = (u32)(bigF > bigL ? bigF : bigL);
  g.segseq = zsSegLen(big) / 4 + 1;
  // The literal buffer holds the ZsSeqWs that zstd_seqs reads at the end.
  g.litcap = ((u64)(big > 512 ? big : 512) + 15) & ~15ull;
  g.seqcap = (u64)ZS_NT * g.segseq * 8;
  g.stride = g.litcap + g.seqcap + (((u64)big + 1024 + 15) & ~15ull);
  return g;
}
// zsLocate finds block g: its frame's offset in the input and length, its
// index in the frame, the frame's block count and its block length. bi >=
// nb: an empty slot.
ZD void zsLocate(const ZsGeo& geo, u32 g, u64& off, u32& len, u32& bi, u32& nb, u32& bl) {
  u64 f = g / geo.nbf, c = f / geo.fpc;
  u32 j = (u32)(f % geo.fpc);
  bi = g % geo.nbf;
  off = c * geo.chunkStride + (u64)j * geo.frameBytes;
  len = (u32)(j == geo.fpc - 1 ? geo.lastBytes : geo.frameBytes);
  bl = geo.planes ? zsBlockLen(geo, len) : ZS_BLOCK;
  nb = zsBlocksOf(len, bl);
}

// Encodes block g into its scratch slot: [3-byte block header][body];
// blkSize[g] = header + body bytes. parse picks the match finder
// (ZS_PARSE_*).
ZDN void zsBlockBody(ZsSmem& sm, const u8* in, const ZsGeo& geo, u8* scratch, u32* blkSize, u32 g, u32 parse) {
  u64 off;
  u32 chunkLen, bi, nb, bl;  // chunkLen: bytes of the frame (matches stay inside)
  zsLocate(geo, g, off, chunkLen, bi, nb, bl);
  u8* base = scratch + (u64)g * geo.stride;
  if (bi >= nb) {  // an empty slot of a frame with fewer blocks
    if (threadIdx.x == 0) {
      blkSize[g] = 0;
      ((ZsSeqWs*)base)->pending = 0;
    }
    return;
  }
  const u8* src = in + off;
  u32 blkStart = bi * bl;
  u32 blkEnd = blkStart + bl < chunkLen ? blkStart + bl : chunkLen;
  u32 blen = blkEnd - blkStart;
  u32 seg = zsSegLen(blen);
  const u32 segseq = geo.segseq;
  u8* lit = base;
  u64* seqs = (u64*)(base + geo.litcap);
  u8* out = base + geo.litcap + geo.seqcap;
  u8* body = out + 3;
  u32 last = bi == nb - 1 ? 1u : 0u;
  ZS_TICK_INIT

  ZS_PHASE
    if (t == 0) sm.notRle = 0;
  ZS_END
  ZS_PHASE
    u32 a = blkStart + (u32)t * seg, b = a + seg < blkEnd ? a + seg : blkEnd;
    if (blen > 0) {
      u8 c0 = src[blkStart];
      u64 c8 = 0x0101010101010101ull * c0;
      u32 p = a;
      for (; p + 8 <= b; p += 8)
        if (zsRd64(src + p) != c8) break;
      for (; p < b; p++)
        if (src[p] != c0) {
          sm.notRle = 1;
          break;
        }
    }
  ZS_END
  if (blen == 0 || !sm.notRle) {
    ZS_PHASE
      if (t == 0) {
        u32 type = blen == 0 ? 0u : 1u;
        u32 h = last | (type << 1) | (blen << 3);
        out[0] = (u8)h;
        out[1] = (u8)(h >> 8);
        out[2] = (u8)(h >> 16);
        if (blen) out[3] = src[blkStart];
        blkSize[g] = blen ? 4 : 3;
        ((ZsSeqWs*)lit)->pending = 0;
      }
    ZS_END
    return;
  }

  // Block-wide table of first occurrences: order-independent (atomicMin),
  // so deterministic; gives every segment candidates from earlier ones.
  bool lazy = parse == ZS_PARSE_LAZY;
  u32* gtab = lazy ? sm.u.l.gtab : sm.u.m.gtab;
  ZS_PHASE
    for (int i = t; i < (lazy ? 1 << ZL_GLOG : 1 << ZS_GLOG); i += ZS_NT) gtab[i] = 0xFFFFFFFFu;
  ZS_END
  ZS_PHASE
    u32 a = blkStart + (u32)t * seg, b = a + seg < blkEnd ? a + seg : blkEnd;
    // The previous block of the chunk too (every ZS_GPSTEP-th position),
    // so a block finds what its predecessor already held.
    if (lazy) {
      zsGInsert<ZL_GLOG>(gtab, src, a, b, 1, chunkLen);
      if (blkStart >= bl) zsGInsert<ZL_GLOG>(gtab, src, a - bl, b - bl, ZS_GPSTEP, chunkLen);
    } else {
      zsGInsert<ZS_GLOG>(gtab, src, a, b, 1, chunkLen);
      if (blkStart >= bl) zsGInsert<ZS_GLOG>(gtab, src, a - bl, b - bl, ZS_GPSTEP, chunkLen);
    }
  ZS_END
  // Match finding: every thread its own segment.
  ZS_PHASE
    if (lazy)
      zsParseLazy(sm, t, src, chunkLen, blkStart, blkEnd, seg, seqs + (u64)t * segseq);
    else
      zsParseSegment(sm, t, src, chunkLen, blkStart, blkEnd, seg, seqs + (u64)t * segseq);
  ZS_END
  ZS_PHASE
    if (t == 0) {
      u32 o = 0;
      for (int k = 0; k < ZS_NT; k++) {
        sm.segLitOff[k] = o;
        o += sm.segLit[k];
      }
      sm.litSize = o;
    }
    for (int s = t; s < 256; s += ZS_NT) sm.hist[s] = 0;
  ZS_END
  ZS_PHASE
    // Literal-heavy blocks: the warp copies each segment's runs together
    // (coalesced); sequence-heavy ones: each thread its own segment. Both
    // give the same buffer and histogram.
    u32 nsq = 0;
    for (int k = 0; k < ZS_NT; k++) nsq += sm.segNseq[k];
    if (sm.litSize >= 16 * nsq) {
      for (int sg = 0; sg < ZS_NT; sg++) {
        u32 n = sm.segNseq[sg], o = sm.segLitOff[sg], ip = blkStart + (u32)sg * seg;
        const u64* sq = seqs + (u64)sg * segseq;
        for (u32 k0 = 0; k0 <= n; k0 += 32) {
          u64 mine = k0 + t < n ? sq[k0 + t] : 0;
          u32 cnt = n + 1 - k0 < 32 ? n + 1 - k0 : 32;
          for (u32 q = 0; q < cnt; q++) {
            u64 sv = __shfl_sync(0xFFFFFFFFu, mine, q);
            u32 ll = k0 + q < n ? ZS_SLL(sv) : sm.segTrail[sg], ml = k0 + q < n ? ZS_SML(sv) : 0;
            // Lane t takes bytes 4t..4t+3 of every 128: one load each.
            for (u32 i = 4 * (u32)t; i < ll; i += 128) {
              if (i + 4 <= ll) {
                u32 v = zsRd32(src + ip + i);
                for (int q = 0; q < 4; q++) {
                  u8 c = (u8)(v >> (8 * q));
                  lit[o + i + q] = c;
                  atomicAdd(&sm.hist[c], 1u);
                }
              } else {
                for (u32 j = i; j < ll; j++) {
                  u8 c = src[ip + j];
                  lit[o + j] = c;
                  atomicAdd(&sm.hist[c], 1u);
                }
              }
            }
            o += ll;
            ip += ll + ml;
          }
        }
      }
    } else {
      zsGatherLiterals(sm, t, src, blkStart, seg, seqs + (u64)t * segseq, lit);
    }
  ZS_END
  // Rank the present symbols by (count, symbol): sorted ascending.
  ZS_PHASE
    for (int s = t; s < 256; s += ZS_NT) sm.u.e.key[s] = sm.hist[s] ? ((sm.hist[s] << 8) | (u32)s) : 0;
  ZS_END
  ZS_PHASE
    for (int s = t; s < 256; s += ZS_NT) {
      u32 k = sm.u.e.key[s];
      if (!k) continue;
      u32 r = 0;
      for (int j = 0; j < 256; j++) {
        u32 kj = sm.u.e.key[j];
        r += (kj && kj < k) ? 1u : 0u;
      }
      sm.u.e.sorted[r] = (u16)s;
    }
    if (t == 0) {
      u32 n = 0;
      for (int s = 0; s < 256; s++) n += sm.hist[s] ? 1u : 0u;
      sm.nSym = n;
    }
  ZS_END
  ZS_PHASE
    if (t == 0) zsHufBuild(sm);
  ZS_END
  if (sm.litMode == 2) {
    ZS_PHASE
      u32 a, b, st, pt;
      zsPartRange(sm, t, a, b, st, pt);
      u32 bits = 0;
      for (u32 i = a; i < b; i++) bits += sm.hlen[lit[i]];
      sm.partBits[t] = bits;
    ZS_END
    ZS_PHASE
      if (t == 0) {
        u32 ns = sm.nStreams, pps = ZS_NT / ns, L = sm.litSize;
        u32 tot = 0;
        for (u32 s = 0; s < ns; s++) {
          u32 sb = 0;
          // Parts are written last-literal-first: a part starts after all
          // parts that follow it in the stream.
          for (int p = (int)pps - 1; p >= 0; p--) {
            sm.partStart[s * pps + p] = sb;
            sb += sm.partBits[s * pps + p];
          }
          sm.streamBits[s] = sb;
          tot += sb / 8 + 1;
        }
        u32 csize = sm.hdescLen + (ns == 4 ? 6 : 0) + tot;
        u32 mx = csize > L ? csize : L;
        u32 hl = ns == 1 ? 3 : (mx <= 1023 ? 3 : mx <= 16383 ? 4 : 5);
        u32 raw = L + (L > 4095 ? 3 : L > 31 ? 2 : 1);
        if (hl + csize >= raw || (ns == 1 && csize > 1023)) {
          sm.litMode = 0;
        } else {
          u32 sf = ns == 1 ? 0 : (hl == 3 ? 1 : hl == 4 ? 2 : 3);
          u32 sz = hl == 3 ? 10 : hl == 4 ? 14 : 18;
          u64 h = 2u | (sf << 2) | ((u64)L << 4) | ((u64)csize << (4 + sz));
          for (u32 k = 0; k < hl; k++) body[k] = (u8)(h >> (8 * k));
          u32 p = hl;
          for (u32 k = 0; k < sm.hdescLen; k++) body[p + k] = sm.u.e.hdesc[k];
          p += sm.hdescLen;
          u32 jt = p;
          if (ns == 4) p += 6;
          for (u32 s = 0; s < ns; s++) {
            sm.streamByte[s] = p;
            u32 sb = sm.streamBits[s] / 8 + 1;
            if (s < 3 && ns == 4) {
              body[jt + 2 * s] = (u8)sb;
              body[jt + 2 * s + 1] = (u8)(sb >> 8);
            }
            p += sb;
          }
          sm.pos = p;
        }
      }
    ZS_END
  }
  if (sm.litMode == 2) {
    // Zero the stream bytes, then OR in each part's codes.
    ZS_PHASE
      u32 a = sm.streamByte[0];
      for (u32 i = a + (u32)t; i < sm.pos; i += ZS_NT) body[i] = 0;
    ZS_END
    ZS_PHASE
      u32 a, b, st, pt;
      zsPartRange(sm, t, a, b, st, pt);
      // Absolute bit position inside the scratch slot (u32 aligned base).
      u64 bit = (u64)(3 + sm.streamByte[st]) * 8 + sm.partStart[t];
      u32* words = (u32*)out;
      u64 acc = 0;
      u32 n = (u32)(bit & 31);
      u64 w = bit >> 5;
      for (u32 i = b; i > a; i--) {
        u8 c = lit[i - 1];
        acc |= (u64)sm.hcode[c] << n;
        n += sm.hlen[c];
        if (n >= 32) {
          ZS_ATOMIC_OR(&words[w], (u32)acc);
          acc >>= 32;
          n -= 32;
          w++;
        }
      }
      if (pt == 0) {  // the part holding the stream's first literals ends it
        acc |= (u64)1 << n;
        n++;
      }
      if (n > 0) ZS_ATOMIC_OR(&words[w], (u32)acc);
      if (n > 32) ZS_ATOMIC_OR(&words[w + 1], (u32)(acc >> 32));
    ZS_END
  } else {
    ZS_PHASE
      if (t == 0) {
        u32 L = sm.litSize;
        u32 p;
        u32 type = sm.litMode == 1 ? 1u : 0u;
        if (L <= 31) {
          body[0] = (u8)(type | (L << 3));
          p = 1;
        } else if (L <= 4095) {
          body[0] = (u8)(type | (1u << 2) | ((L & 15) << 4));
          body[1] = (u8)(L >> 4);
          p = 2;
        } else {
          u32 h = type | (3u << 2) | (L << 4);
          body[0] = (u8)h;
          body[1] = (u8)(h >> 8);
          body[2] = (u8)(h >> 16);
          p = 3;
        }
        sm.streamByte[0] = p;
        if (sm.litMode == 1) {
          body[p] = lit[0];
          p++;
        } else {
          p += L;
        }
        sm.pos = p;
      }
    ZS_END
    if (sm.litMode == 0) {
      ZS_PHASE
        u32 a = sm.streamByte[0], L = sm.litSize;
        if (a + L <= ZS_BLOCK)
          for (u32 i = (u32)t; i < L; i += ZS_NT) body[a + i] = lit[i];
      ZS_END
    }
  }
  // The sequences section is left to zstd_seqs (one thread per block, so
  // the serial FSE state chains of many blocks run side by side).
  ZS_PHASE
    ZsSeqWs* w = (ZsSeqWs*)lit;
    w->segNseq[t] = sm.segNseq[t];
    w->segTrail[t] = sm.segTrail[t];
    if (t == 0) {
      w->pos = sm.pos;
      w->pending = 1;
      blkSize[g] = 0;
    }
  ZS_END
}

// Sequences section, block header and final size of block g (after
// zsBlockBody): raw when the compressed form does not pay.
ZD void zsSeqBody(ZsSeqTmp& x, ZsSeqCT& ct, u8* scratch, const ZsGeo& geo, u32* blkSize, u32 g) {
  u64 off;
  u32 chunkLen, bi, nb, bl;
  zsLocate(geo, g, off, chunkLen, bi, nb, bl);
  u32 blkStart = bi * bl;
  u32 blkEnd = blkStart + bl < chunkLen ? blkStart + bl : chunkLen;
  u32 blen = blkEnd - blkStart;
  u8* base = scratch + (u64)g * geo.stride;
  ZsSeqWs* w = (ZsSeqWs*)base;
  if (!w->pending) return;  // RLE, empty block or slot, done by zsBlockBody
  w->pending = 0;
  u64* seqs = (u64*)(base + geo.litcap);
  u8* out = base + geo.litcap + geo.seqcap;
  u8* body = out + 3;
  u32 last = bi == nb - 1 ? 1u : 0u;
  u32 p = w->pos;
  u32 n = p < blen ? zsEncodeSequences(*w, x, ct, seqs, geo.segseq, body + p, body + blen, bi) : ~0u;
  u32 h;
  if (n == ~0u || p + n >= blen) {
    h = last | (blen << 3);
    blkSize[g] = (3 + blen) | ZS_RAWFLAG;  // the assembler copies the input
  } else {
    h = last | (2u << 1) | ((p + n) << 3);
    blkSize[g] = 3 + p + n;
  }
  out[0] = (u8)h;
  out[1] = (u8)(h >> 8);
  out[2] = (u8)(h >> 16);
}

// Frame header for a chunk of n bytes: magic, FHD (Single_Segment, smallest
// Frame_Content_Size field), FCS. Returns its length.
ZD u32 zsFrameHeader(u8* h, u64 n) {
  h[0] = 0x28;
  h[1] = 0xB5;
  h[2] = 0x2F;
  h[3] = 0xFD;
  if (n < 256) {
    h[4] = 0x20;
    h[5] = (u8)n;
    return 6;
  }
  if (n < 65536 + 256) {
    h[4] = 0x60;
    h[5] = (u8)(n - 256);
    h[6] = (u8)((n - 256) >> 8);
    return 7;
  }
  int k = n <= 0xFFFFFFFFull ? 4 : 8;
  h[4] = k == 4 ? 0xA0 : 0xE0;
  for (int i = 0; i < k; i++) h[5 + i] = (u8)(n >> (8 * i));
  return 5 + k;
}

// Dynamic shared memory per zstd_blocks CTA, by parse: the fixed fields
// and the union member the parse uses. The Go side passes the same
// numbers (zstd.go, zstdSmemFast and zstdSmemLazy).
#define ZS_SMEM_FAST 27648
#define ZS_SMEM_LAZY 68608
static_assert(offsetof(ZsSmem, u) + sizeof(ZsSmem::u.m) <= ZS_SMEM_FAST, "the fast parse outgrew ZS_SMEM_FAST");
static_assert(offsetof(ZsSmem, u) + sizeof(ZsSmem::u.e) <= ZS_SMEM_FAST, "ZsEnt outgrew ZS_SMEM_FAST");
static_assert(sizeof(ZsSmem) <= ZS_SMEM_LAZY, "the lazy parse outgrew ZS_SMEM_LAZY");

// What zstd_blocks needs per parse (fast, lazy), read at load time by
// zstd.go (zstdKernels): a module built with other table sizes, to tune
// them, launches with its own needs instead of the constants above.
#define ZS_NEED_FAST (offsetof(ZsSmem, u) + (sizeof(ZsSmem::u.m) > sizeof(ZsSmem::u.e) ? sizeof(ZsSmem::u.m) : sizeof(ZsSmem::u.e)))
extern "C" __device__ u32 zs_smem_need[2] = {(u32)((ZS_NEED_FAST + 15) & ~15ull), (u32)((sizeof(ZsSmem) + 15) & ~15ull)};

extern "C" __global__ void __launch_bounds__(ZS_NT)
zstd_blocks(const u8* in, u64 chunkStride, u64 frameBytes, u32 fpc, u64 lastBytes, u32 planes, u32 nBlocks,
            u8* scratch, u32* blkSize, u32 parse) {
#ifdef __CUDACC__
  extern __shared__ __align__(16) unsigned char zsDyn[];
#else
  unsigned char* zsDyn = emu::dynamic_shared();
#endif
  ZsSmem& sm = *reinterpret_cast<ZsSmem*>(zsDyn);
  if (blockIdx.x >= nBlocks) return;
  ZsGeo geo = zsGeo(chunkStride, frameBytes, fpc, lastBytes, planes);
  zsBlockBody(sm, in, geo, scratch, blkSize, blockIdx.x, parse);
}

// zstd_seqs threads per CTA (zstd.go: zstdSeqThreads): each needs its FSE
// tables and temporaries in shared memory (about 5 KB), so a CTA is small
// and several share an SM.
#define ZS_SEQ_NT 8
static_assert(sizeof(ZsSeqTmp) % 8 == 4, "ZsSeqTmp should span an odd number of words");
static_assert(sizeof(ZsSeqCT) % 8 == 4, "ZsSeqCT should span an odd number of words");

extern "C" __global__ void __launch_bounds__(ZS_SEQ_NT)
zstd_seqs(u64 chunkStride, u64 frameBytes, u32 fpc, u64 lastBytes, u32 planes, u32 nBlocks, u8* scratch,
          u32* blkSize) {
  __shared__ ZsSeqTmp tmp[ZS_SEQ_NT];
  __shared__ ZsSeqCT cts[ZS_SEQ_NT];
  u32 g = blockIdx.x * blockDim.x + threadIdx.x;
  ZsGeo geo = zsGeo(chunkStride, frameBytes, fpc, lastBytes, planes);
  if (g < nBlocks) zsSeqBody(tmp[threadIdx.x], cts[threadIdx.x], scratch, geo, blkSize, g);
}

// Copies n bytes with the threads of a CTA: aligned 32-bit stores, source
// words through zsRd32 (any alignment).
ZD void zsCopy(u8* dst, const u8* src, u32 n) {
  u32 head = (u32)((4 - ((u64)dst & 3)) & 3);
  if (head > n) head = n;
  if (threadIdx.x < head) dst[threadIdx.x] = src[threadIdx.x];
  u32 nw = (n - head) / 4;
  u32* dw = (u32*)(dst + head);
  const u8* sp = src + head;
  for (u32 i = threadIdx.x; i < nw; i += blockDim.x) dw[i] = zsRd32(sp + 4 * i);
  for (u32 i = head + 4 * nw + threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
}

// zstd codec: one CTA per chunk writes the frame header, then the chunk's
// blocks in order (raw blocks straight from the input).
extern "C" __global__ void __launch_bounds__(256) zstd_assemble(const u8* in, const u8* scratch, const u32* blkSize,
                                                                u64 chunkBytes, u32 nChunks, u8* out,
                                                                u64 stride, u32* sizes) {
  u32 c = blockIdx.x;
  if (c >= nChunks) return;
  u32 nb = zsFrameBlocks(chunkBytes);
  u8* o = out + (u64)c * stride;
  u8 hdr[16];
  u32 p = zsFrameHeader(hdr, chunkBytes);
  if (threadIdx.x < p) o[threadIdx.x] = hdr[threadIdx.x];
  for (u32 b = 0; b < nb; b++) {
    u64 g = (u64)c * nb + b;
    u32 n = blkSize[g];
    const u8* s = scratch + g * ZS_BLKSCR + ZS_LITCAP + ZS_SEQCAP;
    if (n & ZS_RAWFLAG) {
      n &= ~ZS_RAWFLAG;
      if (threadIdx.x < 3) o[p + threadIdx.x] = s[threadIdx.x];
      zsCopy(o + p + 3, in + (u64)c * chunkBytes + (u64)b * ZS_BLOCK, n - 3);
    } else {
      zsCopy(o + p, s, n);
    }
    p += n;
  }
  if (threadIdx.x == 0) sizes[c] = p;
}

// ---------------------------------------------------------------------------
// blosc-zstd: each blosc block (shuffled by blosc_shuffle/blosc_bitshuffle
// into shuf, chunk c at c*cstride) is one frame of zstd_blocks (fpc =
// nblocks, frameBytes = bs <= ZS_BLOCK), cut into one zstd block per byte
// plane (ZsGeo); zstd frames are never split into blosc streams (c-blosc
// 1.x). bzstd_sizes gives each blosc stream the length of its zstd frame
// (frame header + blocks), or the block length when the frame could not
// be shorter than the bytes; blosc_plan then makes c-blosc's
// raw/memcpyed decisions and bzstd_assemble writes the buffers.

// bzstd_sizes: one thread per blosc block of the batch.
#define BZS_SIZES_CTA 128
extern "C" __global__ void __launch_bounds__(BZS_SIZES_CTA)
bzstd_sizes(const u32* __restrict__ blkSize, u32* __restrict__ csizes, u32 nbytes, u32 T, u32 bs, u32 n,
            u32 planes) {
  Geom geo = blosc_geom(nbytes, T, bs, 0);
  u64 g = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= (u64)n * geo.nblocks) return;
  u32 b = (u32)(g % geo.nblocks);
  u32 bsize = b < geo.nfull ? geo.bs : geo.leftover;
  ZsGeo zg = zsGeo(0, geo.bs, geo.nblocks, geo.leftover ? geo.leftover : geo.bs, planes);
  u32 nb = zsBlocksOf(bsize, zsBlockLen(zg, bsize));
  u8 hdr[16];
  u64 fsz = zsFrameHeader(hdr, bsize);
  for (u32 j = 0; j < nb; j++) fsz += blkSize[g * zg.nbf + j] & ~ZS_RAWFLAG;
  csizes[g] = fsz >= bsize ? bsize : (u32)fsz;
}

// bzstd_assemble: one CTA of 128 threads per (chunk, block), writing what
// blosc_plan decided (flags as for lz4_assemble, compressor code 4); a
// raw zstd block inside a frame is copied from the shuffled block.
#define BZS_ASM_CTA 128
extern "C" __global__ void __launch_bounds__(BZS_ASM_CTA)
bzstd_assemble(const u8* __restrict__ in, const u8* __restrict__ shuf, const u8* __restrict__ scratch,
               const u32* __restrict__ blkSize, const u32* __restrict__ stored, const u32* __restrict__ bstarts,
               const u32* __restrict__ plan, u8* __restrict__ out, u32 ostride, u32* __restrict__ sizes, u32 nbytes,
               u32 T, u32 bs, u32 n, u32 flags, u32 planes) {
  Geom geo = blosc_geom(nbytes, T, bs, 0);
  u32 c = blockIdx.x / geo.nblocks, b = blockIdx.x % geo.nblocks;
  if (c >= n) return;
  u32 total = plan[c];
  bool memcpyed = total == 0;
  u8* o = out + (u64)c * ostride;
  u32 cbytes = memcpyed ? nbytes + 16 : total;
  if (b == 0 && threadIdx.x == 0) {
    blosc_header(o, 1 /* BLOSC_ZSTD_VERSION_FORMAT */, memcpyed ? flags | BLOSC_FLAG_MEMCPYED : flags, T, nbytes,
                 geo.bs, cbytes);
    sizes[c] = cbytes;
  }
  u32 bsize = b < geo.nfull ? geo.bs : geo.leftover;
  if (memcpyed) {
    blosc_copy(o + 16 + (u64)b * geo.bs, in + (u64)c * nbytes + (u64)b * geo.bs, bsize);
    return;
  }
  u64 g = (u64)c * geo.nblocks + b;
  u32 p = bstarts[g];
  u32 sz = stored[g];
  if (threadIdx.x == 0) {
    blosc_put32(o + 16 + 4 * b, p);
    blosc_put32(o + p, sz);
  }
  p += 4;
  const u8* sb = shuf + (u64)c * geo.cstride + (u64)b * geo.bs;
  if (sz == bsize) {  // raw: the shuffled block
    blosc_copy(o + p, sb, bsize);
    return;
  }
  ZsGeo zg = zsGeo(0, geo.bs, geo.nblocks, geo.leftover ? geo.leftover : geo.bs, planes);
  u32 bl = zsBlockLen(zg, bsize), nb = zsBlocksOf(bsize, bl);
  u8 hdr[16];
  u32 hl = zsFrameHeader(hdr, bsize);
  if (threadIdx.x < hl) o[p + threadIdx.x] = hdr[threadIdx.x];
  p += hl;
  for (u32 j = 0; j < nb; j++) {
    u64 zb = g * zg.nbf + j;
    u32 k = blkSize[zb];
    const u8* s = scratch + zb * zg.stride + zg.litcap + zg.seqcap;
    if (k & ZS_RAWFLAG) {
      k &= ~ZS_RAWFLAG;
      if (threadIdx.x < 3) o[p + threadIdx.x] = s[threadIdx.x];
      zsCopy(o + p + 3, sb + (u64)j * bl, k - 3);
    } else {
      zsCopy(o + p, s, k);
    }
    p += k;
  }
}
