// harness.h: the command loop of a kernel emulator. A harness (lz4_emu.cu,
// zstd_emu.cu) includes one kernel source and this file, and defines
//
//   bool emu_dispatch(const char* name, dim3 grid, dim3 block, size_t shmem,
//                     const uint64_t* args, unsigned nargs, int* status);
//
// which launches kernel `name` through emu::launch with its arguments cast
// to the kernel's parameter types (false: no such kernel). The Go tests
// (internal/gpu emu_test.go) drive it over stdin/stdout exactly as the
// codecs drive a CUDA stream: they allocate "device" memory, copy to and
// from it, and launch kernels by name with the grids and arguments the Go
// codec computed, so the emulator checks the Go launch code too.
//
// Wire format, little endian. Each request is an opcode byte and its
// operands; each reply starts with a status byte (0 ok).
//   'A' u64 n              -> u64 ptr       allocate (filled with junk that
//                                           changes from call to call)
//   'F' u64 ptr                             free
//   'H' u64 ptr u64 n data                  host to device
//   'D' u64 ptr u64 n      -> data          device to host
//   'C' u64 dst u64 src u64 n               device to device
//   'M' u64 ptr u8 v u64 n                  memset bytes
//   'W' u64 ptr u32 v u64 n                 memset 32-bit words
//   'L' u8 len name u32 gx gy gz bx by bz u32 shmem u8 nargs u64 args...
//                                           launch, returns when it is done
//   'Q'                                     quit
// Statuses: 1 unknown kernel, 2 wrong argument count, 3 bad request.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

bool emu_dispatch(const char* name, dim3 grid, dim3 block, size_t shmem, const uint64_t* args, unsigned nargs,
                  int* status);

// EMU_ARGS checks the argument count inside emu_dispatch.
#define EMU_ARGS(n)         \
  if (nargs != (n)) {       \
    *status = 2;            \
    return true;            \
  }

namespace emu {

inline void readn(void* p, size_t n) {
  if (n && fread(p, 1, n, stdin) != n) exit(0);  // the client went away
}
inline uint64_t r64() {
  uint64_t v;
  readn(&v, 8);
  return v;
}
inline uint32_t r32() {
  uint32_t v;
  readn(&v, 4);
  return v;
}
inline uint8_t r8() {
  uint8_t v;
  readn(&v, 1);
  return v;
}
inline void reply(uint8_t status, const void* p = nullptr, size_t n = 0) {
  fwrite(&status, 1, 1, stdout);
  if (n) fwrite(p, 1, n, stdout);
  fflush(stdout);
}

// Allocations keep 256 bytes of slack behind them, as the GPU allocator's
// granularity does, so a kernel's documented over-reads stay inside.
inline std::map<uint64_t, size_t>& allocs() {
  static std::map<uint64_t, size_t> m;
  return m;
}

// valid reports whether [p, p+n) lies inside one allocation.
inline bool valid(uint64_t p, uint64_t n) {
  auto& m = allocs();
  auto it = m.upper_bound(p);
  if (it == m.begin()) return false;
  --it;
  return p >= it->first && p + n <= it->first + it->second;
}

inline int serve() {
  for (;;) {
    int op = fgetc(stdin);
    if (op == EOF || op == 'Q') return 0;
    switch (op) {
      case 'A': {
        uint64_t n = r64();
        size_t sz = (n + 256 + 255) & ~(size_t)255;
        void* p = aligned_alloc(256, sz);
        if (!p) {
          reply(3);
          break;
        }
        static unsigned fill = 0;
        memset(p, (int)(0xA5 + 61 * fill++) & 255, sz);
        allocs()[(uint64_t)p] = n;
        uint64_t v = (uint64_t)p;
        reply(0, &v, 8);
        break;
      }
      case 'F': {
        uint64_t p = r64();
        auto it = allocs().find(p);
        if (it == allocs().end()) {
          reply(3);
          break;
        }
        allocs().erase(it);
        free((void*)p);
        reply(0);
        break;
      }
      case 'H': {
        uint64_t p = r64(), n = r64();
        std::vector<char> buf(n);
        readn(buf.data(), n);
        if (!valid(p, n)) {
          reply(3);
          break;
        }
        memcpy((void*)p, buf.data(), n);
        reply(0);
        break;
      }
      case 'D': {
        uint64_t p = r64(), n = r64();
        if (!valid(p, n)) {
          reply(3);
          break;
        }
        reply(0, (void*)p, n);
        break;
      }
      case 'C': {
        uint64_t d = r64(), s = r64(), n = r64();
        if (!valid(d, n) || !valid(s, n)) {
          reply(3);
          break;
        }
        memmove((void*)d, (void*)s, n);
        reply(0);
        break;
      }
      case 'M': {
        uint64_t p = r64();
        uint8_t v = r8();
        uint64_t n = r64();
        if (!valid(p, n)) {
          reply(3);
          break;
        }
        memset((void*)p, v, n);
        reply(0);
        break;
      }
      case 'W': {
        uint64_t p = r64();
        uint32_t v = r32();
        uint64_t n = r64();
        if (!valid(p, 4 * n) || (p & 3)) {
          reply(3);
          break;
        }
        for (uint64_t i = 0; i < n; i++) ((uint32_t*)p)[i] = v;
        reply(0);
        break;
      }
      case 'L': {
        uint8_t len = r8();
        char name[256];
        readn(name, len);
        name[len] = 0;
        uint32_t g[3], b[3];
        for (auto& v : g) v = r32();
        for (auto& v : b) v = r32();
        uint32_t shmem = r32();
        uint8_t nargs = r8();
        uint64_t args[64];
        if (nargs > 64) {
          reply(3);
          break;
        }
        for (unsigned i = 0; i < nargs; i++) args[i] = r64();
        int status = 0;
        if (!emu_dispatch(name, dim3(g[0] ? g[0] : 1, g[1] ? g[1] : 1, g[2] ? g[2] : 1),
                          dim3(b[0] ? b[0] : 1, b[1] ? b[1] : 1, b[2] ? b[2] : 1), shmem, args, nargs, &status))
          status = 1;
        reply((uint8_t)status);
        break;
      }
      default:
        reply(3);
        return 1;
    }
  }
}

}  // namespace emu

int main() { return emu::serve(); }
