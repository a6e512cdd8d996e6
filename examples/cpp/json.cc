#include "json.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "rules.h"

namespace flower_meta_reader {
namespace {

using google::protobuf::Value;

// A JSON string as RFC 8785 (and JSON.stringify) escapes it.
std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// RFC 8785 canonical JSON: keys sorted (ASCII keys: byte order is UTF-16 order).
std::string Canonical(const Value& value) {
  switch (value.kind_case()) {
    case Value::kNullValue: return "null";
    case Value::kBoolValue: return value.bool_value() ? "true" : "false";
    case Value::kNumberValue: return NumberText(value.number_value());
    case Value::kStringValue: return Quote(value.string_value());
    case Value::kListValue: {
      std::string out = "[";
      for (const Value& item : value.list_value().values()) {
        out += (out.size() > 1 ? "," : "") + Canonical(item);
      }
      return out + "]";
    }
    case Value::kStructValue: {
      const auto& fields = value.struct_value().fields();
      std::vector<std::string> keys;
      for (const auto& [key, unused] : fields) keys.push_back(key);
      std::sort(keys.begin(), keys.end());
      std::string out = "{";
      for (const std::string& key : keys) {
        out += (out.size() > 1 ? "," : "") + Quote(key) + ":" + Canonical(fields.at(key));
      }
      return out + "}";
    }
    default: return "null";
  }
}

}  // namespace

bool CanonicalJson(const google::protobuf::Message& message, std::string* out) {
  std::string json;
  Value value;
  if (!google::protobuf::util::MessageToJsonString(message, &json).ok() ||
      !google::protobuf::util::JsonStringToMessage(json, &value).ok()) {
    return false;
  }
  *out = Canonical(value);
  return true;
}

}  // namespace flower_meta_reader
