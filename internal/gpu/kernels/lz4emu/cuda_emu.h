// cuda_emu.h: a small host emulation of the CUDA execution model, so that
// the unchanged kernel source (../lz4.cu) compiles with g++ and runs on a
// CPU. Every thread of a CTA is a fiber (ucontext); warp collectives
// (__ballot_sync, __shfl_sync, __match_any_sync, __syncwarp) and
// __syncthreads are barriers that exchange values between the fibers of
// a warp or CTA. CTAs run one after another, so `__shared__` can be a
// function-local static.
//
// Limits, on purpose: collectives must be reached by all 32 lanes of a
// warp (full mask) and by whole CTAs (blockDim.x a multiple of 32); the
// kernels we test keep control flow warp-uniform around them, which is
// also what makes them correct on real hardware.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct uint4 {
  unsigned x, y, z, w;
};

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace emu {

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  bool done = false;
  unsigned tid = 0;
};

struct WarpSync {
  int arrived = 0;
  unsigned gen = 0;
  uint64_t vals[32];
  uint64_t res[32];
};

struct State {
  ucontext_t sched;
  std::vector<Fiber> fibers;
  std::vector<WarpSync> warps;
  int cur = 0;
  int barArrived = 0;
  unsigned barGen = 0;
  std::function<void()> body;
};

inline State& st() {
  static State s;
  return s;
}

}  // namespace emu

// threadIdx etc. are plain globals updated on every fiber switch.
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {

inline void yield() {
  State& s = st();
  swapcontext(&s.fibers[s.cur].ctx, &s.sched);
}

inline void trampoline() {
  State& s = st();
  s.body();
  s.fibers[s.cur].done = true;
  // returning goes to uc_link = scheduler
}

// collective runs combine() once all 32 lanes of the caller's warp have
// deposited their value, then hands each lane its result.
template <class F>
inline uint64_t collective(uint64_t v, F combine) {
  State& s = st();
  unsigned tid = threadIdx.x;
  WarpSync& w = s.warps[tid / 32];
  unsigned lane = tid % 32;
  w.vals[lane] = v;
  unsigned gen = w.gen;
  if (++w.arrived == 32) {
    combine(w.vals, w.res);
    w.arrived = 0;
    w.gen++;
  } else {
    while (w.gen == gen) yield();
  }
  return w.res[lane];
}

template <class K>
inline void launch(dim3 grid, dim3 block, K kernel) {
  State& s = st();
  if (block.x % 32 != 0 || block.y != 1 || block.z != 1) {
    fprintf(stderr, "emu: blockDim must be (32k,1,1)\n");
    abort();
  }
  gridDim = grid;
  blockDim = block;
  s.fibers.assign(block.x, Fiber());
  s.warps.assign(block.x / 32, WarpSync());
  for (auto& f : s.fibers) f.stack.resize(256 * 1024);
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        blockIdx = dim3(bx, by, bz);
        s.body = kernel;
        s.barArrived = 0;
        for (unsigned t = 0; t < block.x; t++) {
          Fiber& f = s.fibers[t];
          f.done = false;
          f.tid = t;
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = f.stack.data();
          f.ctx.uc_stack.ss_size = f.stack.size();
          f.ctx.uc_link = &s.sched;
          makecontext(&f.ctx, trampoline, 0);
        }
        for (;;) {
          bool any = false;
          for (unsigned t = 0; t < block.x; t++) {
            if (s.fibers[t].done) continue;
            any = true;
            s.cur = t;
            threadIdx = dim3(t, 0, 0);
            swapcontext(&s.sched, &s.fibers[t].ctx);
          }
          if (!any) break;
        }
      }
}

}  // namespace emu

inline void __syncthreads() {
  emu::State& s = emu::st();
  unsigned gen = s.barGen;
  if (++s.barArrived == (int)blockDim.x) {
    s.barArrived = 0;
    s.barGen++;
  } else {
    while (s.barGen == gen) emu::yield();
  }
}

inline void __syncwarp(unsigned = 0xffffffffu) {
  emu::collective(0, [](const uint64_t*, uint64_t*) {});
}

inline unsigned __ballot_sync(unsigned, int pred) {
  return (unsigned)emu::collective(pred != 0, [](const uint64_t* v, uint64_t* r) {
    unsigned m = 0;
    for (int i = 0; i < 32; i++)
      if (v[i]) m |= 1u << i;
    for (int i = 0; i < 32; i++) r[i] = m;
  });
}

inline int __any_sync(unsigned m, int pred) { return __ballot_sync(m, pred) != 0; }
inline int __all_sync(unsigned m, int pred) { return __ballot_sync(m, pred) == 0xffffffffu; }

inline unsigned emu_match_any(uint64_t v) {
  return (unsigned)emu::collective(v, [](const uint64_t* v, uint64_t* r) {
    for (int i = 0; i < 32; i++) {
      unsigned m = 0;
      for (int j = 0; j < 32; j++)
        if (v[j] == v[i]) m |= 1u << j;
      r[i] = m;
    }
  });
}
inline unsigned __match_any_sync(unsigned, unsigned v) { return emu_match_any(v); }
inline unsigned __match_any_sync(unsigned, unsigned long long v) { return emu_match_any(v); }
inline unsigned __match_any_sync(unsigned, unsigned long v) { return emu_match_any(v); }

namespace emu {
inline uint64_t shfl64(uint64_t v, int src) {
  // lane's deposit: value; results: value of lane src. src differs per
  // lane, so pack nothing: exchange values first, then read.
  State& s = st();
  unsigned tid = threadIdx.x;
  WarpSync& w = s.warps[tid / 32];
  collective(v, [](const uint64_t* vals, uint64_t* res) {
    for (int i = 0; i < 32; i++) res[i] = vals[i];
  });
  // w.res now holds every lane's value and stays valid until every lane
  // has arrived at the next collective, which cannot happen before this
  // lane returns.
  return w.res[src & 31];
}
}  // namespace emu

#define __shfl_sync(mask, v, src) emu_shfl((v), (src))
template <class T>
inline T emu_shfl(T v, int src) {
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof(T));
  uint64_t got = emu::shfl64(bits, src);
  T out;
  memcpy(&out, &got, sizeof(T));
  return out;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; i++)
    if (x & (1u << i)) r |= 1u << (31 - i);
  return r;
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned sh) {
  sh &= 31;
  uint64_t v = ((uint64_t)hi << 32) | lo;
  return (unsigned)(v >> sh);
}
template <class T>
inline T __ldg(const T* p) { return *p; }
// Fibers never run at the same time, so a plain read-modify-write is atomic.
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  unsigned old = *p;
  *p = old + v;
  return old;
}
