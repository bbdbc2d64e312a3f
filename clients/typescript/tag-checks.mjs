// Writes tags.ts: compile-time checks, one per message type listed in spec/schema/schema-set.json,
// that the generated unions hold exactly those tags and that narrowing a union by each tag
// yields exactly the interface of that message's own schema file. usage.ts checks a few
// messages by hand; this covers every one, so that a generator dropping a member from a
// union, or merging two, fails `tsc` too.
//
//   node tag-checks.mjs SCHEMA_SET_JSON SCHEMA_DIR OUT_TS

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [schemaSetPath, schemaDir, outPath] = process.argv.slice(2);
if (outPath === undefined) {
  console.error("usage: node tag-checks.mjs SCHEMA_SET_JSON SCHEMA_DIR OUT_TS");
  process.exit(2);
}

const schemaSet = JSON.parse(readFileSync(schemaSetPath, "utf8"));
if (schemaSet.discriminator !== "type") {
  console.error(`${schemaSetPath}: discriminator is ${JSON.stringify(schemaSet.discriminator)}, not "type"`);
  process.exit(1);
}

const identifier = /^[A-Z][A-Za-z0-9]*$/;
const imports = [];
const checks = [];
const names = [];

for (const direction of ["outbound", "inbound"]) {
  const { union, by_tag: byTag } = schemaSet[direction];
  const unionName = JSON.parse(readFileSync(join(schemaDir, union), "utf8")).title;
  const tags = Object.keys(byTag);
  if (!identifier.test(unionName ?? "") || tags.length === 0) {
    console.error(`${schemaSetPath}: ${direction} union ${union} has title ${unionName} and ${tags.length} tags`);
    process.exit(1);
  }
  imports.push(`import type { ${unionName} } from "./generated/${union.replace(/\.json$/, "")}";`);
  const tagType = `${unionName}Tags`;
  checks.push(`type ${tagType} = ${tags.map((tag) => JSON.stringify(tag)).join(" | ")};`);
  checks.push(`const ${unionName}_tags: Equals<${unionName}["type"], ${tagType}> = true;`);
  names.push(`${unionName}_tags`);
  for (const [tag, file] of Object.entries(byTag)) {
    const title = JSON.parse(readFileSync(join(schemaDir, file), "utf8")).title;
    if (!identifier.test(title ?? "")) {
      console.error(`${file}: title ${JSON.stringify(title)} is not a TypeScript identifier`);
      process.exit(1);
    }
    const alias = `${unionName}_${title}`;
    imports.push(`import type { ${title} as ${alias} } from "./generated/${file.replace(/\.json$/, "")}";`);
    const check = `${unionName}_by_${tag}`;
    checks.push(`const ${check}: Equals<Extract<${unionName}, { type: ${JSON.stringify(tag)} }>, ${alias}> = true;`);
    names.push(check);
  }
}

const source = `// Written by clients/typescript/tag-checks.mjs from ${schemaSetPath}.
${imports.join("\n")}

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

${checks.join("\n")}

export const tagChecks = [
  ${names.join(",\n  ")},
];
`;
writeFileSync(outPath, source);
console.log(`${names.length} tag checks written to ${outPath}`);
