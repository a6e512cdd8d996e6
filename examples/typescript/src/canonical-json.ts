// Canonical JSON (RFC 8785): keys sorted by UTF-16 code units, no
// whitespace, numbers and strings exactly as JSON.stringify prints them.
import type { JsonValue } from "@bufbuild/protobuf";

export function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
