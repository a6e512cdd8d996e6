// Reads one payload and prints its canonical proto3 JSON, or
// "rejected <reason>: <detail>" (exit code 1). The type URL names the
// message: one of flower_meta.v1's, or with --schema, of the schema in that
// FileDescriptorSet (schema.ts). The rules come from the schema's options
// (rules.ts). A schema whose rules cannot be applied is refused before any
// payload is read: one line on stderr, exit code 1.
//
//   node dist/examples/typescript/src/consumer.js [--schema SET] TYPE_URL PAYLOAD_FILE
import { readFileSync } from "node:fs";
import { fromBinary, toJson } from "@bufbuild/protobuf";
import { canonicalJson } from "./canonical-json.js";
import { Rejected, SchemaRefused, validatorFor } from "./rules.js";
import { checkRules, loadSchema, schemaOf } from "./schema.js";

function main(argv: string[]): number {
  const at = argv.indexOf("--schema");
  const schemaPath = at >= 0 ? argv[at + 1] : undefined;
  const [typeUrl, path] = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 2)] : argv;
  if (typeUrl === undefined || path === undefined || (at >= 0 && schemaPath === undefined)) {
    console.error("usage: consumer [--schema SET] TYPE_URL PAYLOAD_FILE");
    return 2;
  }
  try {
    const registry = loadSchema(schemaPath);
    checkRules(registry);
    const validate = validatorFor(registry);
    const schema = schemaOf(registry, typeUrl);
    const payload = readFileSync(path);
    let message: object;
    try {
      message = fromBinary(schema, payload);
    } catch (err) {
      throw new Rejected("malformed", `${payload.length} bytes are not a ${schema.typeName}: ${err}`);
    }
    validate(schema, message);
    console.log(canonicalJson(toJson(schema, message as never, { registry })));
  } catch (err) {
    if (err instanceof SchemaRefused) {
      console.error(`consumer: ${err.message}`);
      return 1;
    }
    if (!(err instanceof Rejected)) throw err;
    console.log(`rejected ${err.reason}: ${err.message}`);
    return 1;
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
