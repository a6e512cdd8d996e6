// Reads one flower_meta.v1 payload and prints its canonical proto3 JSON, or
// "rejected <reason>: <detail>" (exit code 1) by the rules in the .proto.
//
//   node dist/examples/typescript/src/consumer.js TYPE_URL PAYLOAD_FILE
import { readFileSync } from "node:fs";
import { fromBinary, toJson } from "@bufbuild/protobuf";
import {
  TrainProcessMetadataSchema,
  type TrainProcessMetadata,
} from "../../../generated/ts/flower_meta/v1/metadata_pb.js";
import { canonicalJson } from "./canonical-json.js";

class Rejected extends Error {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

const schema = TrainProcessMetadataSchema;
const family = schema.file.proto.package.replace(/\.[^.]*$/, ""); // "flower_meta"

function checkTypeUrl(typeUrl: string): void {
  const got = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  if (got === schema.typeName) return;
  const name = got.slice(got.lastIndexOf(".") + 1);
  const pkg = got.slice(0, got.lastIndexOf("."));
  if (name === schema.name && pkg.replace(/\.[^.]*$/, "") === family) {
    throw new Rejected("unsupported_version", `payload is ${got}; this reader decodes ${schema.typeName} only`);
  }
  throw new Rejected("wrong_type", `payload is a ${got}, expected ${schema.typeName}`);
}

function parse(payload: Uint8Array): TrainProcessMetadata {
  try {
    return fromBinary(schema, payload);
  } catch (err) {
    throw new Rejected("malformed", `${payload.length} bytes are not a ${schema.typeName}: ${err}`);
  }
}

function validate(meta: TrainProcessMetadata): void {
  const time = meta.trainingTime;
  if (time === undefined) {
    throw new Rejected("missing_training_time", "training_time is missing");
  }
  if (!Number.isFinite(time) || time < 0) {
    throw new Rejected("training_time_out_of_range", `training_time ${time} is not finite and >= 0`);
  }
  meta.trainingLosses.forEach((loss, index) => {
    if (!Number.isFinite(loss) || loss < 0) {
      throw new Rejected("loss_out_of_range", `epoch_${index + 1} loss ${loss} is not finite and >= 0`);
    }
  });
}

export function decode(typeUrl: string, payload: Uint8Array): TrainProcessMetadata {
  checkTypeUrl(typeUrl);
  const meta = parse(payload);
  validate(meta);
  return meta;
}

const [typeUrl, path] = process.argv.slice(2);
try {
  const meta = decode(typeUrl, readFileSync(path));
  console.log(canonicalJson(toJson(schema, meta)));
} catch (err) {
  if (!(err instanceof Rejected)) throw err;
  console.log(`rejected ${err.reason}: ${err.message}`);
  process.exitCode = 1;
}
