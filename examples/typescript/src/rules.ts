// The schema's rules, read from the descriptor and applied to any message.
//
// Every field's (buf.validate.field) rules say what it must hold (presence,
// finiteness, bounds), its (flower_meta.v1.field) option which reason code a
// refusal carries (v1.0 schemas also wrote rules there); nothing here names
// a field. Messages, paths and numbers print as in the
// Python and C++ readers: "<field>[2]: must be finite and >= 0, got -1".
import { getOption, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import {
  field as fieldRules,
  type FieldRules,
} from "../../../generated/ts/buf/validate/validate_pb.js";
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

/** What the rules of every number type hold (float and double: finite too). */
type NumberRules = {
  finite?: boolean;
  greaterThan: { case: "gt" | "gte"; value: number | bigint } | { case: undefined };
  lessThan: { case: "lt" | "lte"; value: number | bigint } | { case: undefined };
};

/** The rules of the field's number type in `rules` (its items' if repeated). */
function numberRules(field: DescField, rules: FieldRules): NumberRules | undefined {
  if (field.scalar === undefined || !NUMBERS.has(field.scalar)) return undefined;
  let typed: FieldRules["type"] | undefined = rules.type;
  if (field.fieldKind === "list") {
    typed = typed.case === "repeated" ? typed.value.items?.type : undefined;
  }
  const kind = ScalarType[field.scalar].toLowerCase(); // "double", "uint32", ...
  return typed?.case === kind ? (typed.value as NumberRules) : undefined;
}

/**
 * The field's (flower_meta.v1.field) option with its (buf.validate.field)
 * rules read into it (required, finite and the bounds), as the Python
 * reader reads them (flower_app/protocol/schema.py field_spec).
 */
function specOf(field: DescField): FieldSpec {
  const spec = { ...getOption(field, fieldSpec) };
  const rules = getOption(field, fieldRules);
  if (rules.required) spec.required = true;
  const typed = numberRules(field, rules);
  if (typed === undefined) return spec;
  if (typed.finite) spec.finite = true;
  const { greaterThan, lessThan } = typed;
  if (greaterThan.case !== undefined) spec[greaterThan.case] = Number(greaterThan.value);
  if (lessThan.case !== undefined) spec[lessThan.case] = Number(lessThan.value);
  return spec;
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
  const spec = specOf(field);
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
  const spec = specOf(field);
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
    const spec = specOf(field);
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
