// Reads one flower_meta.v1 payload and prints its canonical proto3 JSON, or
// "rejected <reason>: <detail>" (exit code 1). The type URL names the
// message; the rules come from the schema's options (rules.cc).
//
//   consumer TYPE_URL PAYLOAD_FILE
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "flower_meta/v1/metadata.pb.h"  // links the schema into the generated pool
#include "rules.h"

namespace {

using flower_meta_reader::NumberText;
using flower_meta_reader::Rejected;
using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::Message;
using google::protobuf::MessageFactory;
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

// The schema file this reader was built from; its messages are the ones it reads.
constexpr char kSchemaFile[] = "flower_meta/v1/metadata.proto";

std::string Before(const std::string& text, char separator) {
  auto at = text.rfind(separator);
  return at == std::string::npos ? "" : text.substr(0, at);
}

// The message type the type URL names, among this schema's own messages.
const Descriptor& TypeOf(const std::string& type_url) {
  static const std::regex kTypeUrl("[A-Za-z0-9._~:/-]{1,256}");
  if (!std::regex_match(type_url, kTypeUrl)) {
    throw Rejected{"invalid_type_url",
                   "type URL is not 1 to 256 characters of A-Z a-z 0-9 . _ ~ : / -"};
  }
  const DescriptorPool& pool = *DescriptorPool::generated_pool();
  const std::string package = pool.FindFileByName(kSchemaFile)->package();
  const std::string got = type_url.substr(type_url.rfind('/') + 1);
  const Descriptor* found = pool.FindMessageTypeByName(got);
  if (found != nullptr && found->file()->package() == package) return *found;
  const std::string name = got.substr(got.rfind('.') + 1);
  if (Before(Before(got, '.'), '.') == Before(package, '.') &&
      pool.FindMessageTypeByName(package + "." + name) != nullptr) {
    throw Rejected{"unsupported_version",
                   "payload is " + got + "; this reader decodes " + package + " only"};
  }
  throw Rejected{"wrong_type", "payload is a " + got + ", not a " + package + " message"};
}

std::unique_ptr<Message> Decode(const std::string& type_url, const std::string& payload) {
  const Descriptor& type = TypeOf(type_url);
  std::unique_ptr<Message> message(MessageFactory::generated_factory()->GetPrototype(&type)->New());
  if (!message->ParseFromString(payload)) {
    throw Rejected{"malformed",
                   std::to_string(payload.size()) + " bytes are not a " + type.full_name()};
  }
  flower_meta_reader::Validate(*message);
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: consumer TYPE_URL PAYLOAD_FILE\n";
    return 2;
  }
  std::ifstream file(argv[2], std::ios::binary);
  std::stringstream payload;
  payload << file.rdbuf();
  try {
    std::unique_ptr<Message> message = Decode(argv[1], payload.str());
    std::string json;
    Value value;
    if (!google::protobuf::util::MessageToJsonString(*message, &json).ok() ||
        !google::protobuf::util::JsonStringToMessage(json, &value).ok()) {
      std::cerr << "cannot print JSON\n";
      return 2;
    }
    std::cout << Canonical(value) << "\n";
  } catch (const Rejected& rejected) {
    std::cout << "rejected " << rejected.reason << ": " << rejected.detail << "\n";
    return 1;
  }
  return 0;
}
