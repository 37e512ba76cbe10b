// lz4_emu.cu: the lz4 module's kernels (../lz4.cu, unchanged) on the CPU,
// served to the Go tests by harness.h. Built by internal/gpu emu_test.go:
//
//   g++ -O2 -std=c++17 -x c++ lz4_emu.cu -o lz4_emu
#include "../lz4.cu"

#include "harness.h"

#define P(i) ((u8*)args[i])
#define W(i) ((u32*)args[i])
#define U(i) ((u32)args[i])

bool emu_dispatch(const char* name, dim3 g, dim3 b, size_t shmem, const uint64_t* args, unsigned nargs,
                  int* status) {
  if (!strcmp(name, "blosc_shuffle")) {
    EMU_ARGS(7);
    emu::launch(g, b, shmem, [&] { blosc_shuffle(P(0), P(1), U(2), U(3), U(4), U(5), U(6)); });
  } else if (!strcmp(name, "blosc_bitshuffle")) {
    EMU_ARGS(6);
    emu::launch(g, b, shmem, [&] { blosc_bitshuffle(P(0), P(1), U(2), U(3), U(4), U(5)); });
  } else if (!strcmp(name, "lz4_compress")) {
    EMU_ARGS(10);
    emu::launch(g, b, shmem, [&] { lz4_compress(P(0), P(1), W(2), U(3), U(4), U(5), U(6), U(7), U(8), W(9)); });
  } else if (!strcmp(name, "blosc_plan")) {
    EMU_ARGS(10);
    emu::launch(g, b, shmem, [&] { blosc_plan(W(0), W(1), W(2), W(3), U(4), U(5), U(6), U(7), U(8), U(9)); });
  } else if (!strcmp(name, "lz4_assemble")) {
    EMU_ARGS(15);
    emu::launch(g, b, shmem, [&] {
      lz4_assemble(P(0), P(1), P(2), W(3), W(4), W(5), P(6), U(7), W(8), U(9), U(10), U(11), U(12), U(13), U(14));
    });
  } else if (!strcmp(name, "blosc_geom")) {
    // Not a kernel: the geometry the kernels derive, for the Go test that
    // compares it with internal/blosc (args nbytes, T, bs, split, out).
    EMU_ARGS(5);
    Geom geo = blosc_geom(U(0), U(1), U(2), U(3));
    memcpy(P(4), &geo, sizeof geo);
  } else {
    return false;
  }
  return true;
}
