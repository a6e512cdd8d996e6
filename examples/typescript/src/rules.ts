// The schema's rules, applied by @bufbuild/protovalidate, its violations
// turned into one refusal that reads as the Python and C++ readers' do.
//
// protovalidate enforces every rule its language can express; a schema
// whose rules it cannot compile is refused when loaded (`checkSchema`).
// Of the violations, the refusal names the first in the canonical order
// (a message's fields in declaration order, each field's own rules before
// its elements' or entries' by index or key, then the message's own rules,
// then its oneofs'; within one place, rules in validate.proto's order), its
// field path as protobuf-es prints paths, the reason code its field's
// (flower_meta.v1.field) option names, and its words: for presence and a
// field's own number rule this project's ("must be finite and >= 0, got
// -1"), else protovalidate's message. A v1.0 schema's rules, written in
// (flower_meta.v1.field), are restated as buf.validate rules when loaded
// (`restateLegacyRules`). Nothing here names a field of the metadata.
import {
  create,
  getExtension,
  getOption,
  hasExtension,
  ScalarType,
  setExtension,
  type DescField,
  type DescMessage,
  type DescOneof,
  type Registry,
} from "@bufbuild/protobuf";
import { pathToString, type Path } from "@bufbuild/protobuf/reflect";
import {
  FieldOptionsSchema,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  type FileDescriptorSet,
} from "@bufbuild/protobuf/wkt";
import { createValidator, type Validator, type Violation } from "@bufbuild/protovalidate";
import {
  field as fieldRules,
  FieldRulesSchema,
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
    readonly fieldPath = "",
    readonly ruleId = "",
  ) {
    super(detail);
  }
}

/** A schema whose rules cannot be applied: refused when it is loaded. */
export class SchemaRefused extends Error {}

const NUMBERS = new Set([
  ScalarType.DOUBLE, ScalarType.FLOAT, ScalarType.INT32, ScalarType.INT64,
  ScalarType.UINT32, ScalarType.UINT64, ScalarType.SINT32, ScalarType.SINT64,
  ScalarType.FIXED32, ScalarType.FIXED64, ScalarType.SFIXED32, ScalarType.SFIXED64,
]);

/** A number as ECMAScript prints it (a 64-bit integer exactly): every reader's text. */
export function numberText(value: number | bigint): string {
  return String(value);
}

type Bound = "gt" | "gte" | "lt" | "lte";
const SYMBOLS: Record<Bound, string> = { gte: ">=", gt: ">", lte: "<=", lt: "<" };

/** A number field's own rule: finiteness and at most one bound a side, lower first. */
type NumberRule = { kind: string; finite: boolean; bounds: [Bound, number | bigint][] };

/** The rule in words, as every reader prints it: "finite and >= 0". */
export function ruleWords(rule: NumberRule): string {
  const parts = rule.finite ? ["finite"] : [];
  for (const [name, value] of rule.bounds) parts.push(`${SYMBOLS[name]} ${numberText(value)}`);
  return parts.join(" and ");
}

function isMap(field: DescField): boolean {
  return field.fieldKind === "map";
}

/** The field's number rule (its elements' if repeated), from buf.validate or v1.0's option. */
function numberRule(field: DescField): NumberRule | undefined {
  if (field.scalar === undefined || !NUMBERS.has(field.scalar)) return undefined;
  const kind = ScalarType[field.scalar].toLowerCase(); // "double", "uint32", ...
  const rules = getOption(field, fieldRules);
  let typed: FieldRules["type"] | undefined = rules.type;
  if (field.fieldKind === "list") typed = typed.case === "repeated" ? typed.value.items?.type : undefined;
  let finite = false;
  let bounds: [Bound, number | bigint][] = [];
  if (typed?.case === kind) {
    const value = typed.value as { finite?: boolean; greaterThan: Side; lessThan: Side };
    finite = value.finite ?? false;
    for (const side of [value.greaterThan, value.lessThan]) {
      if (side.case !== undefined) bounds.push([side.case as Bound, side.value as number | bigint]);
    }
  } else {
    const spec = getOption(field, fieldSpec);
    finite = spec.finite;
    for (const name of ["gt", "gte", "lt", "lte"] as Bound[]) {
      if (spec[name] !== undefined) bounds.push([name, spec[name] as number]);
    }
  }
  bounds = bounds.sort(([a], [b]) => Number(a.startsWith("l")) - Number(b.startsWith("l")));
  return finite || bounds.length ? { kind, finite, bounds } : undefined;
}

