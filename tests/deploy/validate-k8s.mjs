// Offline schema check of Kubernetes manifests (the Helm chart's `helm template` output).
//
//   node validate-k8s.mjs --modules DIR FILE...
//
// DIR holds node_modules with kubernetes-models, @kubernetes-models/prometheus-operator and js-yaml
// (tests/deploy/fetch-tools.sh installs them). Every YAML document of every FILE must be an object
// whose apiVersion/kind has a model in one of those packages; there is no "skip": an unknown kind
// fails. Each object is checked twice:
//   1. the package's own validator (ajv over the bundled OpenAPI schema): types, enums, required;
//   2. unknown fields, which those schemas let through (a misspelt `securityContxt` would be
//      silently ignored by the API server's non-strict decoding). The object is wrapped in a Proxy
//      that records which keys the validator looks up; a key of an object that the validator
//      inspected but never looked up is not in the schema. Objects the validator enumerates (maps
//      such as labels) and objects it does not look into (free-form fields) are not judged.
// Prints one line per object ("ok   Kind/name" or "FAIL Kind/name: reasons"); exit 0 when all are
// ok, 1 otherwise, 2 on usage errors.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

function usage(message) {
  console.error(`validate-k8s.mjs: ${message}\nusage: node validate-k8s.mjs --modules DIR FILE...`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args[0] !== "--modules" || args.length < 3) usage("wants --modules DIR and at least one FILE");
const modules = path.resolve(args[1], "node_modules");
const files = args.slice(2);

const importFile = (file) => import(pathToFileURL(file).href);
const yaml = await importFile(path.join(modules, "js-yaml/dist/js-yaml.mjs"));

// The module of an apiVersion/kind, or null when no package has it.
function modelFile(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Za-z]+$/.test(kind)) {
    return null;
  }
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (!/^[a-z0-9.]*$/.test(group) || !/^v[0-9a-z]+$/.test(version)) return null;
  const candidates =
    group === "monitoring.coreos.com"
      ? [path.join(modules, "@kubernetes-models/prometheus-operator", group, version, kind + ".js")]
      : [path.join(modules, "kubernetes-models", group, version, kind + ".js")];
  return candidates.find((f) => fs.existsSync(f)) ?? null;
}

// Wraps `value` so that every key looked up on it (or on anything reached through it) is recorded
// in `seen` (object -> {path, read: Set, enumerated}).
function tracked(value, objectPath, seen, proxies) {
  if (value === null || typeof value !== "object") return value;
  if (proxies.has(value)) return proxies.get(value);
  const record = { path: objectPath, read: new Set(), enumerated: false };
  seen.set(value, record);
  const proxy = new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key !== "string") return Reflect.get(target, key, receiver);
      record.read.add(key);
      return tracked(Reflect.get(target, key, receiver), `${objectPath}/${key}`, seen, proxies);
    },
    has(target, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      record.enumerated = true;
      return Reflect.ownKeys(target);
    },
    getOwnPropertyDescriptor(target, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  });
  proxies.set(value, proxy);
  return proxy;
}

function unknownFields(seen) {
  const found = [];
  for (const [value, record] of seen) {
    if (Array.isArray(value) || record.enumerated || record.read.size === 0) continue;
    for (const key of Object.keys(value)) {
      if (!record.read.has(key)) found.push(`${record.path}/${key}: unknown field`);
    }
  }
  return found;
}

async function check(object) {
  if (object === null || typeof object !== "object" || Array.isArray(object)) {
    return { name: "(not an object)", problems: ["a document that is not a mapping"] };
  }
  const name = `${object.apiVersion}/${object.kind}/${object.metadata?.name ?? "(no name)"}`;
  const problems = [];
  if (typeof object.metadata?.name !== "string" || object.metadata.name === "") {
    problems.push("/metadata/name: missing");
  }
  const file = modelFile(object.apiVersion, object.kind);
  if (file === null) {
    problems.push("apiVersion/kind unknown to kubernetes-models and prometheus-operator");
    return { name, problems };
  }
  const exported = await importFile(file);
  const model = exported[object.kind];
  if (typeof model?.prototype?.validate !== "function") {
    return { name, problems: [`${file} has no model ${object.kind}`] };
  }
  const seen = new Map();
  try {
    model.prototype.validate.call(tracked(object, "", seen, new Map()));
  } catch (e) {
    problems.push(String(e.message ?? e));
  }
  problems.push(...unknownFields(seen));
  return { name, problems };
}

let failed = 0;
let count = 0;
for (const file of files) {
  let documents;
  try {
    documents = yaml.loadAll(fs.readFileSync(file, "utf8"));
  } catch (e) {
    console.log(`FAIL ${file}: ${e.message}`);
    failed++;
    continue;
  }
  const names = new Set();
  for (const object of documents) {
    if (object === null || object === undefined) continue;  // an empty document
    count++;
    const { name, problems } = await check(object);
    if (names.has(name)) problems.push("a second object with this apiVersion, kind and name");
    names.add(name);
    if (problems.length === 0) {
      console.log(`ok   ${name}`);
    } else {
      failed++;
      console.log(`FAIL ${name}: ${problems.join("; ")}`);
    }
  }
}
if (count === 0) {
  console.log("FAIL no object in " + files.join(" "));
  process.exit(1);
}
console.log(`${count - failed} of ${count} objects ok`);
process.exit(failed === 0 ? 0 : 1);
