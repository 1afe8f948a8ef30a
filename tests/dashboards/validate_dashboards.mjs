// Validates Grafana dashboard JSON files against a JSON Schema generated from the `Dashboard`
// type of npm @grafana/schema (its TypeScript types; the package ships no JSON Schema).
//
//   node validate_dashboards.mjs [--schema-out FILE] dashboard.json...
//
// Runs from the directory where install_npm_deps.sh installed the pinned packages (imports
// resolve from this script's directory). The schema is generated on every run (a few seconds)
// so that a changed @grafana/schema pin is always what is checked; --schema-out keeps a copy.
// Prints one line per file (ok / INVALID with up to 8 errors); exit 0 when all are valid, 1 when
// any is invalid or unreadable, 2 on a usage error or when the schema cannot be generated.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import { createGenerator } from "ts-json-schema-generator";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function usage(msg) {
  console.error(`validate_dashboards: ${msg}\nusage: node validate_dashboards.mjs ` +
                `[--schema-out FILE] dashboard.json...`);
  process.exit(2);
}

const args = process.argv.slice(2);
let schemaOut = "";
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--schema-out") {
    if (i + 1 >= args.length) usage("--schema-out needs a file");
    schemaOut = args[++i];
  } else if (args[i].startsWith("-")) {
    usage(`unknown flag ${args[i]}`);
  } else {
    files.push(args[i]);
  }
}
if (files.length === 0) usage("no dashboard files");

// The dashboard types of the pinned @grafana/schema ("x" is the current, versioned kind).
let typesPath;
try {
  const pkgDir = path.dirname(require.resolve("@grafana/schema/package.json"));
  typesPath = path.join(pkgDir, "dist/types/raw/dashboard/x/types.gen.d.ts");
  const version = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version;
  console.log(`schema  @grafana/schema ${version} (${path.relative(here, typesPath)})`);
} catch (e) {
  console.error(`validate_dashboards: @grafana/schema is not installed next to ${here}: ${e}`);
  process.exit(2);
}
let schema;
try {
  schema = createGenerator({ path: typesPath, type: "Dashboard", skipTypeCheck: true })
               .createSchema("Dashboard");
} catch (e) {
  console.error(`validate_dashboards: cannot generate the schema: ${e}`);
  process.exit(2);
}
// A schema that accepts anything would make every check pass: insist on the strict shape.
const dash = schema.definitions?.Dashboard;
if (!dash || dash.additionalProperties !== false || !dash.properties?.panels) {
  console.error("validate_dashboards: the generated Dashboard schema is not the strict object " +
                "expected (additionalProperties false, panels)");
  process.exit(2);
}
if (schemaOut) fs.writeFileSync(schemaOut, JSON.stringify(schema, null, 1));

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);
let bad = 0;
for (const f of files) {
  let d;
  try {
    d = JSON.parse(fs.readFileSync(f, "utf8"));
  } catch (e) {
    bad++;
    console.log(`INVALID ${f}: ${e.message}`);
    continue;
  }
  if (validate(d)) {
    console.log(`ok      ${f} (schemaVersion ${d.schemaVersion}, ${d.panels?.length ?? 0} panels)`);
  } else {
    bad++;
    console.log(`INVALID ${f}: ${validate.errors.length} errors`);
    for (const e of validate.errors.slice(0, 8)) {
      const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : "";
      console.log(`  ${e.instancePath || "/"} ${e.message}${extra}`);
    }
  }
}
console.log(`${files.length - bad} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
