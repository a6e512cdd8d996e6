// The schema's rules, read from the descriptor and applied to any message.
//
// Every field's (flower_meta.v1.field) option says what it must hold
// (presence, finiteness, bounds) and which reason code a refusal carries;
// nothing here names a field. Messages, paths and numbers print as in the
// Python and C++ readers: "<field>[2]: must be finite and >= 0, got -1".
import { getOption, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import {
  field as fieldSpec,
  message as messageSpec,
  type FieldSpec,
} from "../../../generated/ts/flower_meta/v1/options_pb.js";

export class Rejected extends Error {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

const NUMBERS = new Set([
  ScalarType.DOUBLE, ScalarType.FLOAT, ScalarType.INT32, ScalarType.INT64,
  ScalarType.UINT32, ScalarType.UINT64, ScalarType.SINT32, ScalarType.SINT64,
  ScalarType.FIXED32, ScalarType.FIXED64, ScalarType.SFIXED32, ScalarType.SFIXED64,
]);

/** A number as ECMAScript prints it: the canonical text in every reader. */
export function numberText(value: number): string {
  return String(value);
}

/** The value rule of `spec` in words, e.g. "finite and >= 0". */
export function describeRule(spec: FieldSpec): string {
  const parts = spec.finite ? ["finite"] : [];
  const bounds: [number | undefined, string][] = [
    [spec.gte, ">="], [spec.gt, ">"], [spec.lte, "<="], [spec.lt, "<"],
  ];
  for (const [bound, symbol] of bounds) {
    if (bound !== undefined) parts.push(`${symbol} ${numberText(bound)}`);
  }
  return parts.join(" and ");
}

function obeys(spec: FieldSpec, value: number): boolean {
  return (
    (!spec.finite || Number.isFinite(value)) &&
    (spec.gte === undefined || value >= spec.gte) &&
    (spec.gt === undefined || value > spec.gt) &&
    (spec.lte === undefined || value <= spec.lte) &&
    (spec.lt === undefined || value < spec.lt)
  );
}

function hasValueRule(spec: FieldSpec): boolean {
  return spec.finite || [spec.gte, spec.gt, spec.lte, spec.lt].some((b) => b !== undefined);
}

function reasons(field: DescField, parent: DescMessage): { missing: string; invalid: string } {
  const spec = getOption(field, fieldSpec);
  const defaults = getOption(parent, messageSpec);
  return {
    missing: spec.missingReason || defaults.missingReason || "missing_field",
    invalid: spec.invalidReason || defaults.invalidReason || "out_of_range",
  };
}

function isNumberField(field: DescField): boolean {
  return field.scalar !== undefined && NUMBERS.has(field.scalar);
}

function checkNumber(field: DescField, parent: DescMessage, value: unknown, path: string): void {
  const spec = getOption(field, fieldSpec);
  const number = Number(value);
  if (!obeys(spec, number)) {
    throw new Rejected(
      reasons(field, parent).invalid,
      `${path}: must be ${describeRule(spec)}, got ${numberText(number)}`,
    );
  }
}

function checkMessage(message: ReflectMessage, path: string): void {
  const parent = message.desc;
  for (const field of parent.fields) {
    const spec = getOption(field, fieldSpec);
    const at = `${path}${field.name}`;
    if (spec.required && !message.isSet(field)) {
      throw new Rejected(reasons(field, parent).missing, `${at}: missing; it is required`);
    }
    if (field.fieldKind === "message" && message.isSet(field)) {
      checkMessage(message.get(field), `${at}.`);
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      let index = 0;
      for (const item of message.get(field)) checkMessage(item as ReflectMessage, `${at}[${index++}].`);
    } else if (hasValueRule(spec) && isNumberField(field)) {
      if (field.fieldKind === "list") {
        let index = 0;
        for (const item of message.get(field)) checkNumber(field, parent, item, `${at}[${index++}]`);
      } else if (message.isSet(field) || field.presence === FeatureSet_FieldPresence.IMPLICIT) {
        // absent is not 0: `required` alone says whether it may be
        checkNumber(field, parent, message.get(field), at);
      }
    }
  }
}

/** Throw `Rejected` unless `message` obeys every rule its schema declares. */
export function validate(schema: DescMessage, message: object): void {
  checkMessage(reflect(schema, message as never), "");
}
