// downsample_emu.cu: the downsample module's kernels (../downsample.cu,
// unchanged) on the CPU, served to the Go tests by harness.h. Built by
// internal/gpu emu_test.go:
//
//   g++ -O2 -std=c++17 -x c++ downsample_emu.cu -o downsample_emu
#include "../downsample.cu"

#include "harness.h"

#define KERNEL(NAME, T)                                                                      \
  if (!strcmp(name, #NAME)) {                                                                \
    EMU_ARGS(3);                                                                             \
    emu::launch(g, b, shmem, [&] { NAME((const T*)args[0], (T*)args[1], (const DownParams*)args[2]); }); \
    return true;                                                                             \
  }

bool emu_dispatch(const char* name, dim3 g, dim3 b, size_t shmem, const uint64_t* args, unsigned nargs,
                  int* status) {
  KERNEL(down_uint8, unsigned char)
  KERNEL(down_uint16, unsigned short)
  KERNEL(down_uint32, unsigned int)
  KERNEL(down_uint64, unsigned long long)
  KERNEL(down_int8, signed char)
  KERNEL(down_int16, short)
  KERNEL(down_int32, int)
  KERNEL(down_int64, long long)
  KERNEL(down_float32, float)
  KERNEL(down_float64, double)
  return false;
}
