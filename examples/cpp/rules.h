// The schema's rules, read from the descriptor and applied to any message.
//
// No protovalidate package exists here for C++, so this reader enforces its
// own subset of protovalidate's rules (Enforced()), with protovalidate's
// verdicts, and refuses when it loads a schema (CheckSchema), in one line,
// any type holding a rule outside it: never a rule compiled and then
// ignored. A refusal names the first violation in the canonical order, its
// field path, its rule id and the reason code of the field's
// (flower_meta.v1.field) option, in the words the Python and TypeScript
// readers use. A v1.0 schema's rules, written in (flower_meta.v1.field),
// are read as the buf.validate rules they mean. Nothing here names a field.
#pragma once

#include <set>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace flower_meta_reader {

struct Rejected {
  std::string reason;
  std::string detail;
  std::string field_path = "";  // empty: the payload as a whole
  std::string rule_id = "";
};

// A schema holding a rule this reader cannot apply: one line naming the
// file, the field or message, and the rule.
struct SchemaRefused {
  std::string message;
};

// A double as ECMAScript's String(number) prints it (NaN, Infinity too).
std::string NumberText(double number);

// The rule kinds ("string.max_len", "required", ...) this reader enforces.
const std::set<std::string>& Enforced();

// Throws SchemaRefused if `type`, or a type it holds, has a rule this reader
// does not enforce, or one it cannot compile (a pattern RE2 refuses).
void CheckSchema(const google::protobuf::Descriptor& type);

// Throws Rejected unless `message` obeys every rule its schema declares.
void Validate(const google::protobuf::Message& message);

}  // namespace flower_meta_reader
