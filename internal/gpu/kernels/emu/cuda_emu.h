// cuda_emu.h: a small host emulation of the CUDA execution model, so that
// the unchanged kernel sources (../lz4.cu, ../zstd.cu) compile with g++ and
// run on a CPU. Every thread of a CTA is a fiber (ucontext); warp
// collectives (__ballot_sync, __shfl_sync, __match_any_sync, __syncwarp)
// and __syncthreads are barriers that exchange values between the fibers
// of a warp or CTA. CTAs run one after another, so `__shared__` can be a
// function-local static, and atomics are plain read-modify-writes (a fiber
// only yields inside a collective).
//
// Limits, on purpose: collectives must be reached by every lane of a warp
// (full mask) and __syncthreads by the whole CTA; the kernels keep control
// flow warp-uniform around them, which is also what makes them correct on
// real hardware. A CTA's last warp may be partial (blockDim.x need not be
// a multiple of 32); its collectives then combine the lanes that exist.
// Shared memory keeps what the previous CTA left, as on a GPU (the first
// CTA of a launch finds pseudo-random 16-bit words in dynamic shared
// memory), and memory from the harness's allocator starts with a byte that
// changes from call to call: a kernel that reads memory it did not write
// gives bytes that depend on the other chunks of the batch or on the run,
// which the determinism tests (same bytes twice, and a chunk alone as in a
// batch) catch.
//
// Fibers switch with a few instructions on x86-64 (emu_ctx_switch below:
// the callee-saved registers and the stack pointer), elsewhere with
// ucontext, whose swapcontext makes a system call per switch (about 30x
// slower on the LZ4 kernel, which switches at every warp collective).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <ucontext.h>
#include <vector>

// Every standard header the kernels and harness.h use is included above,
// before __noinline__ is defined below: newer libstdc++ headers spell
// __attribute__((__noinline__)), which the macro would turn into an
// attribute inside an attribute (g++ 13: "'noinline' was not declared").
// A header included after this file must come from this list.

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __shared__ static
#define __constant__ const
#define __restrict__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct uint2 {
  unsigned x, y;
};
struct uint4 {
  unsigned x, y, z, w;
};

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

#if defined(__x86_64__)
// emu_ctx_switch saves the callee-saved registers on the current stack,
// stores the stack pointer in *from, switches to the stack `to` and
// restores what was saved there (System V AMD64: rbx, rbp, r12-r15).
extern "C" void emu_ctx_switch(void** from, void* to);
asm(R"(
.text
.globl emu_ctx_switch
.type emu_ctx_switch,@function
emu_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size emu_ctx_switch, .-emu_ctx_switch
.section .note.GNU-stack,"",@progbits
.text
)");
#define EMU_FAST_SWITCH 1
#endif

