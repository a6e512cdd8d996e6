// Holds this reader's rules (rules.ts) to @bufbuild/protovalidate's verdicts.
// A test tool, not part of the reader: the tests pipe in one case a line,
// "<message type> <base64 payload>", and get one JSON line back:
//   {"ours": "<field path>" | null, "theirs": [["<field path>", "<rule id>"], ...]}
// ours: the field this reader refuses (null: accepted); theirs: every
// violation protovalidate reports on the same message.
//
//   node dist/examples/typescript/src/oracle.js < cases.txt
import { createInterface } from "node:readline";
import { createRegistry, fromBinary } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator } from "@bufbuild/protovalidate";
import { file_flower_meta_v1_metadata } from "../../../generated/ts/flower_meta/v1/metadata_pb.js";
import { Rejected, validate } from "./rules.js";

const registry = createRegistry(file_flower_meta_v1_metadata);
const validator = createValidator();

function verdicts(typeName: string, payload: Uint8Array): object {
  const schema = registry.getMessage(typeName);
  if (schema === undefined) throw new Error(`no message ${typeName} in the schema`);
  const message = fromBinary(schema, payload);
  let ours: string | null = null;
  try {
    validate(schema, message);
  } catch (err) {
    if (!(err instanceof Rejected)) throw err;
    ours = err.message.slice(0, err.message.indexOf(": ")); // "<path>: must be ..."
  }
  const result = validator.validate(schema, message);
  if (result.kind === "error") throw result.error;
  const theirs = (result.violations ?? []).map((v) => [pathToString(v.field), v.ruleId]);
  return { ours, theirs };
}

for await (const line of createInterface({ input: process.stdin })) {
  const [typeName, encoded] = line.split(" ");
  console.log(JSON.stringify(verdicts(typeName, Buffer.from(encoded ?? "", "base64"))));
}