type Side = { case: string | undefined; value?: unknown };

/** The reason code of a field's refusal, from its option or its message's defaults. */
function reasons(field: DescField): { missing: string; invalid: string } {
  const spec: FieldSpec = getOption(field, fieldSpec);
  const defaults = getOption(field.parent, messageSpec);
  return {
    missing: spec.missingReason || defaults.missingReason || "missing_field",
    invalid: spec.invalidReason || defaults.invalidReason || "out_of_range",
  };
}

// Places in a message, in the canonical order.
const OWN = 0, SUBSCRIPT = 1, FIELD = 2, MESSAGE_RULE = 3, ONEOF = 4;
type Key = (number | bigint | string)[][];

function compareKeys(a: Key, b: Key): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    for (let j = 0; j < Math.min(a[i].length, b[i].length); j++) {
      const x = a[i][j], y = b[i][j];
      if (x === y) continue;
      if (typeof x === "string" && typeof y === "string") {
        return Buffer.compare(Buffer.from(x), Buffer.from(y)); // UTF-8 byte order
      }
      return x < y ? -1 : 1;
    }
    if (a[i].length !== b[i].length) return a[i].length - b[i].length;
  }
  return a.length - b.length;
}

function ownRule(violation: Violation): boolean {
  const first = violation.rule[0];
  return first === undefined || (first.kind === "field" && first.parent.typeName === "buf.validate.MessageRules");
}

/** The message type inside a field's values (a map's values'), if any. */
function held(field: DescField): DescMessage | undefined {
  return field.message;
}

/** The canonical place of a violation (see the head of this file). */
function order(violation: Violation): Key {
  const key: Key = [];
  let atOneof = false;
  for (const element of violation.field) {
    if (element.kind === "field") key.push([FIELD, element.parent.fields.indexOf(element)]);
    else if (element.kind === "oneof") {
      key.push([ONEOF, element.parent.oneofs.indexOf(element)]);
      atOneof = true;
    } else if (element.kind === "list_sub") key.push([SUBSCRIPT, element.index]);
    else if (element.kind === "map_sub") {
      const k = element.key;
      key.push([SUBSCRIPT, typeof k === "boolean" ? Number(k) : (k as number | bigint | string)]);
    }
  }
  const own = ownRule(violation);
  if (!atOneof) key.push([own ? MESSAGE_RULE : OWN]);
  const rule: (number | bigint)[] = [];
  for (const element of violation.rule) {
    if (element.kind === "field") rule.push(0, element.parent.fields.indexOf(element));
    else if (element.kind === "extension") rule.push(1, element.number);
    else if (element.kind === "list_sub") rule.push(0, element.index);
  }
  key.push(rule);
  return key;
}

/** The field a violation is about, or undefined for a oneof's or a message's own rule. */
function subject(violation: Violation): { field?: DescField; message?: DescMessage } {
  const fields = violation.field.filter((e): e is DescField => e.kind === "field");
  const last = violation.field[violation.field.length - 1];
  if (last?.kind === "oneof") return { message: (last as DescOneof).parent };
  const field = fields[fields.length - 1];
  if (ownRule(violation)) return { message: field ? held(field) ?? field.parent : undefined };
  return { field };
}

function words(violation: Violation, field: DescField | undefined, value: unknown): string {
  if (field === undefined || violation.forKey) return violation.message;
  const last = violation.field[violation.field.length - 1];
  const subscripted = last?.kind === "list_sub" || last?.kind === "map_sub";
  if (violation.ruleId === "required" && !subscripted) return "missing; it is required";
  const rule = numberRule(field);
  if (rule !== undefined) {
    const names = rule.bounds.map(([name]) => name).join("_");
    const own = [`${rule.kind}.finite`, ...(names ? [`${rule.kind}.${names}`] : [])];
    if (own.includes(violation.ruleId) && subscripted === (field.fieldKind === "list")) {
      return `must be ${ruleWords(rule)}, got ${numberText(value as number | bigint)}`;
    }
  }
  return violation.message;
}

