// c-blosc cross-check for zwrite's blosc package (internal/blosc).
//
// numcodecs' Blosc is c-blosc 1.x compiled to WebAssembly: it shares no
// code with zwrite. This script does both directions of the check the Go
// test TestNumcodecs (internal/blosc/numcodecs_test.go) drives:
//
//   * decode: every buffer zwrite encoded is decoded by c-blosc and must
//     give exactly the raw bytes it was made from;
//   * encode: c-blosc encodes raw inputs with the given cname, clevel,
//     shuffle and blocksize, and writes the buffers for the Go side to
//     decode (and, for lz4, to compare with its own encoding).
//
// numcodecs' WASM build always compresses with typesize 4 (its binding
// passes sizeof(int)); the header records it, and decoding honours
// whatever typesize a buffer's header says.
//
// Usage: node blosc_check.mjs MANIFEST.json
//   manifest: {"decode": [{"blosc", "raw"}], "encode": [{"raw", "cname",
//   "clevel", "shuffle" (0 none, 1 byte, 2 bit), "blocksize", "out"}]}
//   Paths are relative to the manifest's directory. Exits 0 when every
//   decode matches and every encode was written, 1 otherwise, 2 on bad
//   usage.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import Blosc from "numcodecs/blosc";

function header(buf) {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    flags: buf[2], typesize: buf[3],
    nbytes: v.getUint32(4, true), blocksize: v.getUint32(8, true), cbytes: v.getUint32(12, true),
  };
}

async function main(argv) {
  if (argv.length !== 1) {
    console.error("usage: node blosc_check.mjs MANIFEST.json");
    return 2;
  }
  const dir = path.dirname(path.resolve(argv[0]));
  const m = JSON.parse(await fs.readFile(argv[0], "utf8"));
  let failed = 0, encodeFailed = 0;
  for (const c of m.decode ?? []) {
    const enc = new Uint8Array(await fs.readFile(path.resolve(dir, c.blosc)));
    const raw = await fs.readFile(path.resolve(dir, c.raw));
    const h = header(enc);
    // numcodecs does not check c-blosc's return code (it returns whatever
    // its output buffer holds), so the bytes themselves are the check.
    const got = await new Blosc().decode(enc);
    if (got.length !== raw.length || Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.length), raw) !== 0) {
      let i = 0;
      while (i < got.length && got[i] === raw[i]) i++;
      console.log(`FAIL decode ${c.blosc}: flags 0x${h.flags.toString(16)} typesize ${h.typesize} blocksize ${h.blocksize}: ` +
        `${got.length} bytes, raw ${raw.length}, first difference at byte ${i}`);
      failed++;
    }
  }
  for (const c of m.encode ?? []) {
    const raw = new Uint8Array(await fs.readFile(path.resolve(dir, c.raw)));
    const codec = new Blosc(c.clevel, c.cname, c.shuffle, c.blocksize);
    const enc = await codec.encode(raw);
    if (enc.length < 16) {
      console.log(`FAIL encode ${c.out}: c-blosc gave ${enc.length} bytes`);
      encodeFailed++;
      continue;
    }
    await fs.writeFile(path.resolve(dir, c.out), enc);
  }
  const n = (m.decode ?? []).length, e = (m.encode ?? []).length;
  console.log(`${n - failed} of ${n} zwrite buffers decoded by c-blosc to their input; ${e - encodeFailed} of ${e} c-blosc buffers written`);
  return failed || encodeFailed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
