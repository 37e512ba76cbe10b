// harness.cu runs the lz4 kernels (../lz4.cu, unchanged) on the CPU
// through cuda_emu.h over a fixed set of test cases, and writes every
// case's input and blosc output to a directory for the Go checker
// (internal/gpu TestLZ4Emulator and TestLZ4Vectors) to decode. It launches
// the kernels with the same grid rules as internal/gpu/lz4.go.
//
//   g++ -O2 -std=c++17 -x c++ harness.cu -o lz4emu
//   lz4emu vectors DIR [SUBSTR,SUBSTR...]   cases whose name contains one
//                                           of the substrings (all if none)
//
// LZ4_ACCEL overrides the acceleration (default 9, c-blosc's clevel 1).
// GPU runs are the Go tests' job (TestLZ4GPU*), on the same kernels.
#include "../lz4.cu"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define BLOCKSIZE 65536u

static uint64_t rng_state;
static uint64_t rnd() {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

// fill writes n elements of T bytes (little endian) following a pattern.
static void fill(std::vector<uint8_t>& buf, const std::string& kname, uint32_t T, uint64_t seed) {
  rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
  static const char* names[] = {"zeros", "noise", "xor", "thirds", "camera", "ramp", "runs", "sparse", "xor64", "grad", "bxor"};
  int kind = -1;
  for (int k = 0; k < 11; k++)
    if (kname == names[k]) kind = k;
  size_t ne = buf.size() / T;
  uint64_t mask = T == 8 ? ~0ull : ((1ull << (8 * T)) - 1);
  for (size_t i = 0; i < ne; i++) {
    uint64_t v = 0;
    size_t x = i % 512, y = i / 512;
    if (kind == 0) v = 0;
    else if (kind == 1) v = rnd();
    else if (kind == 2) v = (x ^ y) + (seed & 7);
    else if (kind == 3) {
      size_t third = i * 3 / ne;
      v = third == 0 ? 0 : third == 1 ? (x ^ y) : rnd();
    } else if (kind == 4) v = 100 + (rnd() % 23);
    else if (kind == 5) v = i / 7;
    else if (kind == 6) v = (rnd() % 5 == 0) ? rnd() % 3 : 7;
    else if (kind == 7) v = (rnd() % 97 == 0) ? rnd() : 0;
    else if (kind == 8) v = (i % 256 % 64) ^ (i / 256 % 64) ^ (i / 256 / 64);  // lz4_test.go's xor
    else if (kind == 9) v = i / 16;                                               // lz4_test.go's gradient
    else if (kind == 10) {  // lz4_test.go's bench-xor: 32x64x64 chunks of t^y^x
      size_t y0 = (seed / 36) % 32 * 64, x0 = seed % 36 * 64;
      v = (i / 4096) ^ (y0 + i / 64 % 64) ^ (x0 + i % 64);
    }
    v &= mask;
    memcpy(&buf[i * T], &v, T);
  }
}

struct Case {
  std::string name, kind;
  uint32_t T, nbytes, n;
};

static std::vector<Case> cases() {
  std::vector<Case> cs;
  const char* kinds[] = {"zeros", "noise", "xor", "thirds", "camera", "ramp", "runs", "sparse", "xor64", "grad", "bxor"};
  uint32_t Ts[] = {1, 2, 4, 8};
  for (auto k : kinds)
    for (uint32_t T : Ts) {
      // full 64 KiB blocks plus a short unsplit last block
      cs.push_back({std::string(k) + "_t" + std::to_string(T) + "_ragged", k, T, 3 * 65536 + 1000 * T, 2});
    }
  // shapes: tiny (memcpyed), below MIN_BUFFERSIZE per split, one block,
  // exactly one block, the fixture's 1536 bytes
  cs.push_back({"bxor_t2_256k", "bxor", 2, 262144, 3});
  uint32_t sizes[] = {2, 8, 100, 128, 1000, 1536, 4096, 65536, 65536 + 8, 131072};
  for (uint32_t sz : sizes)
    for (const char* k : {"xor", "camera", "zeros", "noise"}) {
      cs.push_back({std::string(k) + "_t2_" + std::to_string(sz), k, 2, sz, 3});
      if (sz % 8 == 0) cs.push_back({std::string(k) + "_t8_" + std::to_string(sz), k, 8, sz, 1});
    }
  return cs;
}


// Batch holds one batch's buffers (device or host, per build).
struct Batch {
  uint32_t T, nbytes, n, ostride, spc;
  size_t cstride, scratchShuf;
  uint8_t *in, *shuf, *lzout, *out;
  uint32_t *csizes, *sizes, *next;
};

// accel is LZ4's acceleration, 10 - clevel as c-blosc sets it; LZ4_ACCEL
// overrides the clevel-1 default of 9.
static uint32_t accel() {
  const char* e = getenv("LZ4_ACCEL");
  return e ? (uint32_t)atoi(e) : 9;
}

static size_t round16(size_t v) { return (v + 15) & ~size_t(15); }

static void* xalloc(size_t n) {
  void* p = aligned_alloc(16, round16(n));
  memset(p, 0, round16(n));
  return p;
}

static void xfree(void* p) {
  free(p);
}

static Batch make_batch(uint32_t T, uint32_t nbytes, uint32_t n) {
  Batch b;
  b.T = T;
  b.nbytes = nbytes;
  b.n = n;
  Geom g = lz4_geom(nbytes, T, BLOCKSIZE);
  b.spc = g.spc;
  b.cstride = g.cstride;
  b.ostride = (uint32_t)round16(nbytes + 16);
  size_t pad = 256;
  b.in = (uint8_t*)xalloc((size_t)nbytes * n + pad);
  b.shuf = (uint8_t*)xalloc(b.cstride * n + pad);
  b.lzout = (uint8_t*)xalloc(b.cstride * n + pad);
  b.out = (uint8_t*)xalloc((size_t)b.ostride * n);
  b.csizes = (uint32_t*)xalloc((size_t)4 * g.spc * n);
  b.sizes = (uint32_t*)xalloc((size_t)4 * n);
  b.next = (uint32_t*)xalloc(4);
  return b;
}

static void free_batch(Batch& b) {
  xfree(b.in);
  xfree(b.shuf);
  xfree(b.lzout);
  xfree(b.out);
  xfree(b.csizes);
  xfree(b.sizes);
  xfree(b.next);
}

// run enqueues the three kernels exactly as the Go plug-in does.
static void run(Batch& b) {
  Geom g = lz4_geom(b.nbytes, b.T, BLOCKSIZE);
  uint32_t tiles = (g.cstride + LZ4_SHUF_TILE - 1) / LZ4_SHUF_TILE;
  uint32_t g1 = tiles * b.n;
  uint32_t g2 = (uint32_t)(((uint64_t)b.n * g.spc + LZ4_WPB - 1) / LZ4_WPB);
  if (g2 > 132 * 16) g2 = 132 * 16;
  *b.next = 0;
  uint32_t g3 = g.nblocks * b.n;
  emu::launch(dim3(g1), dim3(LZ4_SHUF_CTA), [&] { lz4_shuffle(b.in, b.shuf, b.nbytes, b.T, BLOCKSIZE, b.n); });
  emu::launch(dim3(g2), dim3(32 * LZ4_WPB),
              [&] { lz4_compress(b.shuf, b.lzout, b.csizes, b.nbytes, b.T, BLOCKSIZE, b.n, accel(), b.next); });
  emu::launch(dim3(g3), dim3(LZ4_ASM_CTA), [&] {
    lz4_assemble(b.in, b.shuf, b.lzout, b.csizes, b.out, b.ostride, b.sizes, b.nbytes, b.T, BLOCKSIZE, b.n, 0);
  });
}

static void to_dev(uint8_t* dst, const void* src, size_t n) {
  memcpy(dst, src, n);
}

static void from_dev(void* dst, const void* src, size_t n) {
  memcpy(dst, src, n);
}

static void write_file(const std::string& path, const void* p, size_t n) {
  FILE* f = fopen(path.c_str(), "wb");
  if (!f || fwrite(p, 1, n, f) != n) {
    fprintf(stderr, "write %s failed\n", path.c_str());
    exit(1);
  }
  fclose(f);
}

static int vectors(const std::string& dir, const char* only) {
  std::string manifest;
  for (const Case& c : cases()) {
    if (only) {
      bool hit = false;
      std::string list = only;
      size_t a = 0;
      while (a <= list.size()) {
        size_t e = list.find(',', a);
        if (e == std::string::npos) e = list.size();
        if (e > a && c.name.find(list.substr(a, e - a)) != std::string::npos) hit = true;
        a = e + 1;
      }
      if (!hit) continue;
    }
    Batch b = make_batch(c.T, c.nbytes, c.n);
    std::vector<uint8_t> host((size_t)c.nbytes * c.n);
    for (uint32_t i = 0; i < c.n; i++) {
      std::vector<uint8_t> chunk(c.nbytes);
      fill(chunk, c.kind, c.T, i + 1);
      memcpy(&host[(size_t)i * c.nbytes], chunk.data(), c.nbytes);
    }
    to_dev(b.in, host.data(), host.size());
    run(b);
    std::vector<uint32_t> sizes(c.n);
    from_dev(sizes.data(), b.sizes, 4 * c.n);
    std::vector<uint8_t> outs;
    for (uint32_t i = 0; i < c.n; i++) {
      std::vector<uint8_t> o(sizes[i]);
      from_dev(o.data(), b.out + (size_t)i * b.ostride, sizes[i]);
      outs.insert(outs.end(), o.begin(), o.end());
    }
    write_file(dir + "/" + c.name + ".in", host.data(), host.size());
    write_file(dir + "/" + c.name + ".out", outs.data(), outs.size());
    write_file(dir + "/" + c.name + ".sizes", sizes.data(), 4 * sizes.size());
    manifest += c.name + " " + std::to_string(c.T) + " " + std::to_string(c.nbytes) + " " + std::to_string(c.n) + "\n";
    free_batch(b);
    fprintf(stderr, "%s done\n", c.name.c_str());
  }
  write_file(dir + "/manifest.txt", manifest.data(), manifest.size());
  return 0;
}


int main(int argc, char** argv) {
  if (argc >= 3 && !strcmp(argv[1], "vectors")) return vectors(argv[2], argc >= 4 ? argv[3] : nullptr);
  fprintf(stderr, "usage: %s vectors DIR [SUBSTR,SUBSTR...]\n", argv[0]);
  return 2;
}
