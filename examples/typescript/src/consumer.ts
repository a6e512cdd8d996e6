// Reads one flower_meta.v1 payload and prints its canonical proto3 JSON, or
// "rejected <reason>: <detail>" (exit code 1). The type URL names the
// message; the rules come from the schema's options (rules.ts).
//
//   node dist/examples/typescript/src/consumer.js TYPE_URL PAYLOAD_FILE
import { readFileSync } from "node:fs";
import { createRegistry, fromBinary, toJson, type DescMessage } from "@bufbuild/protobuf";
import { file_flower_meta_v1_metadata } from "../../../generated/ts/flower_meta/v1/metadata_pb.js";
import { canonicalJson } from "./canonical-json.js";
import { Rejected, validate } from "./rules.js";

const registry = createRegistry(file_flower_meta_v1_metadata);
const packageName = file_flower_meta_v1_metadata.proto.package; // "flower_meta.v1"
const family = packageName.replace(/\.[^.]*$/, ""); // "flower_meta"
const TYPE_URL = /^[A-Za-z0-9._~:/-]{1,256}$/;

function schemaOf(typeUrl: string): DescMessage {
  if (!TYPE_URL.test(typeUrl)) {
    throw new Rejected("invalid_type_url", "type URL is not 1 to 256 characters of A-Z a-z 0-9 . _ ~ : / -");
  }
  const got = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  const found = registry.getMessage(got);
  if (found !== undefined && found.file.proto.package === packageName) return found;
  const name = got.slice(got.lastIndexOf(".") + 1);
  const gotFamily = got.slice(0, got.lastIndexOf(".")).replace(/\.[^.]*$/, "");
  if (gotFamily === family && registry.getMessage(`${packageName}.${name}`) !== undefined) {
    throw new Rejected("unsupported_version", `payload is ${got}; this reader decodes ${packageName} only`);
  }
  throw new Rejected("wrong_type", `payload is a ${got}, not a ${packageName} message`);
}

function decode(typeUrl: string, payload: Uint8Array): { schema: DescMessage; message: object } {
  const schema = schemaOf(typeUrl);
  let message: object;
  try {
    message = fromBinary(schema, payload);
  } catch (err) {
    throw new Rejected("malformed", `${payload.length} bytes are not a ${schema.typeName}: ${err}`);
  }
  validate(schema, message);
  return { schema, message };
}

const [typeUrl, path] = process.argv.slice(2);
try {
  const { schema, message } = decode(typeUrl, readFileSync(path));
  console.log(canonicalJson(toJson(schema, message as never)));
} catch (err) {
  if (!(err instanceof Rejected)) throw err;
  console.log(`rejected ${err.reason}: ${err.message}`);
  process.exitCode = 1;
}
