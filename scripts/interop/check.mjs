// Independent reader check for zwrite stores.
//
// Opens each store with zarrita (Zarr v3, sharding_indexed, with blosc and
// zstd decoded by numcodecs' WebAssembly builds, which share no code with
// zwrite), reads the whole array and compares every element with the raw
// input file the store was written from. It also checks, on its own, what
// zarrita skips: the crc32c of every shard index, and that every index entry
// points inside its shard file.
//
// Usage:
//   node check.mjs MANIFEST.json      manifest: [{"name", "store", "raw",
//                                       "codec"?, "shuffle"?, "dtype"?,
//                                       "shape"?}, ...]
//   node check.mjs STORE RAW          one store against one raw file
//
// Paths in a manifest are relative to the manifest's directory. Exits 0
// when every case matches, 1 on any mismatch or read error, 2 on bad usage.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";

const ITEMSIZE = {
  uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4,
  float32: 4, uint64: 8, int64: 8, float64: 8,
};

// crc32c (Castagnoli), reflected polynomial 0x82F63B78, as the Zarr v3
// crc32c codec specifies.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

function crc32c(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// codecName reduces the store's inner codec chain to zwrite's codec names.
function codecName(meta) {
  const sh = meta.codecs.find((c) => c.name === "sharding_indexed");
  if (!sh) throw new Error("no sharding_indexed codec in zarr.json");
  const inner = sh.configuration.codecs.filter((c) => c.name !== "bytes");
  if (inner.length === 0) return "none";
  if (inner.length !== 1) throw new Error(`unexpected inner codecs ${JSON.stringify(inner)}`);
  const c = inner[0];
  if (c.name === "zstd") return "zstd";
  if (c.name === "blosc" && c.configuration.cname === "lz4") return "lz4";
  if (c.name === "blosc" && c.configuration.cname === "zstd") return "blosc-zstd";
  return c.name;
}

// bloscShuffle is the blosc codec's shuffle setting, or undefined.
function bloscShuffle(meta) {
  const sh = meta.codecs.find((c) => c.name === "sharding_indexed");
  const b = sh.configuration.codecs.find((c) => c.name === "blosc");
  return b?.configuration.shuffle;
}

async function* walk(dir) {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === "ENOENT") return;
    throw err;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

// checkShards verifies every shard file's index checksum and entry bounds.
async function checkShards(store, meta) {
  const sh = meta.codecs.find((c) => c.name === "sharding_indexed").configuration;
  const shard = meta.chunk_grid.configuration.chunk_shape;
  const n = shard.reduce((a, d, i) => a * (d / sh.chunk_shape[i]), 1);
  const indexBytes = n * 16;
  const empty = 0xffffffffffffffffn;
  let shards = 0;
  for await (const f of walk(path.join(store, "c"))) {
    const buf = await fs.readFile(f);
    const rel = path.relative(store, f);
    if (buf.length < indexBytes + 4) throw new Error(`${rel}: ${buf.length} bytes, shorter than its index`);
    const idx = buf.subarray(buf.length - indexBytes - 4, buf.length - 4);
    const want = buf.readUInt32LE(buf.length - 4);
    const got = crc32c(idx);
    if (got !== want) throw new Error(`${rel}: index crc32c ${got.toString(16)}, stored ${want.toString(16)}`);
    const dataEnd = BigInt(buf.length - indexBytes - 4);
    for (let i = 0; i < n; i++) {
      const off = idx.readBigUInt64LE(i * 16);
      const len = idx.readBigUInt64LE(i * 16 + 8);
      if (off === empty && len === empty) continue;
      if (off + len > dataEnd) throw new Error(`${rel}: chunk ${i} at ${off}+${len} runs past the data (${dataEnd} bytes)`);
    }
    shards++;
  }
  return shards;
}

async function checkCase(c) {
  const meta = JSON.parse(await fs.readFile(path.join(c.store, "zarr.json"), "utf8"));
  if (meta.zarr_format !== 3 || meta.node_type !== "array") throw new Error("zarr.json is not a Zarr v3 array");
  const codec = codecName(meta);
  if (c.codec && c.codec !== codec) throw new Error(`codec ${codec}, want ${c.codec}`);
  if (c.shuffle && c.shuffle !== bloscShuffle(meta)) throw new Error(`blosc shuffle ${bloscShuffle(meta)}, want ${c.shuffle}`);
  if (c.dtype && c.dtype !== meta.data_type) throw new Error(`data_type ${meta.data_type}, want ${c.dtype}`);
  if (c.shape && JSON.stringify(c.shape) !== JSON.stringify(meta.shape)) {
    throw new Error(`shape ${JSON.stringify(meta.shape)}, want ${JSON.stringify(c.shape)}`);
  }
  const shards = await checkShards(c.store, meta);

  const arr = await zarr.open(new FileSystemStore(c.store), { kind: "array" });
  const raw = await fs.readFile(c.raw);
  const size = ITEMSIZE[arr.dtype];
  if (!size) throw new Error(`unexpected dtype ${arr.dtype}`);
  const elems = arr.shape.reduce((a, b) => a * b, 1);
  if (elems * size !== raw.length) {
    throw new Error(`array ${JSON.stringify(arr.shape)} ${arr.dtype} holds ${elems * size} bytes, raw file has ${raw.length}`);
  }
  let got = new Uint8Array(0);
  if (elems > 0) {
    const out = await zarr.get(arr);
    // A whole-array get returns a C-contiguous typed array; view its bytes
    // (little endian on every platform Node runs on here, as the raw is).
    got = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  }
  if (got.length !== raw.length) throw new Error(`read ${got.length} bytes, raw has ${raw.length}`);
  // Compare every element's bytes; byte compare treats NaN payloads exactly.
  if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.length), raw) !== 0) {
    let i = 0;
    while (got[i] === raw[i]) i++;
    const e = Math.floor(i / size);
    const idx = [];
    let r = e;
    for (let d = arr.shape.length - 1; d >= 0; d--) {
      idx.unshift(r % arr.shape[d]);
      r = Math.floor(r / arr.shape[d]);
    }
    throw new Error(`element [${idx.join(",")}] differs (byte ${i}: got ${got[i]}, raw ${raw[i]})`);
  }
  return { shape: arr.shape, dtype: arr.dtype, codec, shards };
}

async function main(argv) {
  let cases;
  if (argv.length === 1) {
    const dir = path.dirname(path.resolve(argv[0]));
    cases = JSON.parse(await fs.readFile(argv[0], "utf8")).map((c) => ({
      ...c,
      store: path.resolve(dir, c.store),
      raw: path.resolve(dir, c.raw),
    }));
  } else if (argv.length === 2) {
    cases = [{ name: argv[0], store: argv[0], raw: argv[1] }];
  } else {
    console.error("usage: node check.mjs MANIFEST.json | node check.mjs STORE RAW");
    return 2;
  }
  let failed = 0;
  for (const c of cases) {
    try {
      const r = await checkCase(c);
      console.log(`ok   ${c.name ?? c.store}: ${r.dtype} ${JSON.stringify(r.shape)} ${r.codec}, ${r.shards} shards`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${c.name ?? c.store}: ${err.message}`);
    }
  }
  console.log(`${cases.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
