// A test tool, not part of the reader: the tests pipe in one case a line,
// "<message type> <base64 payload>", and get one JSON line back:
//   {"refusal": [reason, field path, rule id, detail] | null,
//    "theirs": [[field path, rule id], ...]}
// or {"refused": "<why the type's rules cannot be applied>"}.
// refusal: what this reader says of the payload (rules.ts); theirs: every
// violation @bufbuild/protovalidate reports on it, to hold the two together.
//
//   node dist/examples/typescript/src/verdicts.js [--schema SET] < cases.txt
import { createInterface } from "node:readline";
import { fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator } from "@bufbuild/protovalidate";
import { checkSchema, Rejected, SchemaRefused, validatorFor } from "./rules.js";
import { loadSchema } from "./schema.js";

const at = process.argv.indexOf("--schema");
const registry = loadSchema(at >= 0 ? process.argv[at + 1] : undefined);
const validate = validatorFor(registry);
const engine = createValidator({ registry });
const checked = new Map<string, string | null>();

function refusedType(schema: DescMessage): string | null {
  if (!checked.has(schema.typeName)) {
    try {
      checkSchema(schema, registry);
      checked.set(schema.typeName, null);
    } catch (err) {
      if (!(err instanceof SchemaRefused)) throw err;
      checked.set(schema.typeName, err.message);
    }
  }
  return checked.get(schema.typeName)!;
}

function verdict(typeName: string, payload: Uint8Array): object {
  const schema = registry.getMessage(typeName);
  if (schema === undefined) throw new Error(`no message ${typeName} in the schema`);
  const refused = refusedType(schema);
  if (refused !== null) return { refused };
  const message = fromBinary(schema, payload);
  let refusal: string[] | null = null;
  try {
    validate(schema, message);
  } catch (err) {
    if (!(err instanceof Rejected)) throw err;
    refusal = [err.reason, err.fieldPath, err.ruleId, err.message];
  }
  const result = engine.validate(schema, message);
  const theirs = result.kind === "invalid" ? result.violations.map((v) => [pathToString(v.field), v.ruleId]) : [];
  return { refusal, theirs };
}

for await (const line of createInterface({ input: process.stdin })) {
  const [typeName, encoded] = line.split(" ");
  console.log(JSON.stringify(verdict(typeName, Buffer.from(encoded ?? "", "base64"))));
}
