// Canonical JSON (RFC 8785) of a message: its proto3 JSON with keys sorted,
// no whitespace, numbers as ECMAScript prints them, so that Python,
// TypeScript and C++ print byte-identical text.
#pragma once

#include <string>

#include <google/protobuf/message.h>

namespace flower_meta_reader {

// The message's canonical proto3 JSON; false if protobuf cannot print it.
bool CanonicalJson(const google::protobuf::Message& message, std::string* out);

}  // namespace flower_meta_reader
