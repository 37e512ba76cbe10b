// OME-Zarr 0.5 metadata check for zwrite images.
//
// Validates the attributes of group zarr.json files with ajv (JSON Schema
// draft 2020-12) against the OME-Zarr 0.5 schemas in ngff-0.5/schemas:
// image.schema and strict_image.schema. Every schema there is loaded, so
// the $refs between them (by their https://ngff.openmicroscopy.org/0.5/
// $ids) resolve.
//
// Before any file, the validator proves it says yes and no where the
// schemas do: it runs the suites (the OME project's strict-image suite and
// zwrite's own, whose invalid cases change one thing each) and stops with
// exit 1 if any verdict differs.
//
// Usage:
//   node ome_check.mjs [--arrays] ZARR_JSON...   each an image group's zarr.json
//   node ome_check.mjs --suites                  only the suites
//
// --arrays also opens every level's array zarr.json (PATH/zarr.json beside
// the group's) and checks what the schemas cannot see: node_type array,
// as many dimensions as axes, dimension_names equal to the axis names (the
// spec's MUST), and no level larger than the one before it.
//
// Exits 0 when everything is valid, 1 on any invalid file or suite
// mismatch, 2 on bad usage.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const NGFF = path.join(here, "ngff-0.5");
const SUITES = [
  path.join(NGFF, "strict_image_suite.json"),
  path.join(here, "ome_strict_image_suite.json"),
  path.join(here, "ome_image_suite.json"),
];
const IMAGE = "https://ngff.openmicroscopy.org/0.5/schemas/image.schema";
const STRICT = "https://ngff.openmicroscopy.org/0.5/schemas/strict_image.schema";

// loadSchemas adds every schema file to one ajv instance and returns it
// with a map from the file's path relative to ngff-0.5 ("schemas/x.schema",
// the form the suites name their schema in) to its $id.
//
// ajv's strict schema mode (unknown or ignored keywords, anything ajv
// would read differently from the draft) reports through a logger: the
// one known finding in the spec's schemas (ome.schema has minContains
// without contains, which draft 2020-12 ignores) is accepted, anything
// else stops the check. strictTypes and strictRequired are off: they are
// style lints that flag the strict_* schemas' design (an allOf adding
// "required" without repeating the types) and never change a verdict.
const KNOWN_WARNINGS = ['strict mode: "minContains" without "contains" is ignored'];

async function loadSchemas() {
  const unexpected = [];
  const logger = {
    log: console.log,
    warn: (...m) => {
      const msg = m.join(" ");
      if (!KNOWN_WARNINGS.some((k) => msg.includes(k))) unexpected.push(msg);
    },
    error: (...m) => unexpected.push(m.join(" ")),
  };
  const ajv = new Ajv2020({
    allErrors: true, logger,
    strictSchema: "log", strictNumbers: true, strictTypes: false, strictTuples: false, strictRequired: false,
  });
  const byFile = new Map();
  const dir = path.join(NGFF, "schemas");
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith(".schema")).sort();
  if (files.length === 0) throw new Error(`no schemas in ${dir}`);
  for (const f of files) {
    const schema = JSON.parse(await fs.readFile(path.join(dir, f), "utf8"));
    if (typeof schema.$id !== "string") throw new Error(`${f}: no $id`);
    ajv.addSchema(schema);
    byFile.set(`schemas/${f}`, schema.$id);
  }
  // Compile them all now, so a schema ajv cannot read fails here.
  for (const id of byFile.values()) ajv.getSchema(id);
  if (unexpected.length > 0) throw new Error(`ajv on the schemas:\n${unexpected.join("\n")}`);
  return { ajv, byFile };
}

function describe(errors) {
  return (errors ?? []).map((e) => `  ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`).join("\n");
}

