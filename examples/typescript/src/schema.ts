// The schema a reader reads by: flower_meta.v1's own, or the FileDescriptorSet
// given with --schema (a run folder's schema.binpb, or `buf build -o`), and
// the message type a type URL names in it.
import { readFileSync } from "node:fs";
import {
  createFileRegistry,
  createRegistry,
  fromBinary,
  type DescMessage,
  type Registry,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import { file_flower_meta_v1_metadata } from "../../../generated/ts/flower_meta/v1/metadata_pb.js";
import { checkSchema, Rejected, restateLegacyRules, SchemaRefused } from "./rules.js";
const TYPE_URL = /^[A-Za-z0-9._~:/-]{1,256}$/;

/**
 * Refuse, in one line, a schema any of whose own message types (not
 * Google's or buf's) has rules protovalidate cannot apply.
 */
export function checkRules(registry: Registry): void {
  for (const type of registry) {
    if (type.kind !== "message") continue;
    const file = type.file.name;
    if (file.startsWith("google/protobuf/") || file.startsWith("buf/validate/")) continue;
    checkSchema(type, registry);
  }
}

/** The schema's registry: flower_meta.v1's own, or a FileDescriptorSet's. */
export function loadSchema(path: string | undefined): Registry {
  if (path === undefined) return createRegistry(file_flower_meta_v1_metadata);
  let set;
  try {
    set = fromBinary(FileDescriptorSetSchema, readFileSync(path));
    restateLegacyRules(set);
    withJsonNames(set);
    return createFileRegistry(set);
  } catch (err) {
    throw new SchemaRefused(`${path}: not a schema this reader can build: ${(err as Error).message}`);
  }
}

/** Fill each field's JSON name where the set leaves it out, as protoc computes it. */
function withJsonNames(set: FileDescriptorSet): void {
  const messages = set.file.flatMap((file) => file.messageType);
  while (messages.length) {
    const message = messages.pop()!;
    messages.push(...message.nestedType);
    for (const field of message.field) {
      if (!field.jsonName) field.jsonName = protoCamelCase(field.name);
    }
  }
}

/** The message type a type URL names in the schema, or the refusal it earns. */
export function schemaOf(registry: Registry, typeUrl: string): DescMessage {
  if (!TYPE_URL.test(typeUrl)) {
    throw new Rejected("invalid_type_url", "type URL is not 1 to 256 characters of A-Z a-z 0-9 . _ ~ : / -");
  }
  const got = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  const found = registry.getMessage(got);
  if (found !== undefined) return found;
  const dot = got.lastIndexOf(".");
  const name = got.slice(dot + 1);
  const family = got.slice(0, dot).replace(/\.[^.]*$/, "");
  for (const known of registry) {
    if (known.kind !== "message" || known.name !== name) continue;
    const knownPackage = known.typeName.slice(0, known.typeName.lastIndexOf("."));
    if (knownPackage.replace(/\.[^.]*$/, "") === family) {
      throw new Rejected("unsupported_version", `payload is ${got}; this reader decodes ${knownPackage} only`);
    }
  }
  throw new Rejected("wrong_type", `payload is a ${got}, not a message of this reader's schema`);
}

