// zstd_emu.cu: the zstd module's kernels (../zstd.cu, unchanged: the zstd
// codec and blosc-zstd) on the CPU, served to the Go tests by harness.h.
// Built by internal/gpu emu_test.go:
//
//   g++ -O2 -std=c++17 -x c++ zstd_emu.cu -o zstd_emu
#include "../zstd.cu"

#include "harness.h"

#define P(i) ((u8*)args[i])
#define W(i) ((u32*)args[i])
#define U(i) ((u32)args[i])
#define L(i) ((u64)args[i])

bool emu_dispatch(const char* name, dim3 g, dim3 b, size_t shmem, const uint64_t* args, unsigned nargs,
                  int* status) {
  if (!strcmp(name, "zstd_blocks")) {
    EMU_ARGS(10);
    emu::launch(g, b, shmem, [&] { zstd_blocks(P(0), L(1), L(2), U(3), L(4), U(5), U(6), P(7), W(8), U(9)); });
  } else if (!strcmp(name, "zstd_seqs")) {
    EMU_ARGS(8);
    emu::launch(g, b, shmem, [&] { zstd_seqs(L(0), L(1), U(2), L(3), U(4), U(5), P(6), W(7)); });
  } else if (!strcmp(name, "zstd_assemble")) {
    EMU_ARGS(8);
    emu::launch(g, b, shmem, [&] { zstd_assemble(P(0), P(1), W(2), L(3), U(4), P(5), L(6), W(7)); });
  } else if (!strcmp(name, "blosc_shuffle")) {
    EMU_ARGS(7);
    emu::launch(g, b, shmem, [&] { blosc_shuffle(P(0), P(1), U(2), U(3), U(4), U(5), U(6)); });
  } else if (!strcmp(name, "blosc_bitshuffle")) {
    EMU_ARGS(6);
    emu::launch(g, b, shmem, [&] { blosc_bitshuffle(P(0), P(1), U(2), U(3), U(4), U(5)); });
  } else if (!strcmp(name, "blosc_plan")) {
    EMU_ARGS(10);
    emu::launch(g, b, shmem, [&] { blosc_plan(W(0), W(1), W(2), W(3), U(4), U(5), U(6), U(7), U(8), U(9)); });
  } else if (!strcmp(name, "bzstd_sizes")) {
    EMU_ARGS(7);
    emu::launch(g, b, shmem, [&] { bzstd_sizes(W(0), W(1), U(2), U(3), U(4), U(5), U(6)); });
  } else if (!strcmp(name, "bzstd_assemble")) {
    EMU_ARGS(16);
    emu::launch(g, b, shmem, [&] {
      bzstd_assemble(P(0), P(1), P(2), W(3), W(4), W(5), W(6), P(7), U(8), W(9), U(10), U(11), U(12), U(13), U(14),
                     U(15));
    });
  } else {
    return false;
  }
  return true;
}
