// The schema's rules, read from the descriptor and applied to any message.
//
// Every field's (flower_meta.v1.field) option says what it must hold
// (presence, finiteness, bounds) and which reason code a refusal carries;
// nothing here names a field. Refusals print as in the Python and
// TypeScript readers: "<field>[2]: must be finite and >= 0, got -1".
#pragma once

#include <string>

#include <google/protobuf/message.h>

namespace flower_meta_reader {

struct Rejected {
  std::string reason;
  std::string detail;
};

// A double as ECMAScript's String(number) prints it (NaN, Infinity too).
std::string NumberText(double number);

// Throws Rejected unless `message` obeys every rule its schema declares.
void Validate(const google::protobuf::Message& message);

}  // namespace flower_meta_reader