/** The value at a violation's path: what "got ..." prints. */
function valueAt(message: object, path: Path): unknown {
  let value: unknown = message;
  for (const element of path) {
    if (value === undefined || value === null) return undefined;
    const record = value as Record<string, unknown>;
    if (element.kind === "field" && element.oneof !== undefined) {
      const chosen = record[element.oneof.localName] as { case?: string; value?: unknown };
      value = chosen.case === element.localName ? chosen.value : undefined;
    } else if (element.kind === "field") value = record[element.localName];
    else if (element.kind === "list_sub") value = (value as unknown[])[element.index];
    else if (element.kind === "map_sub") value = record[String(element.key)];
    else return undefined;
  }
  return value;
}

/** Turn protovalidate's violations of `message` into one refusal. */
export function refusal(message: object, violations: Violation[]): Rejected {
  const first = violations.reduce((a, b) => (compareKeys(order(b), order(a)) < 0 ? b : a));
  const { field, message: owner } = subject(first);
  const where = pathToString(first.field);
  let reason: string;
  if (field !== undefined) {
    reason = first.ruleId === "required" ? reasons(field).missing : reasons(field).invalid;
  } else {
    const defaults = owner ? getOption(owner, messageSpec) : undefined;
    reason = first.ruleId === "required"
      ? defaults?.missingReason || "missing_field"
      : defaults?.invalidReason || "out_of_range";
  }
  let said = words(first, field, valueAt(message, first.field));
  if (first.forKey) said = `key ${said}`;
  return new Rejected(reason, where ? `${where}: ${said}` : said, where, first.ruleId);
}

/** A validator over `registry`: throws `Rejected` unless a message obeys its schema. */
export function validatorFor(registry?: Registry): (schema: DescMessage, message: object) => void {
  const engine: Validator = createValidator({ registry });
  return (schema, message) => {
    const result = engine.validate(schema, message as never);
    if (result.kind === "error") {
      // The engine's own words differ between implementations: the type alone.
      throw new Rejected("rule_error", `${schema.typeName}: a rule could not be evaluated on this payload`);
    }
    if (result.kind === "invalid") throw refusal(message, result.violations);
  };
}

/** The type and every message type its fields hold, each once. */
function closure(schema: DescMessage): DescMessage[] {
  const found = new Map<string, DescMessage>();
  const todo = [schema];
  while (todo.length) {
    const current = todo.pop()!;
    if (found.has(current.typeName)) continue;
    found.set(current.typeName, current);
    for (const field of current.fields) if (field.message) todo.push(field.message);
  }
  return [...found.values()];
}

/**
 * Refuse, in one line, a type whose rules protovalidate cannot compile, or
 * that fail on its empty message or one of zero values.
 */
export function checkSchema(schema: DescMessage, registry?: Registry): void {
  const engine = createValidator({ registry });
  for (const type of closure(schema)) {
    for (const probe of probes(type)) {
      const result = engine.validate(type, probe as never);
      if (result.kind === "error") {
        throw new SchemaRefused(`${type.typeName}: protovalidate cannot apply its rules: ${result.error.message}`);
      }
    }
  }
}

/** The empty message, and messages with every field set to its zero value. */
function probes(type: DescMessage): object[] {
  const found: object[] = [create(type)];
  const widest = Math.max(1, ...type.oneofs.map((o) => o.fields.length));
  for (let choice = 0; choice < widest; choice++) {
    const probe = create(type) as Record<string, unknown>;
    for (const field of type.fields) {
      const oneof = field.oneof;
      if (oneof !== undefined) {
        if (oneof.fields[choice % oneof.fields.length] !== field) continue;
        probe[oneof.localName] = { case: field.localName, value: zero(field) };
      } else if (field.fieldKind === "list") {
        probe[field.localName] = [field.listKind === "message" ? create(field.message) : zero(field)];
      } else if (field.fieldKind === "map") {
        probe[field.localName] = { [String(zeroOf(field.mapKey))]: field.mapKind === "message" ? create(field.message) : zero(field) };
      } else {
        probe[field.localName] = zero(field);
      }
    }
    found.push(probe);
  }
  return found;
}