namespace emu {

// Fiber stacks: the kernels keep little on the stack (tables live in
// shared memory), so 128 KiB per thread is plenty.
constexpr size_t kStack = 128 * 1024;

struct Fiber {
#ifdef EMU_FAST_SWITCH
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  std::unique_ptr<char[]> stack;
  bool done = false;
};

struct WarpSync {
  int arrived = 0;
  int size = 32;  // lanes in this warp (the last one may be partial)
  unsigned gen = 0;
  uint64_t vals[32];
  uint64_t res[32];
};

struct State {
#ifdef EMU_FAST_SWITCH
  void* schedSP = nullptr;
#else
  ucontext_t sched;
#endif
  std::vector<Fiber> fibers;  // grown, never shrunk: stacks are reused
  std::vector<WarpSync> warps;
  int cur = 0;
  int barArrived = 0;
  unsigned barGen = 0;
  std::function<void()> body;
  std::vector<unsigned char> dyn;  // dynamic shared memory of the launch
  unsigned fill = 1;               // junk generator state
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
#ifdef EMU_FAST_SWITCH
  emu_ctx_switch(&s.fibers[s.cur].sp, s.schedSP);
#else
  swapcontext(&s.fibers[s.cur].ctx, &s.sched);
#endif
}

inline void trampoline() {
  State& s = st();
  s.body();
  s.fibers[s.cur].done = true;
#ifdef EMU_FAST_SWITCH
  emu_ctx_switch(&s.fibers[s.cur].sp, s.schedSP);  // never resumed
  abort();
#endif
  // ucontext: returning goes to uc_link = scheduler
}

// start prepares fiber f to run trampoline from the top of its stack.
inline void start(Fiber& f) {
  f.done = false;
#ifdef EMU_FAST_SWITCH
  // The first switch pops six zero registers and returns into trampoline
  // with the stack as a call would leave it (rsp % 16 == 8 at entry).
  uintptr_t top = ((uintptr_t)f.stack.get() + kStack) & ~(uintptr_t)15;
  void** sp = (void**)(top - 16);
  sp[0] = (void*)&trampoline;
  sp[1] = nullptr;
  sp -= 6;
  for (int i = 0; i < 6; i++) sp[i] = nullptr;
  f.sp = sp;
#else
  State& s = st();
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack.get();
  f.ctx.uc_stack.ss_size = kStack;
  f.ctx.uc_link = &s.sched;
  makecontext(&f.ctx, trampoline, 0);
#endif
}

inline void resume(Fiber& f) {
  State& s = st();
#ifdef EMU_FAST_SWITCH
  emu_ctx_switch(&s.schedSP, f.sp);
#else
  swapcontext(&s.sched, &f.ctx);
#endif
}

// collective runs combine() once every lane of the caller's warp has
// deposited its value, then hands each lane its result. Lanes past a
// partial warp's end read as 0.
template <class F>
inline uint64_t collective(uint64_t v, F combine) {
  State& s = st();
  unsigned tid = threadIdx.x;
  WarpSync& w = s.warps[tid / 32];
  unsigned lane = tid % 32;
  w.vals[lane] = v;
  unsigned gen = w.gen;
  if (++w.arrived == w.size) {
    for (int i = w.size; i < 32; i++) w.vals[i] = 0;
    combine(w.vals, w.res);
    w.arrived = 0;
    w.gen++;
  } else {
    while (w.gen == gen) yield();
  }
  return w.res[lane];
}

// dynamic_shared is the launch's `extern __shared__` buffer.
inline unsigned char* dynamic_shared() { return st().dyn.data(); }

// launch runs kernel on every CTA of grid, one CTA after another, with
// shmem bytes of dynamic shared memory.
template <class K>
inline void launch(dim3 grid, dim3 block, size_t shmem, K kernel) {
  State& s = st();
  if (block.x == 0 || block.x > 1024 || block.y != 1 || block.z != 1) {
    fprintf(stderr, "emu: blockDim must be (1..1024,1,1)\n");
    abort();
  }
  gridDim = grid;
  blockDim = block;
  while (s.fibers.size() < block.x) {
    s.fibers.emplace_back();
    s.fibers.back().stack.reset(new char[kStack]);
  }
  unsigned nw = (block.x + 31) / 32;
  s.warps.assign(nw, WarpSync());
  for (unsigned w = 0; w < nw; w++) s.warps[w].size = (int)(block.x - 32 * w < 32 ? block.x - 32 * w : 32);
  s.dyn.resize(shmem + 16);
  for (size_t i = 0; i + 1 < s.dyn.size(); i += 2) {
    s.fill = s.fill * 1103515245u + 12345u;
    uint16_t junk = (uint16_t)(s.fill >> 16);
    memcpy(&s.dyn[i], &junk, 2);
  }
  s.body = kernel;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        blockIdx = dim3(bx, by, bz);
        s.barArrived = 0;
        for (unsigned t = 0; t < block.x; t++) start(s.fibers[t]);
        for (;;) {
          bool any = false;
          for (unsigned t = 0; t < block.x; t++) {
            if (s.fibers[t].done) continue;
            any = true;
            s.cur = (int)t;
            threadIdx = dim3(t, 0, 0);
            resume(s.fibers[t]);
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
inline int __all_sync(unsigned, int pred) {
  // Lanes past a partial warp's end count as true.
  emu::State& s = emu::st();
  int size = s.warps[threadIdx.x / 32].size;
  unsigned all = size == 32 ? 0xffffffffu : (1u << size) - 1u;
  return (__ballot_sync(0xffffffffu, pred) & all) == all;
}

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
  // Exchange every lane's value, then each lane reads its source's.
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
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline int __clzll(unsigned long long x) { return x ? __builtin_clzll(x) : 64; }
inline double __longlong_as_double(long long x) {
  double d;
  memcpy(&d, &x, sizeof d);
  return d;
}
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
// Fibers never run at the same time and only switch inside collectives, so
// a plain read-modify-write is atomic.
template <class T>
inline T atomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicOr(T* p, T v) {
  T old = *p;
  *p = old | v;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  T old = *p;
  *p = v < old ? v : old;
  return old;
}
// CUDA's integer min and max.
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
