// Validates an AsyncAPI document the way `asyncapi validate --fail-severity warn` does: the
// CLI's validate command is this same @asyncapi/parser with its built-in ruleset. The parser
// alone installs in a few seconds; the CLI brings a bundled web studio of over a gigabyte.
//
//   node validate-asyncapi.mjs NODE_MODULES_DIR ASYNCAPI_JSON
//
// Exits 1 when the document does not parse or any diagnostic is an error or a warning.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [nodeModules, documentPath] = process.argv.slice(2);
if (documentPath === undefined) {
  console.error("usage: node validate-asyncapi.mjs NODE_MODULES_DIR ASYNCAPI_JSON");
  process.exit(2);
}

// The pinned tools live outside this directory, so resolve them from there.
const require = createRequire(join(resolve(nodeModules), "resolve-from-here.js"));
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser/cjs");

const source = resolve(documentPath);
const { document, diagnostics } = await new Parser().parse(readFileSync(source, "utf8"), { source });

const severityName = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};
const failing = diagnostics.filter((d) => d.severity <= DiagnosticSeverity.Warning);
for (const d of diagnostics) {
  const pointer = "/" + d.path.map((segment) => String(segment).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
  console.error(`${documentPath}: ${severityName[d.severity]} ${d.code} at ${pointer}: ${d.message}`);
}
if (document === undefined || failing.length > 0) {
  console.error(`${documentPath}: not a valid AsyncAPI document (${failing.length} error(s) or warning(s))`);
  process.exit(1);
}
console.log(`${documentPath}: valid AsyncAPI ${document.version()} document, ${diagnostics.length} diagnostic(s) below warning level`);