function zero(field: DescField): unknown {
  if (field.message) return create(field.message);
  if (field.enum) return 0;
  return zeroOf(field.scalar);
}

function zeroOf(scalar: ScalarType | undefined): unknown {
  switch (scalar) {
    case ScalarType.BOOL: return false;
    case ScalarType.STRING: return "";
    case ScalarType.BYTES: return new Uint8Array();
    case ScalarType.INT64: case ScalarType.UINT64: case ScalarType.SINT64:
    case ScalarType.FIXED64: case ScalarType.SFIXED64: return 0n;
    default: return 0;
  }
}

const KINDS: Partial<Record<FieldDescriptorProto_Type, string>> = {
  [FieldDescriptorProto_Type.DOUBLE]: "double", [FieldDescriptorProto_Type.FLOAT]: "float",
  [FieldDescriptorProto_Type.INT32]: "int32", [FieldDescriptorProto_Type.INT64]: "int64",
  [FieldDescriptorProto_Type.UINT32]: "uint32", [FieldDescriptorProto_Type.UINT64]: "uint64",
  [FieldDescriptorProto_Type.SINT32]: "sint32", [FieldDescriptorProto_Type.SINT64]: "sint64",
  [FieldDescriptorProto_Type.FIXED32]: "fixed32", [FieldDescriptorProto_Type.FIXED64]: "fixed64",
  [FieldDescriptorProto_Type.SFIXED32]: "sfixed32", [FieldDescriptorProto_Type.SFIXED64]: "sfixed64",
};

/**
 * A v1.0 schema's rules, written in (flower_meta.v1.field), written again as
 * the (buf.validate.field) rules they mean, so protovalidate applies them.
 */
export function restateLegacyRules(set: FileDescriptorSet): void {
  for (const file of set.file) {
    const messages = [...file.messageType];
    while (messages.length) {
      const message = messages.pop()!;
      messages.push(...message.nestedType);
      for (const field of message.field) restate(field, file);
    }
  }
}

/** A double bound of an integer field, as the integer bound that means the same. */
function integerBound(name: Bound, bound: number, kind: string): number | bigint {
  const whole = name === "gt" || name === "lte" ? Math.floor(bound) : Math.ceil(bound);
  return kind.endsWith("64") ? BigInt(whole) : whole;
}

function restate(field: FieldDescriptorProto, file: { dependency: string[] }): void {
  const options = field.options ?? create(FieldOptionsSchema);
  if (!hasExtension(options, fieldSpec) || hasExtension(options, fieldRules)) return;
  const spec = getExtension(options, fieldSpec);
  const kind = KINDS[field.type];
  const bounds = (["gt", "gte", "lt", "lte"] as Bound[]).filter((b) => spec[b] !== undefined);
  if (!spec.required && !spec.finite && !bounds.length) return;
  const rules = create(FieldRulesSchema, { required: spec.required });
  if (kind !== undefined && (spec.finite || bounds.length)) {
    const floating = kind === "float" || kind === "double";
    const typed: Record<string, unknown> = floating ? { finite: spec.finite } : {};
    const greater = bounds.find((b) => b.startsWith("g"));
    const less = bounds.find((b) => b.startsWith("l"));
    const value = (b: Bound) => (floating ? spec[b] : integerBound(b, spec[b] as number, kind));
    if (greater) typed.greaterThan = { case: greater, value: value(greater) };
    if (less) typed.lessThan = { case: less, value: value(less) };
    const type = { case: kind, value: typed } as never;
    rules.type = field.label === FieldDescriptorProto_Label.REPEATED
      ? ({ case: "repeated", value: { items: { type } } } as never)
      : type;
  }
  setExtension(options, fieldRules, rules);
  field.options = options;
  if (!file.dependency.includes("buf/validate/validate.proto")) file.dependency.push("buf/validate/validate.proto");
}