// runSuites checks every case's verdict and returns the number of
// mismatches.
async function runSuites({ ajv, byFile }) {
  let bad = 0;
  let yes = 0;
  let no = 0;
  for (const file of SUITES) {
    const suite = JSON.parse(await fs.readFile(file, "utf8"));
    const id = byFile.get(suite.schema.id);
    if (!id) throw new Error(`${path.basename(file)}: schema ${suite.schema.id} is not among the loaded schemas`);
    const validate = ajv.getSchema(id);
    suite.tests.forEach((t, i) => {
      const got = validate(t.data);
      if (got) yes++;
      else no++;
      if (got !== t.valid) {
        bad++;
        const name = t.formerly ?? t.description;
        console.log(`suite ${path.basename(file)} case ${i} (${name}): ajv says ${got ? "valid" : "invalid"}, the suite says ${t.valid ? "valid" : "invalid"}`);
        if (!got) console.log(describe(validate.errors));
      }
    });
  }
  if (bad === 0) console.log(`suites: all ${yes + no} verdicts agree (${yes} valid, ${no} invalid)`);
  if (yes === 0 || no === 0) {
    console.log("suites: the cases must include both valid and invalid documents");
    bad++;
  }
  return bad;
}

function sameList(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);
}

// checkArrays opens each level's zarr.json and returns a list of problems.
async function checkArrays(groupFile, ome) {
  const problems = [];
  const dir = path.dirname(groupFile);
  for (const [m, ms] of (ome.multiscales ?? []).entries()) {
    const names = (ms.axes ?? []).map((a) => a.name);
    let prev = null;
    for (const ds of ms.datasets ?? []) {
      const where = `multiscales[${m}] level ${JSON.stringify(ds.path)}`;
      let meta;
      try {
        meta = JSON.parse(await fs.readFile(path.join(dir, ds.path, "zarr.json"), "utf8"));
      } catch (e) {
        problems.push(`${where}: ${e.message}`);
        continue;
      }
      if (meta.zarr_format !== 3 || meta.node_type !== "array") {
        problems.push(`${where}: not a Zarr v3 array (zarr_format ${meta.zarr_format}, node_type ${meta.node_type})`);
        continue;
      }
      if (!Array.isArray(meta.shape) || meta.shape.length !== names.length) {
        problems.push(`${where}: shape ${JSON.stringify(meta.shape)} for ${names.length} axes`);
        continue;
      }
      if (!sameList(meta.dimension_names, names)) {
        problems.push(`${where}: dimension_names ${JSON.stringify(meta.dimension_names)}, the axes are ${JSON.stringify(names)}`);
      }
      if (prev && meta.shape.some((n, d) => n > prev[d])) {
        problems.push(`${where}: shape ${JSON.stringify(meta.shape)} is larger than the level before it, ${JSON.stringify(prev)}`);
      }
      prev = meta.shape;
    }
  }
  return problems;
}

async function checkFile(schemas, file, arrays) {
  let doc;
  try {
    doc = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (e) {
    console.log(`${file}: ${e.message}`);
    return false;
  }
  if (doc === null || typeof doc !== "object" || doc.zarr_format !== 3 || doc.node_type !== "group") {
    console.log(`${file}: not a Zarr v3 group zarr.json (zarr_format 3, node_type group)`);
    return false;
  }
  let ok = true;
  for (const id of [IMAGE, STRICT]) {
    const validate = schemas.ajv.getSchema(id);
    if (!validate(doc.attributes)) {
      console.log(`${file}: attributes are not valid against ${path.basename(id)}:\n${describe(validate.errors)}`);
      ok = false;
    }
  }
  if (ok && arrays) {
    const problems = await checkArrays(file, doc.attributes.ome);
    for (const p of problems) console.log(`${file}: ${p}`);
    ok = problems.length === 0;
  }
  if (ok) console.log(`${file}: valid OME-Zarr ${doc.attributes.ome.version} image`);
  return ok;
}

async function main() {
  const args = process.argv.slice(2);
  const arrays = args.includes("--arrays");
  const suitesOnly = args.includes("--suites");
  const files = args.filter((a) => !a.startsWith("--"));
  const unknown = args.filter((a) => a.startsWith("--") && a !== "--arrays" && a !== "--suites");
  if (unknown.length > 0 || (files.length === 0) !== suitesOnly) {
    console.error("usage: node ome_check.mjs [--arrays] ZARR_JSON...  |  node ome_check.mjs --suites");
    process.exit(2);
  }
  const schemas = await loadSchemas();
  if ((await runSuites(schemas)) > 0) {
    console.log("the validator disagrees with the suites: no file was checked");
    process.exit(1);
  }
  let ok = true;
  for (const f of files) ok = (await checkFile(schemas, f, arrays)) && ok;
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exit(1);
});
